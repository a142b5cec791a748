// `doctor nftables`: does the nftables ruleset let a new connection reach the kubelet port?
// Contract: doctor-cli.md `doctor nftables`; semantics: troubleshooting.md §4.4.
import type { CheckResult } from "../report/check-result.js";
import { undecidedFirst } from "../report/undecided-first.js";
import { checkFlowFamilies } from "../flow-family.js";
import { DoctorInputError } from "../input-error.js";
import type { NftEvaluation, NftFlow, NftPlace, NftRewrite } from "./evaluate-nftables.js";
import { evaluateNftables, parseAddr } from "./evaluate-nftables.js";
import { planNftablesFix } from "./fix-nftables.js";
import type { NftRule, NftRuleset } from "./nft-model.js";
import { parseNftRuleset } from "./parse-nft-ruleset.js";
import { withoutIptablesNft } from "./iptables-nft-chains.js";

export interface CheckNftablesOptions {
  readonly source: string;
  readonly destination?: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  readonly inInterface: string;
  /** The caller saw iptables-legacy rules too (e.g. `iptables-legacy-save` is not empty). */
  readonly legacyRulesPresent?: boolean;
}

/** The split-brain warning (§4.4): legacy and nft rules both apply, and neither tool shows both. */
export function legacyRulesWarning(ruleset: Pick<NftRuleset, "legacyWarning">, legacyRulesPresent = false): string | null {
  if (!legacyRulesPresent && !ruleset.legacyWarning) return null;
  return "iptables-legacy rules exist as well as nftables rules: both apply to every packet, and `nft list ruleset` does not show the legacy ones (check `iptables-legacy-save` with doctor iptables).";
}

export function checkNftables(text: string, opts: CheckNftablesOptions): CheckResult {
  checkFlowAddresses(opts);
  return judge(parseNftRuleset(text), opts, []).result;
}

/**
 * The nftables check as `doctor node` runs it beside the iptables check: the base chains
 * iptables-nft made are iptables-save's to judge, so those that cannot change what the other
 * chains see are left out (iptables-nft-chains.ts says why that is sound). `decidedInIptablesNft`:
 * the walk still ended in one of iptables-nft's chains (one kept for what it changes), which the
 * iptables finding reports already.
 */
export function checkNftablesBesideIptables(text: string, opts: CheckNftablesOptions): { result: CheckResult; decidedInIptablesNft: boolean } {
  checkFlowAddresses(opts);
  const split = withoutIptablesNft(parseNftRuleset(text));
  const notes: string[] = [];
  if (split.skipped.length > 0) {
    notes.push(`The base chains iptables-nft made (${split.skipped.join(", ")}: named, hooked and prioritised as iptables' built-in chains) were left out of this walk: the iptables finding judges them from iptables-save, and none of them changes what the other chains read (no mark, notrack or NAT).`);
  }
  if (split.kept.length > 0) {
    notes.push(`iptables-nft's ${split.kept.join(", ")} stayed in the walk: ${split.kept.length === 1 ? "it" : "they"} may change what later chains read (NAT, a mark, notrack).`);
  }
  const { result, place } = judge(split.ruleset, opts, notes);
  const decidedInIptablesNft = result.verdict !== "allowed" && place !== null && split.iptablesNftChains.has(place.chain);
  return { result, decidedInIptablesNft };
}

/** Whether an `nft list ruleset` holds anything besides the base chains iptables-nft made. */
export function hasOwnNftRules(text: string): boolean {
  return withoutIptablesNft(parseNftRuleset(text)).hasOwn;
}

function checkFlowAddresses(opts: CheckNftablesOptions): void {
  for (const [flag, value] of [["--source", opts.source], ["--destination", opts.destination]] as const) {
    if (value === undefined) continue;
    try {
      parseAddr(value);
    } catch (cause) {
      throw new DoctorInputError(`${flag} ${JSON.stringify(value)} is not an IP address`, { expected: "an IPv4 or IPv6 address", cause });
    }
  }
  // A connection from an IPv6 address to an IPv4 one does not exist: bad usage, not a verdict
  // (an IPv4-mapped address counts as IPv4), as in the ufw and nsg checks.
  checkFlowFamilies(opts.source, opts.destination);
}

