// `doctor iptables`: does the filter table let a new connection to the node's port in, and if
// not, which rule stops it and what removes it (doctor-cli.md `doctor iptables`).
import type ipaddr from "ipaddr.js";
import { DoctorInputError } from "../input-error.js";
import type { CheckResult, Fix, FlowEffect, FlowVerdict } from "../report/check-result.js";
import { undecidedFirst } from "../report/undecided-first.js";
import type { Decider, Effect, EvaluateResult, Outcome } from "./evaluate-iptables.js";
import { evaluateIptables, possibleEffects } from "./evaluate-iptables.js";
import { applyIptablesCommand } from "./apply-iptables-command.js";
import { persistFixes, planEarlierPolicyFix, planEarlierTableFix, planIptablesFix } from "./fix-iptables.js";
import { EPHEMERAL_PORTS } from "./match-condition.js";
import type { Packet } from "./match-condition.js";
import type { IncompatibleTable, Rule, Ruleset } from "./model.js";
import { parseIptablesDumps } from "./parse-iptables.js";
import { checkFlowFamilies, parseUnmapped } from "../flow-family.js";

export interface CheckIptablesOptions {
  readonly source: string;
  readonly destination?: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  readonly inInterface: string;
  readonly chain: string;
}

// What a client's connect() reports for each REJECT type (§4.3; Linux icmp_err_convert: every
// unreachable code aborts a connect in SYN-SENT).
export function clientErrorOf(effect: "accept" | "drop" | "reject", rejectWith: string | null): string {
  if (effect === "accept") return "a connection";
  if (effect === "drop") return "an i/o timeout";
  switch (rejectWith) {
    case "tcp-reset":
    case "icmp-port-unreachable":
    case "icmp6-port-unreachable":
    case "port-unreach":
    case null:
      return "connection refused";
    case "icmp-net-unreachable":
    case "icmp-net-prohibited":
    case "net-unreach":
    case "net-prohib":
    // ICMPv6 "no route to destination" is ENETUNREACH (icmpv6_err_convert).
    case "icmp6-no-route":
    case "no-route":
      return "network is unreachable";
    case "icmp-proto-unreachable":
      return "protocol not available";
    default:
      return "no route to host";
  }
}

function parseAddress(text: string, flag: string): ipaddr.IPv4 | ipaddr.IPv6 {
  try {
    return parseUnmapped(text);
  } catch (cause) {
    throw new DoctorInputError(`${flag} "${text}" is not an IP address`, { expected: `${flag} as an IPv4 or IPv6 address`, cause });
  }
}

/** What input would decide an undecidable match. */
function decideHint(reason: string): string {
  return /shows only with -v/.test(reason)
    ? "; run iptables-save (or iptables -L -n -v --line-numbers) to decide it"
    : /--destination/.test(reason) ? "; give --destination to decide it" : "";
}

// Rules of the filter table are named as `--line-numbers` shows them; those of the tables before
// it (raw, mangle, nat) with their table, as `iptables -t raw -L --line-numbers` would.
function whereOf(d: Decider): string {
  const table = d.table === "filter" ? "" : `${d.table} `;
  return d.rule === null ? `the ${table}${d.chain} policy ${d.policy ?? ""}`.trimEnd() : `${table}${d.chain} rule ${d.rule}`;
}

const EFFECT_WORDS: Record<Effect, { verb: string; participle: string }> = {
  accept: { verb: "accepts", participle: "accepted" },
  drop: { verb: "drops", participle: "dropped" },
  reject: { verb: "rejects", participle: "rejected" },
};

function orList(words: readonly string[]): string {
  return words.length <= 1 ? words.join("") : `${words.slice(0, -1).join(", ")} or ${words[words.length - 1]}`;
}

// What one way past an undecidable rule ends in, for the summary: the rule or policy that decides
// it, or the next rule that cannot be decided either and what the flow may then end in.
function branchText(branch: Outcome, reason: string): string {
  if (branch.kind === "decided") return `${whereOf(branch.decider)} ${EFFECT_WORDS[branch.effect].verb} it`;
  const why = branch.reason === reason ? "for the same reason" : `(${branch.reason})`;
  const possible = possibleEffects(branch);
  const then = possible === null
    ? "and what follows is not shown in the input"
    : `and the flow may be ${orList((["accept", "drop", "reject"] as const).filter((e) => possible.has(e)).map((e) => EFFECT_WORDS[e].participle))}`;
  return `${whereOf(branch.decider)} cannot be decided either ${why}, ${then}`;
}

