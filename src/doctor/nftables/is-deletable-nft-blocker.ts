// Whether an nftables rule that blocks the flow may be fixed by deleting it, or only by an accept
// for the flow ahead of it. The same decision as the iptables check's is-deletable-blocker.ts, in
// nft's terms: deleting a rule is a fix only where the rule stands for this flow and no other.
//
// A blocker may be deleted only when its own destination-port matches (`tcp dport 10250`,
// `th dport { 10250 }`, `ip saddr . tcp dport { 10.0.0.1 . 10250 }`), taken together, match exactly
// one port, the flow's, and the rule picks out the flow's protocol (a `tcp dport`/`udp dport` key,
// or `meta l4proto tcp`): in iptables a --dport cannot be written without -p, so its rule always
// does. A source, interface, ct state or mark match besides does not change that.
//
// Anything else stands for more than this flow, and deleting it opens more than was asked:
// - no destination-port match at all: a catch-all. firewalld's `reject with icmpx admin-prohibited`
//   ending filter_INPUT, a bare `drop`, `iifname "eth0" drop`, `ct state new drop`,
//   `ip saddr 10.0.0.0/8 drop`: deleting it opens every port it guards to every source it names;
// - a port set, range, negation or comparison (`tcp dport { 10250, 10255 }`, `tcp dport 10000-11000`,
//   `tcp dport != 22`, `tcp dport < 1024`), or a named set whose contents may change (`@ports`);
// - `th dport 10250` without a protocol: it blocks UDP 10250 too;
// - a verdict map (`tcp dport vmap { 10250 : drop, 22 : accept }`): the rule holds every entry.
// Only the rule's own matches count, never those of a jump that leads to its chain: a chain may be
// reached from several places, and `nft delete rule ... handle N` removes the rule for all of them.
import { ALL_PORTS, complement, intersect, normalise, type PortRange } from "../port-ranges.js";
import type { NftFlow } from "./evaluate-nftables.js";
import type { NftKey, NftRule, NftStatement } from "./nft-model.js";

/** `10250` or `10000-11000`; null for a service name or anything else the doctor does not read as a number. */
function portAtom(atom: string): PortRange | null {
  const m = /^(\d+)(?:-(\d+))?$/.exec(atom);
  return m ? [Number(m[1]), Number(m[2] ?? m[1])] : null;
}

/**
 * The destination ports one match statement allows; null where it does not match on the
 * destination port; "many" where it does but not in a way read here as a list of ports (a named
 * set, a comparison, a negated concatenation, a service name): never deletable.
 */
function portsOf(st: Extract<NftStatement, { kind: "match" }>): readonly PortRange[] | null | "many" {
  const at = st.keys.findIndex((k) => k.name === "dport");
  if (at < 0) return null;
  if (st.value.kind !== "set" || (st.op !== "==" && st.op !== "!=") || (st.op === "!=" && st.keys.length > 1)) return "many";
  const ranges: PortRange[] = [];
  for (const item of st.value.items) {
    const r = item.length === st.keys.length ? portAtom(item[at]!) : null;
    if (r === null) return "many";
    ranges.push(r);
  }
  return st.op === "!=" ? complement(ranges) : normalise(ranges);
}

const protocolOf = (atom: string) => (atom === "6" ? "tcp" : atom === "17" ? "udp" : atom);

/** Whether a key or an l4proto match of the rule restricts it to the flow's protocol. */
function picksProtocol(rule: NftRule, protocol: NftFlow["protocol"]): boolean {
  const keyPicks = (k: NftKey) => k.impliedProto === protocol;
  return rule.statements.some((st) => {
    if (st.kind !== "match") return false;
    if (st.keys.some(keyPicks)) return true;
    const at = st.keys.findIndex((k) => k.name === "l4proto");
    return at >= 0 && st.op === "==" && st.value.kind === "set" && st.value.items.length > 0
      && st.value.items.every((item) => item.length === st.keys.length && protocolOf(item[at]!) === protocol);
  });
}

/** The destination ports the rule's own matches allow, taken together; null where it has no destination-port match. */
export function destinationPortsOfNftRule(rule: NftRule): readonly PortRange[] | null | "many" {
  let ports: readonly PortRange[] | null = null;
  for (const st of rule.statements) {
    if (st.kind === "vmap") return "many";
    if (st.kind !== "match") continue;
    const p = portsOf(st);
    if (p === null) continue;
    if (p === "many") return "many";
    ports = intersect(ports ?? ALL_PORTS, p);
  }
  return ports;
}

export function isDeletableNftBlocker(rule: NftRule, flow: Pick<NftFlow, "port" | "protocol">): boolean {
  const ports = destinationPortsOfNftRule(rule);
  if (ports === null || ports === "many") return false;
  return ports.length === 1 && ports[0]![0] === flow.port && ports[0]![1] === flow.port && picksProtocol(rule, flow.protocol);
}
