// `doctor iptables`: does the filter table let a new connection to the node's port in, and if
// not, which rule stops it and what removes it (doctor-cli.md `doctor iptables`).
import ipaddr from "ipaddr.js";
import { DoctorInputError } from "../input-error.js";
import type { CheckResult, FlowEffect, FlowVerdict } from "../report/check-result.js";
import { undecidedFirst } from "../report/undecided-first.js";
import type { Decider, Outcome } from "./evaluate-iptables.js";
import { evaluateIptables } from "./evaluate-iptables.js";
import { planIptablesFix } from "./fix-iptables.js";
import { EPHEMERAL_PORTS } from "./match-condition.js";
import type { Packet } from "./match-condition.js";
import type { Ruleset } from "./model.js";
import { parseIptablesDumps } from "./parse-iptables.js";

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
      return "network is unreachable";
    case "icmp-proto-unreachable":
      return "protocol not available";
    default:
      return "no route to host";
  }
}

function parseAddress(text: string, flag: string): ipaddr.IPv4 | ipaddr.IPv6 {
  try {
    const address = ipaddr.parse(text);
    return address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress() ? (address as ipaddr.IPv6).toIPv4Address() : address;
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

function whereOf(d: Decider): string {
  return d.rule === null ? `the ${d.chain} policy ${d.policy ?? ""}`.trimEnd() : `${d.chain} rule ${d.rule}`;
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

export function checkIptables(text: string, opts: CheckIptablesOptions): CheckResult {
  if (text.trim() === "") return checkNoFilterTable(opts, { tables: [], family: null });
  const dumps = parseIptablesDumps(text);
  const source = parseAddress(opts.source, "--source");
  // Where iptables-save and ip6tables-save output share the file, the flow meets only its own
  // family's dump (parseIptablesSaveDumps has checked that each dump shows its family).
  const ruleset = dumps.find((d) => d.family === (source.kind() === "ipv6" ? "ipv6" : "ipv4")) ?? dumps[0]!;
  const family = familyFor(ruleset, source);
  const destination = opts.destination === undefined ? null : parseAddress(opts.destination, "--destination");
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
  const { outcome, packet: walked, warnings, rewrite } = evaluateIptables(ruleset, packet, { chain: opts.chain });
  const proto = opts.protocol.toUpperCase();
  const flowText = `a new ${proto} connection from ${opts.source} to ${opts.destination ?? "the node"} port ${opts.port}`;
  const cmd = family === "ipv6" ? "ip6tables" : "iptables";

  const assumptions: string[] = [
    `${flowText} arrives on ${opts.inInterface} (a ${opts.protocol === "tcp" ? "SYN" : "datagram"} from a source port in ${EPHEMERAL_PORTS.join("-")}, conntrack state NEW, mark 0).`,
    `Only the filter table's ${opts.chain} chain decides; an ACCEPT there ends filter ${opts.chain} but not other firewalls (nftables tables, ufw is included only as its iptables chains).`,
  ];
  if (destination === null) {
    assumptions.push("No --destination: the node's own address is assumed for addrtype LOCAL and never to be loopback; other -d matches are undecidable.");
  }
  if (family !== ruleset.family) {
    assumptions.push(`The input does not show whether it holds iptables (IPv4) or ip6tables (IPv6) rules: they were taken as ${cmd} rules, since the source is ${family === "ipv6" ? "IPv6" : "IPv4"}.`);
  }
  assumptions.push(...ruleset.notes, ...warnings);

  const details: string[] = [];
  const path = outcome.path.map((s) => ({ chain: s.chain, rule: s.rule, action: s.action }));
  details.push(`Path: ${path.map((s) => `${s.chain}${s.rule === null ? "" : ` ${s.rule}`} → ${s.action}`).join("; ") || "(no rule matched)"}`);

  let verdict: FlowVerdict;
  let effect: FlowEffect;
  let summary: string;
  let fixes: CheckResult["fixes"] = [];
  if (outcome.kind === "indeterminate") {
    verdict = "indeterminate";
    effect = null;
    const either = outcome.ifApplies && outcome.ifNot
      ? ` If it applies the flow ends in ${outcome.ifApplies}, otherwise in ${outcome.ifNot}.`
      : "";
    summary = `Cannot tell whether iptables lets ${flowText} in: ${where(outcome)} ("${outcome.decider.text.trim()}") depends on something the input does not show (${outcome.reason})${decideHint(outcome.reason)}.${either}`;
  } else {
    for (const u of outcome.uncertain) {
      const self = u.ifApplies.chain === u.chain && u.ifApplies.rule === u.rule;
      assumptions.push(`${u.chain} rule ${u.rule} could not be decided (${u.reason}); if it applies, ${self ? "it" : whereOf(u.ifApplies)} decides first, with the same verdict.`);
    }
    verdict = outcome.effect === "accept" ? "allowed" : "blocked";
    effect = outcome.effect;
    const sees = clientErrorOf(outcome.effect, outcome.rejectWith);
    if (outcome.effect === "accept") {
      summary = `iptables lets ${flowText} in: ${where(outcome)} accepts it${mayDecideFirst(outcome)}.`;
    } else {
      const verb = outcome.effect === "drop" ? "drops" : "rejects";
      const plan = planIptablesFix(filter, walked, { chain: opts.chain }, outcome, { protocol: opts.protocol, source: opts.source, port: opts.port, family });
      fixes = plan.fixes;
      details.push(...plan.notes);
      summary = `iptables ${verb} ${flowText} at ${where(outcome)} (the client sees ${sees})${mayDecideFirst(outcome)}${fixSentence(plan.steps)}.`;
      if (plan.steps.length > 1) details.push(`More than one thing blocks this flow: ${plan.steps.join(" ; ")}.`);
    }
    details.push(`The client sees ${sees}.`);
  }
  // §4.3: a nat rule that certainly rewrites the destination sends the connection elsewhere
  // before filter INPUT sees it. A flow filter would let in is then a warning, not "ok".
  let status: CheckResult["status"] = verdict === "allowed" ? "ok" : verdict === "blocked" ? "problem" : "indeterminate";
  if (rewrite) {
    const nat = `nat ${rewrite.rule.chain} rule ${rewrite.rule.number} ("${rewrite.rule.text.trim()}") rewrites its destination${rewrite.to ? ` to ${rewrite.to}` : ""} (${rewrite.target}) before filter ${opts.chain} sees it`;
    if (verdict === "allowed") {
      status = "warning";
      summary = `iptables sends ${flowText} elsewhere: ${nat}; as sent, filter ${opts.chain} would let it in (${where(outcome)}).`;
    } else {
      details.unshift(`${nat}: the verdict is for the connection as sent.`);
    }
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
      because: `whether iptables lets ${flowText} in: ${undecided.chain} rule ${undecided.rule} ("${undecided.decider.text.trim()}") depends on something the input does not show (${undecided.reason})${decideHint(undecided.reason)}`,
    }, { rejectWith }),
    rejectWith: null,
  };
}