function eitherWayText(outcome: Extract<Outcome, { kind: "indeterminate" }>): string {
  const b = outcome.branches;
  if (!b) return "";
  return ` If it applies, ${branchText(b.applies, outcome.reason)}; if not, ${branchText(b.not, outcome.reason)}.`;
}

const where = (outcome: Outcome): string => whereOf(outcome.decider);

// The first rule the walk could not decide that may decide ahead of the named one (same effect).
function mayDecideFirst(outcome: Extract<Outcome, { kind: "decided" }>): string {
  const u = outcome.uncertain.find((x) => x.ifApplies.chain !== outcome.decider.chain || x.ifApplies.rule !== outcome.decider.rule);
  if (!u) return "";
  const verb = { accept: "accept", drop: "drop", reject: "reject" }[outcome.effect];
  const self = u.ifApplies.chain === u.chain && u.ifApplies.rule === u.rule;
  return self
    ? `; ${u.chain} rule ${u.rule}, which could not be decided, may ${verb} it first`
    : `; if ${u.chain} rule ${u.rule} (which could not be decided) applies, ${whereOf(u.ifApplies)} ${verb}s it first`;
}

// IPv4 packets traverse only iptables' rules, IPv6 ones only ip6tables' (troubleshooting.md §4).
// A flow of the other family than the input's is a question this input cannot answer: not
// "allowed" (ip6tables, not shown, may drop it), and not "indeterminate", which doctor-cli.md
// keeps for a rule that depends on something the input does not show, naming that rule — no rule
// here is even met. It is the flags and the file that disagree, as for a --chain the input lacks:
// exit 2, naming the line that shows the input's family and what was expected instead. Where no
// line shows it (`iptables -L` without -n, a dump without addresses or header), the rules are
// taken to be the source's family, and that is listed as assumed.
function familyFor(ruleset: Ruleset, source: ipaddr.IPv4 | ipaddr.IPv6): "ipv4" | "ipv6" {
  const wanted = source.kind() === "ipv6" ? "ipv6" : "ipv4";
  if (wanted === ruleset.family) return wanted;
  const shown = ruleset.familyShownAt;
  if (shown === null) return wanted;
  const [input, needed] = ruleset.family === "ipv6" ? ["ip6tables (IPv6)", "iptables-save"] : ["iptables (IPv4)", "ip6tables-save"];
  const kind = wanted === "ipv6" ? "IPv6" : "IPv4";
  throw new DoctorInputError(`--source ${source.toString()} is ${kind}, but the input holds ${input} rules (as ${JSON.stringify(shown.text.slice(0, 80))} shows), which ${kind} packets never traverse`, {
    line: shown.line,
    expected: `${needed} output for an ${kind} --source, or a --source of the input's family`,
  });
}

// doctor-cli.md: the summary is "one sentence a person can act on". Where several rules block
// (or a rule and the policy), no one command opens the flow: name them all, in the order they
// must run (rule numbers shift after each delete), or, past a few, point to the list.
const maxStepsInSummary = 3;

function fixSentence(steps: readonly string[]): string {
  if (steps.length === 0) return "";
  if (steps.length === 1) return `; fix: ${steps[0]}`;
  if (steps.length <= maxStepsInSummary) return `; more than one thing blocks it, so run every fix, in this order: ${steps.join(", then ")}`;
  return `; ${steps.length} things block it, so run all ${steps.length} fixes listed, in the order given`;
}

// The filter table's built-in chains: each has a policy, ACCEPT where no table is loaded.
const builtInFilterChains = new Set(["INPUT", "FORWARD", "OUTPUT"]);

