// Whether one NSG rule matches one flow, in three values: a rule whose service tag, ASG membership
// or source-port range the input cannot decide is `unknown`, unless another field already rules
// the flow out (troubleshooting.md §2.1, §2.3, §2.8 `match`).
import ipaddr from "ipaddr.js";
import type { NsgFlow, NsgRule } from "./nsg-model.js";
import { hostVirtualIp } from "../private-ranges.js";
import { parseUnmapped } from "../flow-family.js";

export type Match = { readonly kind: "yes" } | { readonly kind: "no" } | { readonly kind: "unknown"; readonly reason: string; readonly needs: string };

const yes: Match = { kind: "yes" };
const no: Match = { kind: "no" };

/** AND: any "no" wins, then the first "unknown", else "yes". */
function all(parts: readonly (() => Match)[]): Match {
  let unknown: Match | null = null;
  for (const part of parts) {
    const m = part();
    if (m.kind === "no") return no;
    if (m.kind === "unknown" && unknown === null) unknown = m;
  }
  return unknown ?? yes;
}

/** OR: any "yes" wins, then the first "unknown", else "no". */
function any(parts: readonly Match[]): Match {
  let unknown: Match | null = null;
  for (const m of parts) {
    if (m.kind === "yes") return yes;
    if (m.kind === "unknown" && unknown === null) unknown = m;
  }
  return unknown ?? no;
}

/** What the address side of a rule is matched against: the VirtualNetwork space and ASG membership. */
export interface AddressContext {
  readonly vnets: readonly [ipaddr.IPv4 | ipaddr.IPv6, number][];
  /** Lower-cased ASG name → member IPs. */
  readonly asgs: ReadonlyMap<string, readonly string[]>;
  /**
   * `vnets` is the RFC 1918 stand-in (no --vnet): it holds no IPv6 space, while a VNet's IPv6
   * space is in the tag (AllowVnetInBound lets intra-VNet IPv6 in), so for an IPv6 address the
   * tag is not known.
   */
  readonly vnetsAssumed?: boolean;
}

/** The host virtual IP: in the AzureLoadBalancer tag and in VirtualNetwork (§2.3). */
export { hostVirtualIp };

const anyAddress = new Set(["*", "any", "0.0.0.0/0", "::/0"]);

const parseIp = parseUnmapped;

function inCidr(addr: ipaddr.IPv4 | ipaddr.IPv6, cidr: readonly [ipaddr.IPv4 | ipaddr.IPv6, number]): boolean {
  return addr.kind() === cidr[0].kind() && addr.match(cidr as [ipaddr.IPv4 | ipaddr.IPv6, number]);
}

export function inVirtualNetwork(ip: string, ctx: AddressContext): boolean {
  if (ip === hostVirtualIp) return true;
  const addr = parseIp(ip);
  return ctx.vnets.some((c) => inCidr(addr, c));
}

/** Whether the address is in the VirtualNetwork tag; unknown for IPv6 where the space is only assumed. */
function virtualNetworkMatch(ip: string, ctx: AddressContext): Match {
  if (inVirtualNetwork(ip, ctx)) return yes;
  if (ctx.vnetsAssumed && parseIp(ip).kind() === "ipv6") {
    return {
      kind: "unknown",
      reason: `service tag "VirtualNetwork" for ${ip} (the VNet's address space is not given, and the RFC 1918 ranges assumed without --vnet hold no IPv6 space)`,
      needs: "--vnet CIDR for each of the VNet's address prefixes, its IPv6 ones included (az network vnet show --query addressSpace.addressPrefixes)",
    };
  }
  return no;
}

