// `doctor nsg`: Azure NSGs on one flow, as Network Watcher's IP flow verify would judge it, across
// the four attachments (doctor-cli.md `nsg`; troubleshooting.md §2).
import ipaddr from "ipaddr.js";
import { DoctorInputError } from "../input-error.js";
import { checkFlowFamilies, familyOf, unmapped } from "../flow-family.js";
import type { CheckResult, Fix } from "../report/check-result.js";
import { undecidedFirst, type UndecidedRule } from "../report/undecided-first.js";
import { evaluateNsgPath, pathOrder } from "./evaluate-nsg-path.js";
import type { NsgsOnPath, PathStep } from "./evaluate-nsg-path.js";
import { fixNsg } from "./fix-nsg.js";
import { hostVirtualIp } from "./match-rule.js";
import type { AddressContext } from "./match-rule.js";
import { flowText as describeFlow } from "./flow-text.js";
import { nsgName, nsgNamePlaceholder } from "./nsg-model.js";
import type { Nsg, NsgFlow, NsgRule, NsgSource } from "./nsg-model.js";
import { parseNsg } from "./parse-nsg.js";
import { rfc1918Ranges } from "../private-ranges.js";

export interface NsgInputs {
  readonly sourceNic?: NsgSource;
  readonly sourceSubnet?: NsgSource;
  readonly destSubnet?: NsgSource;
  readonly destNic?: NsgSource;
}

export interface NsgOptions {
  readonly source: string;
  readonly destination: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  readonly sourcePort?: number;
  /** The address space behind the VirtualNetwork tag; empty → RFC 1918 assumed (doctor-cli.md `--vnet`). */
  readonly vnets: readonly string[];
  /** ASG name → member IPs (`--asg NAME=IP[,IP]`). */
  readonly asgs: Readonly<Record<string, readonly string[]>>;
}

const rfc1918 = rfc1918Ranges;

function addressContext(opts: NsgOptions): AddressContext {
  const vnets = (opts.vnets.length > 0 ? opts.vnets : rfc1918).map((c) => {
    try {
      return ipaddr.parseCIDR(c);
    } catch (err) {
      throw new DoctorInputError(`--vnet ${c}: not a CIDR`, { expected: "a CIDR such as 10.224.0.0/12", cause: err });
    }
  });
  const asgs = new Map<string, readonly string[]>();
  for (const [name, ips] of Object.entries(opts.asgs)) asgs.set(name.toLowerCase(), ips);
  return { vnets, asgs, vnetsAssumed: opts.vnets.length === 0 };
}

/** The rule as a row of `az network nsg rule list -o table`, so users recognise it. */
export function describeRule(rule: NsgRule): string {
  const side = (prefixes: readonly string[], asgs: readonly string[]) => [...prefixes, ...asgs.map((a) => `asg:${a}`)].join(",");
  return `${rule.name}  priority ${rule.priority}  ${rule.direction}  ${rule.access}  ${rule.protocol}` +
    `  from ${side(rule.sourcePrefixes, rule.sourceAsgs)}:${rule.sourcePorts.join(",")}` +
    `  to ${side(rule.destinationPrefixes, rule.destinationAsgs)}:${rule.destinationPorts.join(",")}`;
}

function decidedByOf(step: PathStep, rule: NsgRule) {
  return {
    nsg: nsgName(step.nsg),
    attachment: step.attachment,
    direction: step.direction === "Inbound" ? "inbound" : "outbound",
    rule: rule.name,
    priority: rule.priority,
    access: rule.access,
    text: describeRule(rule),
  } as const;
}

function pathEntry(step: PathStep) {
  const rule = step.outcome === "unknown" ? step.undecided[0]!.rule : step.matched;
  return {
    ...decidedByOf(step, rule),
    file: step.nsg.label,
    outcome: step.outcome === "unknown" ? "indeterminate" : step.outcome,
    undecided: step.undecided.map((u) => ({ rule: u.rule.name, priority: u.rule.priority, access: u.rule.access, reason: u.reason })),
  };
}

const targetsPlatformTag = (rule: NsgRule): boolean =>
  [...rule.sourcePrefixes, ...rule.destinationPrefixes].some((p) => /^AzurePlatform(?:DNS|IMDS|LKM)$/i.test(p));

function parseAll(inputs: NsgInputs): NsgsOnPath {
  const out: { -readonly [K in keyof NsgsOnPath]: Nsg } = {};
  for (const { key } of pathOrder) {
    const src = inputs[key];
    if (src) out[key] = parseNsg(src.text, src.label);
  }
  return out;
}