// iptables-save prints every table that is loaded, and nothing at all where none is (the
// nf_tables backend with no tables, or legacy iptables with its modules unloaded). Where the
// filter table is not among them, no rule filters anything, so the flow is accepted, as doctor
// node judges the same dump. An empty file given by mistake, or the output of `iptables-save -t
// nat`, reads the same, so the assumptions say so. A user chain cannot be in the filter table of
// such a dump: asking for one stays an input error, as for any listing that lacks the chain.
function checkNoFilterTable(opts: CheckIptablesOptions, shown: { tables: readonly string[]; family: "ipv4" | "ipv6" | null }): CheckResult {
  const source = parseAddress(opts.source, "--source");
  if (opts.destination !== undefined) parseAddress(opts.destination, "--destination");
  checkFlowFamilies(opts.source, opts.destination);
  const empty = shown.tables.length === 0;
  if (!builtInFilterChains.has(opts.chain)) {
    const what = empty ? "the input, which is empty" : `the input, which has no *filter table (only ${shown.tables.map((t) => `*${t}`).join(", ")})`;
    throw new DoctorInputError(`chain ${opts.chain} is not in ${what}`, { line: 1, expected: `a listing that includes chain ${opts.chain}` });
  }
  const family = shown.family ?? (source.kind() === "ipv6" ? "ipv6" : "ipv4");
  const cmd = family === "ipv6" ? "ip6tables" : "iptables";
  const flowText = `a new ${opts.protocol.toUpperCase()} connection from ${opts.source} to ${opts.destination ?? "the node"} port ${opts.port}`;
  const why = empty
    ? `The input is empty: ${cmd}-save prints nothing where no table is loaded (for example the nf_tables backend with no tables), so no ${cmd} rule filters ${opts.chain} and it accepts, as a policy ACCEPT would. An empty file given by mistake reads the same: check that the input is the whole output of ${cmd}-save.`
    : `The input has no *filter table (only ${shown.tables.map((t) => `*${t}`).join(", ")}): ${cmd}-save prints every table that is loaded, so the filter table is not, no ${cmd} rule filters ${opts.chain} and it accepts, as a policy ACCEPT would. The output of \`${cmd}-save -t ${shown.tables[0]}\` reads the same: check that the input is the whole output of ${cmd}-save, without -t.`;
  return {
    check: "iptables",
    status: "ok",
    summary: `iptables has no ${empty ? "" : "filter "}rules: nothing filters ${flowText}, so it is accepted.`,
    fixes: [],
    assumptions: [why, "Other firewalls are not included (nftables tables of their own: run doctor nftables on nft list ruleset)."],
    flow: { protocol: opts.protocol, source: opts.source, destination: opts.destination ?? null, port: opts.port },
    verdict: "allowed",
    effect: "accept",
    decidedBy: {
      table: "filter",
      chain: opts.chain,
      rule: null,
      target: "policy",
      policy: "ACCEPT",
      text: empty ? `no rules (the input is empty: ${cmd}-save printed nothing)` : `no filter rules (${cmd}-save printed no *filter table)`,
    },
    path: [],
    format: "iptables-save",
    rejectWith: null,
    details: [],
    command: cmd,
  };
}

// iptables-nft warns so where the legacy backend holds tables too: the kernel runs both sets of
// rules (§4.4 "split brain"), and a dump of one does not show the other.
function legacyAssumption(warning: { line: number; text: string }, family: "ipv4" | "ipv6"): string {
  const dump = family === "ipv6" ? "ip6tables-legacy-save" : "iptables-legacy-save";
  return `Line ${warning.line} ("${warning.text}"): iptables-legacy tables are present too. Their rules filter this node's traffic as well and are not in this input, so the verdict covers only the rules shown; dump them with ${dump} (ip6tables-legacy-save for IPv6, iptables-legacy-save for IPv4) and check that output too.`;
}

const MAX_EARLIER_FIXES = 8;

// A block in a table before filter (raw or mangle) is fixed in that table; then the walk runs
// again without it, since filter INPUT (or another earlier rule) may block the flow as well.
function planFixes(ruleset: Ruleset, packet: Packet, opts: CheckIptablesOptions, first: EvaluateResult, family: "ipv4" | "ipv6"): { fixes: Fix[]; steps: string[]; notes: string[] } {
  const fixes: Fix[] = [];
  const steps: string[] = [];
  const notes: string[] = [];
  const excluded = new Set<Rule>();
  let result = first;
  // The rules as the fixes so far leave them: a policy's fix inserts a rule.
  let fixed = ruleset;
  let changed = false;
  for (let round = 0; round < MAX_EARLIER_FIXES; round++) {
    const { outcome } = result;
    if (outcome.kind !== "decided" || outcome.effect === "accept") break;
    const flow = { protocol: opts.protocol, source: opts.source, port: result.packet.port, family };
    const table = outcome.decider.table;
    if (table !== "filter" && (outcome.deciderRule || outcome.decider.rule === null)) {
      if (outcome.deciderRule) {
        const fix = planEarlierTableFix(table, outcome.deciderRule, flow);
        fixes.push(fix);
        steps.push(fix.command);
        excluded.add(outcome.deciderRule);
      } else {
        const { fix, apply } = planEarlierPolicyFix(table, outcome.decider.chain, flow);
        fixes.push(fix);
        steps.push(fix.command);
        fixed = { ...fixed, tables: new Map(fixed.tables).set(table, applyIptablesCommand(fixed.tables.get(table)!, apply)) };
      }
      changed = true;
      result = evaluateIptables(fixed, packet, { chain: opts.chain, excludedEarlier: excluded });
      continue;
    }
    const plan = planIptablesFix(ruleset.tables.get("filter")!, result.packet, { chain: opts.chain, marks: result.marks }, outcome, flow);
    fixes.push(...plan.fixes);
    steps.push(...plan.steps);
    notes.push(...plan.notes);
    break;
  }
  if (result.outcome.kind === "indeterminate" && changed) {
    notes.push(`With the changes above, ${whereOf(result.outcome.decider)} cannot be decided (${result.outcome.reason}).`);
  }
  // planIptablesFix adds the notes that make iptables changes last where it changed anything.
  if (changed && !fixes.some((f) => f.command.includes("-save >"))) fixes.push(...persistFixes(family));
  return { fixes, steps, notes };
}

