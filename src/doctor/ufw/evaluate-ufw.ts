// Decides a new inbound connection as the iptables rules ufw generates would (troubleshooting.md
// §3.2): ufw-before-input first (loopback accepted), then the user rules in `ufw status numbered`
// order — first match wins — then the default incoming policy. OUT and FWD (route) rules live in
// ufw-user-output / ufw-user-forward and never see inbound traffic; IPv6 rows live in ip6tables
// and never see an IPv4 flow (and the reverse).
import ipaddr from "ipaddr.js";
import type { FlowEffect, FlowVerdict } from "../report/check-result.js";
import { numberUfwRules } from "./number-ufw-rules.js";
import type { PortRanges, UfwAction, UfwPolicy, UfwRule, UfwStatus } from "./parse-ufw-status.js";
import { parseUnmapped } from "../flow-family.js";

export interface UfwFlow {
  readonly source: string;
  /** The node address the connection is sent to; null when not known. */
  readonly destination: string | null;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  readonly inInterface: string;
}

export type UfwDecider =
  | { readonly kind: "rule"; readonly rule: UfwRule; readonly number: number; readonly numberExact: boolean }
  | { readonly kind: "policy"; readonly policy: UfwPolicy; readonly assumed: boolean }
  | { readonly kind: "loopback" }
  | { readonly kind: "inactive" };

export interface UfwEvaluation {
  readonly verdict: FlowVerdict;
  readonly effect: FlowEffect;
  /** For an indeterminate verdict: the first rule that could not be decided. */
  readonly decider: UfwDecider;
  /** Why the deciding (or undecidable) rule matched or could not be decided. */
  readonly reason: string | null;
  /** Rules that might have matched, before the decider, but would have had the same effect. */
  readonly sameEffectUnknowns: readonly { rule: UfwRule; number: number; numberExact: boolean; reason: string }[];
  readonly assumptions: readonly string[];
}

type Match = { kind: "match" } | { kind: "no" } | { kind: "unknown"; reason: string };

// Ports of the profiles Ubuntu packages ship in /etc/ufw/applications.d. Plain and numbered
// output show an app rule by name only; `verbose` shows the ports, and those win when present.
const knownAppPorts: Readonly<Record<string, { ports: PortRanges; protocol: string | null }>> = {
  OpenSSH: { ports: [[22, 22]], protocol: "tcp" },
  Apache: { ports: [[80, 80]], protocol: "tcp" },
  "Apache Secure": { ports: [[443, 443]], protocol: "tcp" },
  "Apache Full": { ports: [[80, 80], [443, 443]], protocol: "tcp" },
  "Nginx HTTP": { ports: [[80, 80]], protocol: "tcp" },
  "Nginx HTTPS": { ports: [[443, 443]], protocol: "tcp" },
  "Nginx Full": { ports: [[80, 80], [443, 443]], protocol: "tcp" },
  Postfix: { ports: [[25, 25]], protocol: "tcp" },
  "Postfix SMTPS": { ports: [[465, 465]], protocol: "tcp" },
  "Postfix Submission": { ports: [[587, 587]], protocol: "tcp" },
  Bind9: { ports: [[53, 53]], protocol: null },
  CUPS: { ports: [[631, 631]], protocol: null },
};

// Linux's default ephemeral range (net.ipv4.ip_local_port_range) — the client's source port.
const ephemeralLow = 32768;
const ephemeralHigh = 60999;

export function effectOf(action: UfwAction | UfwPolicy): Exclude<FlowEffect, null> {
  switch (action) {
    case "ALLOW":
    case "LIMIT":
    case "allow":
      return "accept";
    case "DENY":
    case "deny":
      return "drop";
    case "REJECT":
    case "reject":
      return "reject";
  }
}

function verdictOf(effect: Exclude<FlowEffect, null>): FlowVerdict {
  return effect === "accept" ? "allowed" : "blocked";
}

export function evaluateUfw(status: UfwStatus, flow: UfwFlow, options: { skipRule?: UfwRule } = {}): UfwEvaluation {
  const assumptions: string[] = [];
  if (!status.active) {
    return { verdict: "allowed", effect: null, decider: { kind: "inactive" }, reason: null, sameEffectUnknowns: [], assumptions };
  }
  assumptions.push("The connection is new (a SYN): ufw's before.rules accept loopback traffic and ESTABLISHED/RELATED connections before any user rule.");
  if (flow.inInterface === "lo") {
    return { verdict: "allowed", effect: "accept", decider: { kind: "loopback" }, reason: "before.rules accepts everything arriving on lo", sameEffectUnknowns: [], assumptions };
  }
  const source = parseAddress(flow.source);
  const isV6 = source.kind() === "ipv6";
  const numbers = numberUfwRules(status);
  const unknowns: { rule: UfwRule; number: number; numberExact: boolean; reason: string }[] = [];
  let decider: UfwDecider | null = null;
  let reason: string | null = null;
  const notes = new Set<string>();

  for (const rule of status.rules) {
    if (rule === options.skipRule || rule.direction !== "in" || rule.v6 !== isV6) continue;
    const m = matchRule(rule, flow, source, notes);
    const n = numbers.get(rule)!;
    if (m.kind === "unknown") {
      unknowns.push({ rule, number: n.number, numberExact: n.exact, reason: m.reason });
    } else if (m.kind === "match") {
      decider = { kind: "rule", rule, number: n.number, numberExact: n.exact };
      reason = describeMatch(rule);
      break;
    }
  }
  if (decider === null) {
    const assumed = status.defaults === null;
    decider = { kind: "policy", policy: status.defaults?.incoming ?? "deny", assumed };
    if (assumed) assumptions.push(`The default incoming policy is "deny" (ufw's default): ${status.format === "numbered" ? "`ufw status numbered`" : "plain `ufw status`"} does not show it; \`ufw status verbose\` does.`);
  }
  assumptions.push(...notes);
  const finalEffect = decider.kind === "rule" ? effectOf(decider.rule.action) : effectOf((decider as { policy: UfwPolicy }).policy);
  // Undecidable rules change nothing when each would have the effect the rest of the walk has.
  if (unknowns.some((u) => effectOf(u.rule.action) !== finalEffect)) {
    const first = unknowns[0]!;
    return {
      verdict: "indeterminate",
      effect: null,
      decider: { kind: "rule", rule: first.rule, number: first.number, numberExact: first.numberExact },
      reason: first.reason,
      sameEffectUnknowns: [],
      assumptions,
    };
  }
  return {
    verdict: verdictOf(finalEffect),
    effect: finalEffect,
    decider,
    reason,
    sameEffectUnknowns: unknowns,
    assumptions,
  };
}