export function checkNsg(inputs: NsgInputs, opts: NsgOptions): CheckResult {
  for (const [flag, ip] of [["--source", opts.source], ["--destination", opts.destination]] as const) {
    if (!ipaddr.isValid(ip)) throw new DoctorInputError(`${flag} ${ip}: not an IP address`, { expected: "an IPv4 or IPv6 address" });
  }
  checkFlowFamilies(opts.source, opts.destination);
  const nsgs = parseAll(inputs);
  const ctx = addressContext(opts);
  // A mapped address (::ffff:10.224.0.7) is its IPv4 address: NSG prefixes and the fix's too.
  const flow: NsgFlow = {
    protocol: opts.protocol, source: unmapped(opts.source), destination: unmapped(opts.destination), port: opts.port,
    ...(opts.sourcePort === undefined ? {} : { sourcePort: opts.sourcePort }),
  };
  const flowText = describeFlow(flow);
  const assumptions: string[] = [];
  if (opts.vnets.length === 0) {
    const ipv6 = [flow.source, flow.destination].some((ip) => familyOf(ip) === "ipv6");
    assumptions.push(`VirtualNetwork taken as the RFC 1918 ranges ${rfc1918.join(", ")} plus ${hostVirtualIp} (no --vnet given)` +
      (ipv6 ? "; they hold no IPv6 space, so whether an IPv6 address is in VirtualNetwork is not known (give --vnet with the VNet's IPv6 prefixes)" : ""));
  }
  const missing = pathOrder.filter(({ key }) => !nsgs[key]).map(({ place }) => place);
  if (missing.length > 0) assumptions.push(`No NSG given for the ${missing.join(", ")}: taken as none attached (allows all)`);
  for (const { key } of pathOrder) {
    const nsg = nsgs[key];
    if (nsg && nsg.addedDefaults.length > 0) {
      assumptions.push(`${nsg.label}: the input lacks the default rules ${nsg.addedDefaults.join(", ")}` +
        `${nsg.shape === "rule-list" ? " (az network nsg rule list without --include-default)" : ""}; added them, as Azure always has them`);
    }
  }
  for (const { key } of pathOrder) {
    const nsg = nsgs[key];
    // az network nsg rule list prints [] for an NSG with only the default rules: no name, no id.
    if (nsg && nsg.name === null) {
      assumptions.push(`${nsg.label}: the file does not name its NSG (no "name", and no "id" naming it); ${nsgNamePlaceholder} stands for it in decidedBy and the fix commands`);
    }
  }
  assumptions.push("Azure Virtual Network Manager security admin rules (evaluated before NSGs) are not in the input");
  const platformAddress = [flow.source, flow.destination].find((ip) => ip === hostVirtualIp || ip === "169.254.169.254");
  const platformRules = pathOrder.flatMap(({ key }) => nsgs[key]?.rules.filter(targetsPlatformTag) ?? []);
  const base = { check: "nsg" as const, flow, assumptions };
  // §2.3: platform traffic (DHCP, DNS, IMDS, health probes) is not subject to NSGs unless a rule
  // targets one of the dedicated AzurePlatform* tags.
  if (platformAddress !== undefined && platformRules.length === 0) {
    assumptions.push("NSG rules are not evaluated for platform traffic (Azure's NSG overview); Load Balancer's documentation says a rule denying the AzureLoadBalancer tag breaks health probes, so for a probe check such rules too");
    return {
      ...base, status: "ok", verdict: "allowed", effect: "accept", decidedBy: null, path: [],
      summary: `Allowed: ${flowText} is Azure platform traffic (${platformAddress}), which NSGs do not filter unless a rule uses the AzurePlatformDNS, AzurePlatformIMDS or AzurePlatformLKM tag; none of these NSGs does.`,
      fixes: [],
    };
  }
  if (platformAddress !== undefined) {
    assumptions.push(`${platformAddress} is Azure platform traffic, filtered only by rules with the AzurePlatform* tags (${platformRules.map((r) => `"${r.name}"`).join(", ")}): evaluated with the NSGs' rules`);
  }

  const verdict = evaluateNsgPath(nsgs, flow, ctx);
  if (verdict.kind === "local") {
    return {
      ...base, status: "ok", verdict: "allowed", effect: "accept", decidedBy: null, path: [],
      summary: `Allowed: ${flowText} stays on the node (source = destination) and never crosses a NIC, so no NSG applies.`,
      fixes: [],
    };
  }
  const path = verdict.steps.map(pathEntry);
  const details = verdict.steps.map((s) =>
    `${s.place} NSG "${nsgName(s.nsg)}" (${s.direction.toLowerCase()}): ${s.outcome === "unknown" ? "indeterminate" : s.outcome} by ${describeRule(s.outcome === "unknown" ? s.undecided[0]!.rule : s.matched)}`);
  for (const s of verdict.steps) {
    if (s.outcome !== "unknown" && s.undecided.length > 0) {
      assumptions.push(`NSG "${nsgName(s.nsg)}": ${s.undecided.map((u) => `rule "${u.rule.name}" (${u.reason})`).join(", ")} may match first; the outcome is ${s.outcome} either way`);
    }
  }

  if (verdict.kind === "allowed") {
    const d = verdict.decider;
    if (!d) {
      return {
        ...base, status: "ok", verdict: "allowed", effect: "accept", decidedBy: null, path, details,
        summary: `Allowed: no NSG was given for ${flowText}, and a missing NSG allows all; pass --dest-subnet-nsg / --dest-nic-nsg to check real ones.`,
        fixes: [],
      };
    }
    return undecidedFirst({
      ...base, status: "ok", verdict: "allowed", effect: "accept", decidedBy: decidedByOf(d, d.matched), path, details,
      summary: `Allowed: every NSG on the path allows ${flowText}; the last, "${nsgName(d.nsg)}" (${d.place}), by rule "${d.matched.name}" (priority ${d.matched.priority}). If it still fails, check the node's own firewall (ufw, iptables, nftables).`,
      fixes: [],
    }, firstUndecided(verdict.steps, flowText));
  }

  if (verdict.kind === "blocked") {
    const d = verdict.decider!;
    const fixes: Fix[] = [];
    const denying = verdict.steps.filter((s) => s.outcome === "Deny");
    // The allow goes ahead of every deny that may apply, the undecided ones too (they come first
    // by priority), so that it opens the flow whichever way they match.
    for (const s of verdict.steps) {
      const deny = [...s.undecided.map((u) => u.rule), s.matched].find((r) => r.access === "Deny");
      if (deny && s.outcome !== "Allow") fixes.push(...fixNsg(s.nsg, deny, flow));
    }
    const also = denying.length > 1
      ? ` NSG${denying.length > 2 ? "s" : ""} ${denying.slice(1).map((s) => `"${nsgName(s.nsg)}" (${s.place}, rule "${s.matched.name}")`).join(", ")} also den${denying.length > 2 ? "y" : "ies"} it: fix all of them.`
      : "";
    const earlierUnknown = verdict.steps.slice(0, verdict.steps.indexOf(d)).filter((s) => s.outcome === "unknown");
    if (earlierUnknown.length > 0) {
      assumptions.push(`Earlier NSG${earlierUnknown.length > 1 ? "s" : ""} ${earlierUnknown.map((s) => `"${nsgName(s.nsg)}"`).join(", ")} could not be decided; the flow is blocked either way`);
    }
    return undecidedFirst({
      ...base, status: "problem", verdict: "blocked", effect: "drop", decidedBy: decidedByOf(d, d.matched), path, details,
      summary: `Blocked: NSG "${nsgName(d.nsg)}" on the ${d.place} (${d.direction.toLowerCase()}) denies ${flowText} by rule "${d.matched.name}" (priority ${d.matched.priority}); the packets are dropped, so the client sees an i/o timeout. Add an allow rule with a lower priority number.${also}`,
      fixes,
    }, firstUndecided(verdict.steps.slice(0, verdict.steps.indexOf(d) + 1), flowText));
  }

  const d = verdict.decider!;
  const first = d.undecided[0]!;
  return {
    ...base, status: "indeterminate", verdict: "indeterminate", effect: null, decidedBy: decidedByOf(d, first.rule), path, details,
    summary: `Indeterminate: ${undecidedText(d)}, and it decides whether ${flowText} is allowed; to decide, give ${needsOf(d)}.`,
    fixes: [],
  };
}

const undecidedText = (s: PathStep) => {
  const u = s.undecided[0]!;
  return `in NSG "${nsgName(s.nsg)}" (${s.place}) rule "${u.rule.name}" (priority ${u.rule.priority}, ${u.rule.access}) depends on ${u.reason}`;
};
const needsOf = (s: PathStep) => [...new Set(s.undecided.map((u) => u.needs))].join("; ");

/**
 * The first rule left undecided among `steps`, the NSGs evaluated up to the decision (in path
 * order, then priority), for undecidedFirst.
 */
function firstUndecided(steps: readonly PathStep[], flowText: string): UndecidedRule | undefined {
  const s = steps.find((x) => x.undecided.length > 0);
  return s && {
    decidedBy: decidedByOf(s, s.undecided[0]!.rule),
    because: `whether ${flowText} is allowed: ${undecidedText(s)} (to decide, give ${needsOf(s)})`,
  };
}