function judge(ruleset: NftRuleset, opts: CheckNftablesOptions, notes: readonly string[]): { result: CheckResult; place: NftPlace | null } {
  const flow: NftFlow = { source: opts.source, destination: opts.destination ?? null, port: opts.port, protocol: opts.protocol, inInterface: opts.inInterface };
  const evaluateOptions = { legacyRulesPresent: opts.legacyRulesPresent ?? false };
  const e = evaluateNftables(ruleset, flow, evaluateOptions);
  const warning = legacyRulesWarning(ruleset, opts.legacyRulesPresent);
  const assumptions = [...notes, ...e.assumptions];
  const details: string[] = e.baseChains.map((b) => `base chain ${b.table.family} ${b.table.name} ${b.chain.name}: hook ${b.chain.base!.hook} priority ${b.chain.base!.priority}, policy ${b.chain.base!.policy}`);
  if (warning) details.unshift(warning);
  if (e.rewrite) assumptions.push(rewriteAssumption(e.rewrite, flow));
  for (const u of e.uncertain) {
    const self = u.ifApplies !== null && samePlace(u.ifApplies, u.place);
    assumptions.push(`${undecidedText(u.place)} could not be decided (${u.reason}); if it applies, ${self ? "it" : u.ifApplies ? placeText(u.ifApplies) : "nothing"} decides first, with the same verdict.`);
  }
  if (ruleset.format === "json" && ruleset.tables.some((t) => t.chains.some((c) => c.rules.some((r) => r.text.includes("xt match"))))) {
    assumptions.push("iptables-nft rules carry untranslated xt matches in JSON; `nft list ruleset` (text) shows them translated.");
  }
  const plan = planNftablesFix(ruleset, flow, e, evaluateOptions);
  if (plan.blockers.length > 1) {
    details.push(`More than one base chain blocks this flow: ${plan.blockers.map(placeText).join("; ")}. An accept ends only its own base chain, so each needs its fix.`);
  }
  details.push(...plan.notes);
  assumptions.push(...plan.assumptions);
  const decided: CheckResult = {
    check: "nftables",
    status: e.verdict === "allowed" ? (warning ? "warning" : "ok") : e.verdict === "blocked" ? "problem" : "indeterminate",
    summary: summarize(e, flow, plan.blockers),
    fixes: plan.fixes,
    assumptions,
    flow: { protocol: flow.protocol, source: flow.source, destination: flow.destination, port: flow.port },
    verdict: e.verdict,
    effect: e.effect,
    decidedBy: decidedBy(e.place, e.verdict, e.effect),
    ...(details.length > 0 ? { details } : {}),
  };
  const undecided = e.verdict === "indeterminate" ? undefined : e.uncertain[0];
  const result = undecidedFirst(decided, undecided && {
    decidedBy: decidedBy(undecided.place, "indeterminate", null)!,
    because: `whether nftables lets new ${flow.protocol.toUpperCase()} connections from ${flow.source} to port ${flow.port} in, which depends on ${undecidedText(undecided.place)}: ${undecided.reason}`,
  });
  return { result, place: undecided?.place ?? e.place };
}

function decidedBy(place: NftPlace | null, verdict: NftEvaluation["verdict"], effect: NftEvaluation["effect"]): Record<string, unknown> | null {
  if (place === null) return null;
  const { table, chain, rule } = place;
  return {
    table: `${table.family} ${table.name}`,
    chain: chain.name,
    rule: rule?.index ?? null,
    verdict: rule === null ? "policy" : verdict === "indeterminate" ? contractVerdict(undecidedVerdict(rule)) : effect,
    policy: rule === null ? chain.base?.policy ?? null : null,
    // The rule's own verdict where the contract's list has no word for it (jump, goto, return, vmap).
    ...(rule !== null && verdict === "indeterminate" && contractVerdict(undecidedVerdict(rule)) === "policy"
      ? { ruleVerdict: undecidedVerdict(rule) } : {}),
    text: rule?.text ?? chain.base!.text,
    ...(rule?.handle != null ? { handle: rule.handle } : {}),
  };
}