function matchRule(rule: UfwRule, flow: UfwFlow, source: ipaddr.IPv4 | ipaddr.IPv6, notes: Set<string>): Match {
  const unknown: string[] = [];
  let ports = rule.to.ports;
  let protocol = rule.to.protocol;
  if (rule.to.app !== null && ports === null) {
    const known = knownAppPorts[rule.to.app];
    if (known) {
      ports = known.ports;
      protocol = known.protocol;
      notes.add(`App profile "${rule.to.app}" has its stock Ubuntu ports (${formatPorts(known.ports)}${known.protocol ? "/" + known.protocol : ""}); \`ufw status verbose\` shows the real ones.`);
    } else {
      unknown.push(`rule uses app profile "${rule.to.app}", whose ports this output does not show (use \`ufw status verbose\` or \`ufw app info '${rule.to.app}'\`)`);
    }
  }
  if (protocol !== null && protocol !== flow.protocol) return { kind: "no" };
  if (ports !== null && !portsContain(ports, flow.port)) return { kind: "no" };
  const iface = rule.to.iface ?? rule.from.iface;
  if (iface !== null && !ifaceMatches(iface, flow.inInterface)) return { kind: "no" };
  if (rule.from.address !== null && !contains(rule.from.address, source)) return { kind: "no" };
  if (rule.to.address !== null) {
    if (flow.destination === null) unknown.push(`rule applies only to destination ${rule.to.address} and the flow's destination is not known (give --destination)`);
    else if (!contains(rule.to.address, parseAddress(flow.destination))) return { kind: "no" };
  }
  if (rule.from.ports !== null) {
    // The client's source port is ephemeral: decided only when the rule covers all or none of it.
    const all = rangesCover(rule.from.ports, ephemeralLow, ephemeralHigh);
    const none = !rule.from.ports.some(([lo, hi]) => hi >= ephemeralLow && lo <= ephemeralHigh);
    if (none) return { kind: "no" };
    if (!all) unknown.push(`rule matches only source ports ${formatPorts(rule.from.ports)}, and the client's ephemeral source port is not known`);
    else notes.add(`The client's source port is in Linux's default ephemeral range ${ephemeralLow}-${ephemeralHigh}.`);
  }
  if (unknown.length > 0) return { kind: "unknown", reason: unknown.join("; ") };
  return { kind: "match" };
}

function describeMatch(rule: UfwRule): string {
  const what: string[] = [];
  what.push(rule.to.protocol === null ? "any protocol" : rule.to.protocol);
  what.push(rule.to.ports === null ? (rule.to.app ? `app ${rule.to.app}` : "any port") : `port ${formatPorts(rule.to.ports)}`);
  what.push(rule.from.address === null ? "from anywhere" : `from ${rule.from.address}`);
  if (rule.to.iface) what.push(`on ${rule.to.iface}`);
  return `the rule matches ${what.join(", ")}`;
}

// An IPv4-mapped IPv6 address is an IPv4 flow as far as netfilter's ip/ip6 split goes.
export const parseAddress = parseUnmapped;

function contains(cidrOrAddress: string, addr: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  const [net, bits] = cidrOrAddress.includes("/")
    ? ipaddr.parseCIDR(cidrOrAddress)
    : [ipaddr.parse(cidrOrAddress), cidrOrAddress.includes(":") ? 128 : 32];
  if (net.kind() !== addr.kind()) return false;
  return addr.match(net as never, bits);
}

function ifaceMatches(pattern: string, iface: string): boolean {
  return pattern.endsWith("+") ? iface.startsWith(pattern.slice(0, -1)) : pattern === iface;
}

export function portsContain(ports: PortRanges, port: number): boolean {
  return ports.some(([lo, hi]) => port >= lo && port <= hi);
}

function rangesCover(ports: PortRanges, lo: number, hi: number): boolean {
  let next = lo;
  for (const [a, b] of [...ports].sort((x, y) => x[0] - y[0])) {
    if (a > next) break;
    next = Math.max(next, b + 1);
  }
  return next > hi;
}

export function formatPorts(ports: PortRanges): string {
  return ports.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}:${hi}`)).join(",");
}