export function checkIptables(text: string, opts: CheckIptablesOptions): CheckResult {
  if (text.trim() === "") return checkNoFilterTable(opts, { tables: [], family: null });
  const dumps = parseIptablesDumps(text);
  const source = parseAddress(opts.source, "--source");
  // Where iptables-save and ip6tables-save output share the file, the flow meets only its own
  // family's dump (parseIptablesSaveDumps has checked that each dump shows its family).
  const ruleset = dumps.find((d) => d.family === (source.kind() === "ipv6" ? "ipv6" : "ipv4")) ?? dumps[0]!;
  const shown = checkRuleset(ruleset, source, opts);
  const hidden = ruleset.incompatibleTables ?? [];
  return hidden.length === 0 ? shown : hiddenTablesResult(shown, hidden, opts);
}

// doctor-cli.md: indeterminate is for what the input does not show. A table iptables-save says
// holds incompatible base chains is shown only as a stub (policies ACCEPT, no rules), and its
// nftables chains may hook anywhere (prerouting, input...) and accept, drop or reject: whatever the
// rules shown give, the input cannot decide the flow. What can is the nftables ruleset itself.
function hiddenTablesResult(shown: CheckResult, hidden: readonly IncompatibleTable[], opts: CheckIptablesOptions): CheckResult {
  const first = hidden[0]!;
  const names = [...new Set(hidden.map((h) => h.table))];
  const tables = names.length === 1 ? `the ${names[0]} table holds` : `the ${orList(names).replace(/ or /, " and ")} tables hold`;
  const lines = hidden.map((h) => `line ${h.line}`).join(", ");
  const decider = shown.decidedBy as Partial<Decider> | null;
  const byShown = shown.effect === null || shown.effect === undefined || decider?.chain === undefined
    ? "the rules shown cannot decide it either"
    : `the rules shown ${{ accept: "accept", drop: "drop", reject: "reject" }[shown.effect]} it at ${whereOf(decider as Decider)}`;
  const flowText = `a new ${opts.protocol.toUpperCase()} connection from ${opts.source} to ${opts.destination ?? "the node"} port ${opts.port}`;
  const { eitherWay: _eitherWay, ...rest } = shown;
  return {
    ...rest,
    status: "indeterminate",
    verdict: "indeterminate",
    effect: null,
    rejectWith: null,
    fixes: [],
    // What the client sees is the hidden chains' to say too.
    details: (shown.details ?? []).filter((d) => !d.startsWith("The client sees")),
    summary: `Cannot tell whether iptables lets ${flowText} in: ${lines} ("${first.text}") says ${tables} nftables base chains that iptables-save does not show, and they filter this node's traffic too; run nodetunnel doctor nftables on the output of \`nft list ruleset\` (${byShown}).`,
    decidedBy: { table: first.table, chain: opts.chain, rule: null, target: "policy", policy: null, text: first.text },
    assumptions: [
      ...shown.assumptions,
      ...hidden.map((h) => `Line ${h.line} ("${h.text}"): iptables-nft printed only a stub of the ${h.table} table (its built-in chains with policy ACCEPT); the nftables base chains in it are not in this input, and may accept, drop or reject the flow at any hook.`),
    ],
  };
}