/**
 * doctor-cli.md: for an indeterminate verdict decidedBy names the first rule that could not be
 * decided "in the same shape", so its `verdict` is what that rule would do if it applied: accept,
 * drop or reject as for a decided rule; jump, goto or return where it passes control on (nft's own
 * verdict names: the outcome then depends on another chain), vmap where a verdict map picks it.
 */
/**
 * doctor-cli.md lists accept, drop, reject and policy. A rule that hands the decision on (jump,
 * goto, return, vmap, queue) leaves it to another chain and in the end to a policy: "policy", with
 * `policy: null` as it is not known which, and the rule's own verdict in `ruleVerdict` (as the
 * iptables check's `ruleTarget`).
 */
function contractVerdict(verdict: string): "accept" | "drop" | "reject" | "policy" {
  return verdict === "accept" || verdict === "drop" || verdict === "reject" ? verdict : "policy";
}

function undecidedVerdict(rule: NftRule): string {
  for (const st of rule.statements) {
    if (st.kind === "verdict") return st.verdict.kind;
    if (st.kind === "vmap") return "vmap";
    if (st.kind === "nat") return st.nat;
  }
  // No verdict: a rule that may set the packet mark (meta mark set), then goes on as nft does.
  return "continue";
}

const samePlace = (a: NftPlace, b: NftPlace) => a.table === b.table && a.chain === b.chain && a.rule === b.rule;

// What could not be decided: a rule, or (rule null) whether an ingress chain whose device the
// input does not show sees the packet at all (evaluate-nftables.ts).
function undecidedText(p: NftPlace): string {
  return p.rule ? placeText(p) : `whether ingress chain ${p.table.family} ${p.table.name} ${p.chain.name} sees the packet`;
}

function placeText(p: NftPlace): string {
  const where = `${p.table.family} ${p.table.name} chain ${p.chain.name}`;
  return p.rule ? `rule ${p.rule.index} "${p.rule.text}" in ${where}` : `the policy (${p.chain.base?.policy}) of ${where}`;
}

// The first undecidable rule that may decide ahead of the named one, with the same verdict.
function mayDecideFirst(e: NftEvaluation): string {
  const u = e.uncertain.find((x) => x.ifApplies !== null && e.place !== null && !samePlace(x.ifApplies, e.place));
  if (!u) return "";
  const verb = { accept: "accept", drop: "drop", reject: "reject" }[e.effect ?? "accept"];
  return samePlace(u.ifApplies!, u.place)
    ? `; ${undecidedText(u.place)}, which could not be decided, may ${verb} them first`
    : `; if ${undecidedText(u.place)} (which could not be decided) applies, ${placeText(u.ifApplies!)} ${verb}s them first`;
}

const endText = { accept: "accepted", drop: "dropped", reject: "rejected", indeterminate: "still undecided" } as const;