function matchPrefix(prefix: string, ip: string, ctx: AddressContext): Match {
  const p = prefix.toLowerCase();
  if (anyAddress.has(p)) return yes;
  if (p === "virtualnetwork") return virtualNetworkMatch(ip, ctx);
  if (p === "azureloadbalancer") return ip === hostVirtualIp ? yes : no;
  if (p === "internet") {
    // "Public address space outside the VNet" (§2.3): publicly routable and not VirtualNetwork.
    if (parseIp(ip).range() !== "unicast") return no;
    const vnet = virtualNetworkMatch(ip, ctx);
    return vnet.kind === "unknown" ? { ...vnet, reason: `service tag "Internet" for ${ip}, which holds public addresses outside the VNet (the VNet's address space is not given, and the RFC 1918 ranges assumed without --vnet hold no IPv6 space)` } : vnet.kind === "yes" ? no : yes;
  }
  const addr = parseIp(ip);
  if (prefix.includes("/")) return inCidr(addr, ipaddr.parseCIDR(prefix)) ? yes : no;
  if (ipaddr.isValid(prefix)) {
    const other = parseIp(prefix);
    return other.kind() === addr.kind() && other.toString() === addr.toString() ? yes : no;
  }
  return {
    kind: "unknown",
    reason: `service tag "${prefix}" (its address ranges are not in the input)`,
    needs: `whether ${ip} belongs to service tag ${prefix} (az network list-service-tags)`,
  };
}

function matchAddressSide(prefixes: readonly string[], asgs: readonly string[], ip: string, ctx: AddressContext): Match {
  return any([
    ...prefixes.map((p) => matchPrefix(p, ip, ctx)),
    ...asgs.map((name): Match => {
      const members = ctx.asgs.get(name.toLowerCase());
      if (members === undefined) {
        return { kind: "unknown", reason: `application security group "${name}" (its members are not given)`, needs: `--asg ${name}=IP[,IP] listing its members` };
      }
      const addr = parseIp(ip).toString();
      return members.some((m) => ipaddr.isValid(m) && parseIp(m).toString() === addr) ? yes : no;
    }),
  ]);
}

function parseRange(r: string): [number, number] {
  if (r === "*" || /^any$/i.test(r)) return [0, 65535];
  const [lo, hi] = r.split("-").map(Number) as [number, number?];
  return [lo, hi ?? lo];
}

function matchPort(ranges: readonly string[], port: number): Match {
  return ranges.some((r) => {
    const [lo, hi] = parseRange(r);
    return lo <= port && port <= hi;
  }) ? yes : no;
}

/** Any port the client could pick as its ephemeral source port (Linux 32768-60999, Windows 49152-65535, BSDs lower). */
const ephemeral: [number, number] = [1024, 65535];

function matchSourcePort(rule: NsgRule, sourcePort: number | undefined): Match {
  if (sourcePort !== undefined) return matchPort(rule.sourcePorts, sourcePort);
  const ranges = rule.sourcePorts.map(parseRange);
  // Covers every possible ephemeral port: matches whatever port the client picks.
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  let covered = ephemeral[0] - 1;
  for (const [lo, hi] of sorted) if (lo <= covered + 1 && hi > covered) covered = hi;
  if (covered >= ephemeral[1]) return yes;
  if (ranges.every(([lo, hi]) => hi < ephemeral[0] || lo > ephemeral[1])) return no;
  return {
    kind: "unknown",
    reason: `source port ranges ${rule.sourcePorts.join(",")} (the client picks an ephemeral source port)`,
    needs: "--source-port N, the client's source port",
  };
}

function matchProtocol(rule: NsgRule, protocol: NsgFlow["protocol"]): Match {
  if (rule.protocol === "*") return yes;
  return rule.protocol.toLowerCase() === protocol ? yes : no;
}

export function matchRule(rule: NsgRule, flow: NsgFlow, ctx: AddressContext): Match {
  return all([
    () => matchProtocol(rule, flow.protocol),
    () => matchPort(rule.destinationPorts, flow.port),
    () => matchAddressSide(rule.destinationPrefixes, rule.destinationAsgs, flow.destination, ctx),
    () => matchAddressSide(rule.sourcePrefixes, rule.sourceAsgs, flow.source, ctx),
    () => matchSourcePort(rule, flow.sourcePort),
  ]);
}