function checkRuleset(ruleset: Ruleset, source: ipaddr.IPv4 | ipaddr.IPv6, opts: CheckIptablesOptions): CheckResult {
  const destination = opts.destination === undefined ? null : parseAddress(opts.destination, "--destination");
  // As doctor ufw and nsg: the flags disagreeing is bad usage, before the input's family is asked.
  checkFlowFamilies(opts.source, opts.destination);
  const family = familyFor(ruleset, source);
  const filter = ruleset.tables.get("filter");
  if (!filter) return checkNoFilterTable(opts, { tables: [...ruleset.tables.keys()], family: ruleset.familyShownAt ? ruleset.family : null });
  if (!filter.chains.has(opts.chain)) {
    throw new DoctorInputError(`chain ${opts.chain} is not in the input`, { line: 1, expected: `a listing that includes chain ${opts.chain}` });
  }
  const packet: Packet = {
    protocol: opts.protocol === "tcp" ? 6 : 17,
    source,
    destination,
    port: opts.port,
    inInterface: opts.inInterface,
    ctstates: new Set(["NEW"]),
  };
  const evaluated = evaluateIptables(ruleset, packet, { chain: opts.chain });
  const { outcome, warnings, rewrite, forward } = evaluated;
  const proto = opts.protocol.toUpperCase();
  const flowText = `a new ${proto} connection from ${opts.source} to ${opts.destination ?? "the node"} port ${opts.port}`;
  const cmd = family === "ipv6" ? "ip6tables" : "iptables";

  const assumptions: string[] = [
    `${flowText} arrives on ${opts.inInterface} (a ${opts.protocol === "tcp" ? "SYN" : "datagram"} from a source port in ${EPHEMERAL_PORTS.join("-")}, conntrack state NEW — INVALID in raw PREROUTING, which runs before conntrack — mark 0 until a rule sets it).`,
    ruleset.format === "iptables-save" && opts.chain !== "OUTPUT"
      ? `The tables before filter ${opts.chain} (raw and mangle PREROUTING, nat PREROUTING's rewrites${opts.chain === "FORWARD" ? "" : ", mangle INPUT"}) are walked first, then filter ${opts.chain} decides; an ACCEPT there ends filter ${opts.chain} but not other firewalls (nftables tables, ufw is included only as its iptables chains).`
      : `Only the filter table's ${opts.chain} chain decides; an ACCEPT there ends filter ${opts.chain} but not other firewalls (nftables tables, ufw is included only as its iptables chains).`,
  ];
  if (destination === null) {
    assumptions.push("No --destination: the node's own address is assumed for addrtype LOCAL and never to be loopback; other -d matches are undecidable.");
  }
  if (family !== ruleset.family) {
    assumptions.push(`The input does not show whether it holds iptables (IPv4) or ip6tables (IPv6) rules: they were taken as ${cmd} rules, since the source is ${family === "ipv6" ? "IPv6" : "IPv4"}.`);
  }
  assumptions.push(...ruleset.notes, ...warnings);
  if (ruleset.legacyTables) assumptions.push(legacyAssumption(ruleset.legacyTables, family));

  const details: string[] = [];
  const path = outcome.path.map((s) => ({ ...(s.table ? { table: s.table } : {}), chain: s.chain, rule: s.rule, action: s.action }));
  details.push(`Path: ${path.map((s) => `${s.table ? `${s.table} ` : ""}${s.chain}${s.rule === null ? "" : ` ${s.rule}`} → ${s.action}`).join("; ") || "(no rule matched)"}`);
  // §4.3: a nat rule that certainly rewrites the destination changes what filter sees.
  const natRule = (r: Rule) => `nat ${r.chain} rule ${r.number} ("${r.text.trim()}")`;
  const rewritten = rewrite ? ` after ${natRule(rewrite.rule)} rewrote it to ${rewrite.to.text} (${rewrite.target})` : "";

  let verdict: FlowVerdict;
  let effect: FlowEffect;
  let summary: string;
  let fixes: CheckResult["fixes"] = [];
  if (outcome.kind === "indeterminate" && forward && outcome.deciderRule === forward.rule) {
    verdict = "indeterminate";
    effect = null;
    const to = forward.to;
    summary = to.kind === "elsewhere"
      ? `filter ${opts.chain} never sees ${flowText}: ${natRule(forward.rule)} forwards it to ${to.text} (${forward.target}) before routing, so the FORWARD chain and that host decide${to.unlessLocal ? ` (unless ${to.text.replace(/:[^:]*$/, "")} is this node's own address: give --destination to tell)` : ""}.`
      : to.kind === "loopback"
        ? `Cannot tell whether ${flowText} gets in: ${natRule(forward.rule)} sends it to ${to.text} (${forward.target}), a loopback address, which routing drops as a martian unless net.ipv4.conf.${opts.inInterface}.route_localnet (or net.ipv4.conf.all.route_localnet) is 1; the input does not show that: check it with sysctl on the node.`
        : `Cannot tell whether filter ${opts.chain} sees ${flowText}: ${natRule(forward.rule)} rewrites its destination (${forward.target}) before routing, in a way this doctor cannot follow (${to.kind === "unknown" ? to.reason : ""}).`;
  } else if (outcome.kind === "indeterminate") {
    verdict = "indeterminate";
    effect = null;
    summary = `Cannot tell whether iptables lets ${flowText} in${rewritten}: ${where(outcome)} ("${outcome.decider.text.trim()}") depends on something the input does not show (${outcome.reason})${decideHint(outcome.reason)}.${eitherWayText(outcome)}`;
  } else {
    for (const u of outcome.uncertain) {
      const self = u.ifApplies.chain === u.chain && u.ifApplies.rule === u.rule;
      assumptions.push(`${u.chain} rule ${u.rule} could not be decided (${u.reason}); if it applies, ${self ? "it" : whereOf(u.ifApplies)} decides first, with the same verdict.`);
    }
    verdict = outcome.effect === "accept" ? "allowed" : "blocked";
    effect = outcome.effect;
    const sees = clientErrorOf(outcome.effect, outcome.rejectWith);
    if (outcome.effect === "accept") {
      summary = `iptables lets ${flowText} in: ${where(outcome)} accepts it${rewritten && `,${rewritten}`}${mayDecideFirst(outcome)}.`;
    } else {
      const verb = outcome.effect === "drop" ? "drops" : "rejects";
      const before = outcome.decider.table === "filter" ? ""
        : forward && outcome.deciderRule === forward.rule
          ? `, which sends it to ${forward.to.text} (${forward.target}), a loopback address IPv6 never routes from another interface, before filter ${opts.chain} sees it`
          : `, before filter ${opts.chain} sees it`;
      const plan = planFixes(ruleset, packet, opts, evaluated, family);
      fixes = plan.fixes;
      details.push(...plan.notes);
      summary = `iptables ${verb} ${flowText} at ${where(outcome)}${before}${rewritten && `,${rewritten}`} (the client sees ${sees})${mayDecideFirst(outcome)}${fixSentence(plan.steps)}.`;
      if (plan.steps.length > 1) details.push(`More than one thing blocks this flow: ${plan.steps.join(" ; ")}.`);
    }
    details.push(`The client sees ${sees}.`);
  }
  let status: CheckResult["status"] = verdict === "allowed" ? "ok" : verdict === "blocked" ? "problem" : "indeterminate";
  // Legacy tables the input does not show may still drop an allowed flow: a warning (exit 0).
  if (verdict === "allowed" && ruleset.legacyTables) {
    status = "warning";
    summary = `${summary.slice(0, -1)}; but iptables-legacy tables are present too (line ${ruleset.legacyTables.line}), which this input does not show and which may still block it: check ${family === "ipv6" ? "ip6tables-legacy-save" : "iptables-legacy-save"}.`;
  }
  const rejectWith = outcome.kind === "decided" ? outcome.rejectWith : null;
  const decided: CheckResult = {
    check: "iptables",
    status,
    summary,
    fixes,
    assumptions,
    flow: { protocol: opts.protocol, source: opts.source, destination: opts.destination ?? null, port: opts.port },
    verdict,
    effect,
    decidedBy: { ...outcome.decider },
    path,
    format: ruleset.format,
    rejectWith,
    details,
    command: cmd,
  };
  const undecided = outcome.kind === "decided" ? outcome.uncertain[0] : undefined;
  if (!undecided) return decided;
  return {
    ...undecidedFirst(decided, {
      decidedBy: { ...undecided.decider },
      because: `whether iptables lets ${flowText} in${rewritten}: ${undecided.chain} rule ${undecided.rule} ("${undecided.decider.text.trim()}") depends on something the input does not show (${undecided.reason})${decideHint(undecided.reason)}`,
    }, { rejectWith }),
    rejectWith: null,
  };
}