function summarize(e: NftEvaluation, flow: NftFlow, blockers: readonly NftPlace[]): string {
  const what = `new ${flow.protocol.toUpperCase()} connections from ${flow.source} to port ${flow.port}`;
  if (e.place === null) {
    return e.baseChains.length === 0
      ? `nftables has no filter chain on the input path for this address family, so it does not filter ${what}.`
      : `nftables does not filter ${what}: none of its filter chains on the input path sees them (see the assumptions).`;
  }
  const where = `${e.place.table.family} ${e.place.table.name} chain ${e.place.chain.name}`;
  const rule = e.place.rule ? `rule ${e.place.rule.index} "${e.place.rule.text}"` : `the policy (${e.place.chain.base?.policy})`;
  if (e.verdict === "indeterminate" && e.forwardedTo !== undefined) {
    // troubleshooting.md §4.3: a DNAT on prerouting sends the connection elsewhere before any input
    // chain sees it, so no input rule is to blame.
    return `nftables forwards ${what} to ${e.forwardedTo}: ${rule} in ${where} rewrites their destination (dnat) before the input chains, so they are routed on to that address rather than delivered to the node, and the forward hook (filter chains on hook forward) and that host decide whether they connect (unless that address is one of the node's own).`;
  }
  if (e.verdict === "indeterminate") {
    const either = e.ifApplies && e.ifNot ? ` If it applies they are ${endText[e.ifApplies]}, otherwise ${endText[e.ifNot]}.` : "";
    const undecided = e.place.rule ? `${rule} in ${where}` : undecidedText(e.place);
    return `nftables' verdict on ${what} depends on ${undecided}: ${e.reason}.${either}`;
  }
  const nat = e.rewrite ? `${rewriteText(e.rewrite, flow)}, and ` : "";
  if (e.verdict === "allowed") return `nftables accepts ${what}: ${nat}every base chain on the path accepts them (last: ${rule} in ${where})${mayDecideFirst(e)}.`;
  const seen = e.effect === "drop" ? "the client sees an i/o timeout" : `rejected with ${e.reject ?? "an error"}: the client sees ${clientErrorOfReject(e.reject)}`;
  // doctor-cli.md: `accept` ends only its base chain, so a later base chain that blocks as well
  // needs its own fix; the summary says so, or fixing the first alone would look enough.
  const more = blockers.slice(1);
  const too = more.length === 0 ? "" : `; ${more.map(placeText).join(" and ")} ${more.length === 1 ? "blocks" : "block"} them too, so apply every fix listed`;
  return `nftables ${e.effect === "drop" ? "drops" : "rejects"} ${what}: ${nat}${rule} in ${where} decides (${seen})${mayDecideFirst(e)}${too}.`;
}

/** "rule 1 "tcp dport 10250 redirect to :8080" in ip nat chain prerouting redirects them to port 8080". */
function rewriteText(r: NftRewrite, flow: NftFlow, them = "them"): string {
  const to = r.address === null || r.address === flow.destination ? `port ${r.port}` : `${r.address} port ${r.port}`;
  const does = r.nat === "redirect" ? `redirects ${them}` : `rewrites the destination of ${them}`;
  return `${placeText(r.place)} ${does} to ${to}`;
}

function rewriteAssumption(r: NftRewrite, flow: NftFlow): string {
  const port = r.port === flow.port ? `port ${r.port} (unchanged)` : `port ${r.port} instead of ${flow.port}`;
  return `The nat rule's rewrite was applied: ${rewriteText(r, flow, "the connection")} on prerouting, so every chain after it was walked with destination ${port}.`;
}

// What a client's connect() reports for each reject type nft lists (§4.3; Linux icmp_err_convert
// and icmpv6_err_convert: every unreachable code aborts a connect in SYN-SENT), worded as the
// iptables check words its REJECT types (check-iptables.ts clientErrorOf). nft's default reject,
// and `icmpx port-unreachable` in inet tables, send a port-unreachable (for TCP in inet tables a
// reset): connection refused either way.
function clientErrorOfReject(reject: string | null): string {
  if (reject === null) return "connection refused or no route to host";
  if (reject === "tcp reset" || /\bport-unreachable\b/.test(reject) || /^icmp port-unreachable \(/.test(reject)) return "connection refused";
  if (/\b(net-unreachable|no-route|net-prohibited)\b/.test(reject)) return "network is unreachable";
  if (/\bprot-unreachable\b/.test(reject)) return "protocol not available";
  if (/\b(host-unreachable|addr-unreachable|host-prohibited|admin-prohibited|policy-fail|reject-route)\b/.test(reject)) return "no route to host";
  return "connection refused or no route to host";
}
