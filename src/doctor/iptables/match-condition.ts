// Whether one condition holds for the packet a new connection starts with (a TCP SYN, or the
// first UDP datagram) arriving at the node, or leaving it (OUTPUT: a connection the node itself
// opens, such as the agent's to the server): troubleshooting.md §4.3, "Matches to implement".
import ipaddr from "ipaddr.js";
import type { Condition } from "./model.js";

/** A three-valued match: an undecidable condition says why instead of guessing. */
export type MatchResult = true | false | { readonly unknown: string };

export interface Packet {
  readonly protocol: number;
  readonly source: ipaddr.IPv4 | ipaddr.IPv6;
  /** The node's address, when the user gave it. */
  readonly destination: ipaddr.IPv4 | ipaddr.IPv6 | null;
  readonly port: number;
  /** "" for a packet the node sends: a locally generated packet has no input interface. */
  readonly inInterface: string;
  /**
   * Set only for a packet the node sends (walked from OUTPUT): the interface it leaves by. Then
   * `source` is the node's own address and `destination` the remote one (never local).
   */
  readonly outInterface?: string;
  /**
   * Conntrack states the packet has: NEW for a first packet, UNTRACKED after raw NOTRACK, INVALID
   * in raw PREROUTING, which runs before conntrack has given the packet an entry.
   */
  readonly ctstates: ReadonlySet<string>;
  /** Set where an earlier rule may have changed the state in a way the input cannot decide: why. */
  readonly ctstateUnknown?: string;
  /**
   * Set where `destination` is null because a rewrite made it an address the input does not show
   * (REDIRECT: the incoming interface's primary address): why, for a `-d` match's reason.
   */
  readonly destinationUnknown?: string;
}

export interface MatchState {
  /** The packet mark (starts at 0); null once a rule changed it in a way the doctor cannot follow. */
  readonly mark: number | null;
  readonly connmark: number | null;
}

// Linux's default net.ipv4.ip_local_port_range: where a client's source port comes from.
export const EPHEMERAL_PORTS = [32768, 60999] as const;

// `eth+` matches every name starting with `eth` (xt's ifname mask); `+` alone matches any.
export function interfaceMatches(pattern: string, actual: string): boolean {
  return pattern.endsWith("+") ? actual.startsWith(pattern.slice(0, -1)) : actual === pattern;
}

function contains(cidr: string, address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  const [range, bits] = ipaddr.parseCIDR(cidr);
  if (range.kind() !== address.kind()) return false;
  return address.match([range, bits] as [typeof range, number]);
}

function compareBytes(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function sourcePortMatch(ranges: readonly (readonly [number, number])[]): MatchResult {
  const [lo, hi] = EPHEMERAL_PORTS;
  if (ranges.some(([a, b]) => a <= lo && b >= hi)) return true;
  if (ranges.every(([a, b]) => b < lo || a > hi)) return false;
  return { unknown: `the rule matches on the client's source port, which is any of ${lo}-${hi}` };
}

function positive(condition: Condition, packet: Packet, state: MatchState): MatchResult {
  switch (condition.kind) {
    case "protocol":
      return condition.protocol === 0 || condition.protocol === packet.protocol;
    case "address": {
      if (condition.field === "source") return contains(condition.cidr, packet.source);
      if (packet.destination) return contains(condition.cidr, packet.destination);
      // Without --destination the node's address is unknown; it is never a loopback address,
      // which keeps kubelet's "block incoming localnet connections" rule decidable.
      const [range] = ipaddr.parseCIDR(condition.cidr);
      if (range.range() === "loopback" && !condition.cidr.endsWith("/0")) return false;
      return { unknown: `the rule matches destination ${condition.cidr}; ${packet.destinationUnknown ?? "give the node's address with --destination"}` };
    }
    case "address-range": {
      const address = condition.field === "source" ? packet.source : packet.destination;
      if (!address) return { unknown: `the rule matches a destination range; ${packet.destinationUnknown ?? "give the node's address with --destination"}` };
      try {
        const from = ipaddr.parse(condition.from);
        const to = ipaddr.parse(condition.to);
        if (from.kind() !== address.kind()) return false;
        const bytes = address.toByteArray();
        return compareBytes(bytes, from.toByteArray()) >= 0 && compareBytes(bytes, to.toByteArray()) <= 0;
      } catch {
        return { unknown: `address range ${condition.from}-${condition.to} is not readable` };
      }
    }
    case "interface":
      // INPUT has no output interface, a locally generated packet no input interface: the kernel
      // compares against an empty name.
      return interfaceMatches(condition.name, condition.direction === "in" ? packet.inInterface : packet.outInterface ?? "");
    case "port": {
      if (packet.protocol !== 6 && packet.protocol !== 17) return false;
      const inDport = condition.ranges.some(([a, b]) => packet.port >= a && packet.port <= b);
      if (condition.field === "dport") return inDport;
      if (condition.field === "either" && inDport) return true;
      return sourcePortMatch(condition.ranges);
    }
    case "tcp-flags":
      // A connection's first segment carries SYN only (0x02).
      return packet.protocol === 6 && (0x02 & condition.mask) === condition.comparison;
    case "ctstate":
      if (packet.ctstateUnknown !== undefined) return { unknown: packet.ctstateUnknown };
      return condition.states.some((s) => packet.ctstates.has(s));
    case "addrtype": {
      // Sent by the node: its own address is the source (LOCAL, UNICAST), the remote one the
      // destination (UNICAST, never LOCAL).
      if (packet.outInterface !== undefined) {
        return condition.types.some((t) => t === "UNICAST" || (t === "LOCAL" && condition.side === "source"));
      }
      if (condition.side === "destination") return condition.types.some((t) => t === "LOCAL" || t === "UNICAST");
      return condition.types.includes("UNICAST");
    }
    case "mark": {
      const value = condition.which === "packet" ? state.mark : state.connmark;
      if (value === null) return { unknown: `an earlier rule changed the ${condition.which} mark in a way this doctor cannot follow` };
      return ((value & condition.mask) >>> 0) === condition.value;
    }
    case "fragment":
      return false;
    case "pkttype":
      return condition.type === "unicast" || condition.type === "host";
    case "unknown":
      return { unknown: condition.reason };
  }
}

export function matchCondition(condition: Condition, packet: Packet, state: MatchState): MatchResult {
  const result = positive(condition, packet, state);
  if (typeof result !== "boolean") return result;
  return "negate" in condition && condition.negate ? !result : result;
}

/** All conditions must hold: one that fails decides even when another is unknown. */
export function matchAll(conditions: readonly Condition[], packet: Packet, state: MatchState): MatchResult {
  let unknown: MatchResult | undefined;
  for (const condition of conditions) {
    const result = matchCondition(condition, packet, state);
    if (result === false) return false;
    if (result !== true) unknown ??= result;
  }
  return unknown ?? true;
}
