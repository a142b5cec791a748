// Walks a chain of the filter table for a new connection as the kernel's ipt_do_table would
// (troubleshooting.md §4.3): jumps push a return point, gotos replace the current chain, RETURN
// and the end of a user chain go back to the caller, a built-in chain's end applies its policy.
//
// A rule whose match cannot be decided from the input (a rate limit, a hidden interface...) is
// followed both ways. If both ways end with the same effect the walk's outcome is decided by the
// way where the rule does not apply — the one that holds for certain — and lists the rule as
// uncertain (check-iptables.ts still reports such a flow as indeterminate, as doctor-cli.md asks,
// with what it ends in either way; the fix planner works from the decided outcome); otherwise the
// outcome is indeterminate and names that rule.
//
// evaluateIptables first runs the tables before filter INPUT (before-filter.ts): their certain
// DROP/REJECT decides, their marks are the walk's start, and a nat rewrite changes the packet
// filter sees, or takes the connection away from INPUT altogether.
import { applyMarkUpdate } from "../mark-update.js";
import { rewrittenPacket, walkMangleInput, walkPrerouting } from "./before-filter.js";
import type { EarlierBlock, NatRewrite } from "./before-filter.js";
import type { Chain, Rule, Ruleset, Table } from "./model.js";
import { matchAll } from "./match-condition.js";
import type { MatchState, Packet } from "./match-condition.js";

export type Effect = "accept" | "drop" | "reject";

/**
 * doctor-cli.md `doctor iptables`: ACCEPT, DROP or REJECT for a rule that decided, "policy" for a
 * policy. A rule that could not be decided is named by its own target as the input shows it (a
 * chain, RETURN, MARK, NFQUEUE, DNAT...): it decided nothing, so "policy" (with its rule number)
 * would misname it.
 */
/** doctor-cli.md `doctor iptables`: `decidedBy.target` is one of these, whatever the rule's own target. */
export type DeciderTarget = "ACCEPT" | "DROP" | "REJECT" | "policy";

export interface Decider {
  /** The table of `chain` (an extension of doctor-cli.md's shape): filter, or raw/mangle/nat before it. */
  readonly table: string;
  readonly chain: string;
  readonly rule: number | null;
  readonly target: DeciderTarget;
  readonly policy: "ACCEPT" | "DROP" | null;
  readonly text: string;
  /** For an undecidable rule whose own target is not ACCEPT/DROP/REJECT: that target again (kept for scripts that read it). */
  readonly ruleTarget?: string;
}

export interface PathStep {
  /** Set for a step in a table before filter (raw, mangle, nat). */
  readonly table?: string;
  readonly chain: string;
  readonly rule: number | null;
  readonly action: string;
}

export interface Uncertainty {
  readonly chain: string;
  readonly rule: number;
  readonly reason: string;
  /** The uncertain rule in decidedBy's shape, for the indeterminate verdict it makes (doctor-cli.md). */
  readonly decider: Decider;
  /** What decides first, with the same effect, when the uncertain rule applies. */
  readonly ifApplies: Decider;
  readonly ifAppliesRule: Rule | null;
}

export type Outcome =
  | {
    readonly kind: "decided";
    readonly effect: Effect;
    readonly rejectWith: string | null;
    readonly decider: Decider;
    readonly deciderRule: Rule | null;
    readonly path: readonly PathStep[];
    readonly uncertain: readonly Uncertainty[];
  }
  | {
    readonly kind: "indeterminate";
    readonly reason: string;
    readonly decider: Decider;
    readonly deciderRule: Rule | null;
    readonly path: readonly PathStep[];
    /** What the walk ends in if the undecidable rule applies, and if it does not. */
    readonly ifApplies?: Effect | "indeterminate";
    readonly ifNot?: Effect | "indeterminate";
    /** The two walks themselves, where both reached an end (for the summary: what each way decides). */
    readonly branches?: { readonly applies: Outcome; readonly not: Outcome };
  };

// Internal: a walk of one chain on its own that came back to its caller.
type Returned = { readonly kind: "returned"; readonly match: MatchState };

export interface WalkOptions {
  readonly chain: string;
  /** Rules to treat as deleted (used to find every rule that blocks, for the fix). */
  readonly excluded?: ReadonlySet<Rule>;
  /** The marks the packet reaches the chain with (set in raw/mangle before it); default 0 and 0. */
  readonly marks?: MatchState;
}

// The kernel refuses rule sets with loops and nests at most a few dozen chains; a bound here
// keeps a hand-written loop from hanging the doctor.
const MAX_DEPTH = 64;
const MAX_STEPS = 200_000;

interface Frame { readonly chain: Chain; readonly next: number }

interface WalkState {
  readonly frames: readonly Frame[];
  readonly match: MatchState;
  readonly path: readonly PathStep[];
}

function sameDecider(a: Decider, b: Decider): boolean {
  return a.table === b.table && a.chain === b.chain && a.rule === b.rule;
}

export function ruleDecider(table: string, rule: Rule, target: "ACCEPT" | "DROP" | "REJECT"): Decider {
  return { table, chain: rule.chain, rule: rule.number, target, policy: null, text: rule.text };
}

// For an indeterminate verdict, decidedBy names the undecidable rule "in the same shape"
// (doctor-cli.md): its chain and number, and a `target` from the contract's set, since scripts
// check it against that set: the rule's own ACCEPT, DROP or REJECT, or else "policy" with policy
// null (the decision is handed on: a jump, RETURN, DNAT, NFQUEUE...), with the rule's own target
// in `ruleTarget`. What each way would end in is the summary's to say (the outcome's branches).
export function undecidedDecider(table: string, rule: Rule): Decider {
  const own = targetName(rule);
  if (own === "ACCEPT" || own === "DROP" || own === "REJECT") return ruleDecider(table, rule, own);
  return { table, chain: rule.chain, rule: rule.number, target: "policy", policy: null, text: rule.text, ruleTarget: own };
}

export function targetName(rule: Rule): string {
  const t = rule.target;
  switch (t.kind) {
    case "accept": return "ACCEPT";
    case "drop": return "DROP";
    case "reject": return "REJECT";
    case "return": return "RETURN";
    case "jump": return t.chain;
    case "mark": return t.which === "packet" ? "MARK" : "CONNMARK";
    case "connmark-save":
    case "connmark-restore": return "CONNMARK";
    case "continue":
    case "unknown": return t.name;
  }
}

/** Every effect the walk may end in, over every way its undecidable rules go; null where some way ends in something the input does not show. */
export function possibleEffects(outcome: Outcome): ReadonlySet<Effect> | null {
  if (outcome.kind === "decided") return new Set([outcome.effect]);
  if (!outcome.branches) return null;
  const applies = possibleEffects(outcome.branches.applies);
  const not = possibleEffects(outcome.branches.not);
  return applies === null || not === null ? null : new Set([...applies, ...not]);
}

export function walkChain(table: Table, packet: Packet, options: WalkOptions): Outcome {
  const start = table.chains.get(options.chain);
  if (!start) throw new Error(`chain ${options.chain} is not in the input`);
  const excluded = options.excluded ?? new Set<Rule>();
  const tableName = table.name;
  let steps = 0;

  const endOfStart = (path: readonly PathStep[]): Outcome => {
    if (start.policy === null) {
      return {
        kind: "indeterminate",
        reason: `the walk fell off the end of user chain ${start.name}: its caller decides`,
        decider: { table: tableName, chain: start.name, rule: null, target: "policy", policy: null, text: `end of chain ${start.name}` },
        deciderRule: null,
        path,
      };
    }
    return {
      kind: "decided",
      effect: start.policy === "ACCEPT" ? "accept" : "drop",
      rejectWith: null,
      // doctor-cli.md: the text as the input showed it. A built-in chain the input gives no
      // policy line (iptables -S without -P) has the kernel's default, ACCEPT.
      decider: { table: tableName, chain: start.name, rule: null, target: "policy", policy: start.policy, text: start.policyText ?? `(no policy line for ${start.name} in the input: ${start.policy}, the default)` },
      deciderRule: null,
      path: [...path, { chain: start.name, rule: null, action: `policy ${start.policy}` }],
      uncertain: [],
    };
  };

  // `alone`: walking one chain on its own (see isNoOp), where emptying the stack is a return.
  function run(initial: WalkState, alone: boolean): Outcome | Returned {
    const { match } = initial;
    let { frames, path } = initial;
    for (;;) {
      if (++steps > MAX_STEPS) {
        const top = frames[frames.length - 1]!;
        return {
          kind: "indeterminate",
          reason: "too many undecidable rules to follow every way through the chains",
          decider: { table: tableName, chain: top.chain.name, rule: null, target: "policy", policy: top.chain.policy, text: `Chain ${top.chain.name}` },
          deciderRule: null,
          path,
        };
      }
      const top = frames[frames.length - 1];
      if (!top) return alone ? { kind: "returned", match } : endOfStart(path);
      if (top.next >= top.chain.rules.length) {
        // End of a chain: a user chain returns to its caller; the start chain applies its policy.
        frames = frames.slice(0, -1);
        if (frames.length > 0) path = [...path, { chain: top.chain.name, rule: null, action: "end of chain: return" }];
        continue;
      }
      const rule = top.chain.rules[top.next]!;
      frames = [...frames.slice(0, -1), { chain: top.chain, next: top.next + 1 }];
      if (excluded.has(rule)) continue;
      // A target with no verdict and no state the walk reads cannot change the outcome.
      if (rule.target.kind === "continue") continue;
      const matched = matchAll(rule.conditions, packet, match);
      if (matched === false) continue;
      if (matched !== true) {
        // A jump into a chain that, walked on its own, comes back without a verdict and without
        // touching the marks changes nothing whether or not the rule applies.
        if (rule.target.kind === "jump" && !rule.target.goto && isNoOp(rule.target.chain, match)) continue;
        const ifApplies = apply(rule, { frames, match, path }, alone);
        const ifNot = run({ frames, match, path }, alone);
        if (ifApplies.kind === "returned" && ifNot.kind === "returned" && ifApplies.match.mark === ifNot.match.mark && ifApplies.match.connmark === ifNot.match.connmark) {
          return ifNot;
        }
        if (ifApplies.kind === "returned" || ifNot.kind === "returned") {
          return { kind: "indeterminate", reason: matched.unknown, decider: undecidedDecider(tableName, rule), deciderRule: rule, path };
        }
        if (ifApplies.kind === "decided" && ifNot.kind === "decided" && ifApplies.effect === ifNot.effect) {
          const uncertainty = { chain: rule.chain, rule: rule.number, reason: matched.unknown, decider: undecidedDecider(tableName, rule), ifApplies: ifApplies.decider, ifAppliesRule: ifApplies.deciderRule };
          return { ...ifNot, uncertain: [uncertainty, ...ifNot.uncertain, ...ifApplies.uncertain] };
        }
        // Both ways stop at the same later undecidable rule: that rule is the one to name.
        if (ifApplies.kind === "indeterminate" && ifNot.kind === "indeterminate" && sameDecider(ifApplies.decider, ifNot.decider)) return ifNot;
        return {
          kind: "indeterminate",
          reason: matched.unknown,
          decider: undecidedDecider(tableName, rule),
          deciderRule: rule,
          path: [...path, { chain: rule.chain, rule: rule.number, action: `undecidable: ${matched.unknown}` }],
          ifApplies: ifApplies.kind === "decided" ? ifApplies.effect : "indeterminate",
          ifNot: ifNot.kind === "decided" ? ifNot.effect : "indeterminate",
          branches: { applies: ifApplies, not: ifNot },
        };
      }
      return apply(rule, { frames, match, path }, alone);
    }
  }

  const isNoOp = (chainName: string, match: MatchState): boolean => {
    const chain = table.chains.get(chainName)!;
    const result = run({ frames: [{ chain, next: 0 }], match, path: [] }, true);
    return result.kind === "returned" && result.match.mark === match.mark && result.match.connmark === match.connmark;
  };

  // The rule matched: carry out its target, then keep walking.
  const apply = (rule: Rule, state: WalkState, alone: boolean): Outcome | Returned => {
    const next = (s: WalkState) => run(s, alone);
    const { frames, match } = state;
    const path = [...state.path, { chain: rule.chain, rule: rule.number, action: targetName(rule) }];
    const target = rule.target;
    switch (target.kind) {
      case "accept":
      case "drop":
      case "reject":
        return {
          kind: "decided",
          effect: target.kind,
          rejectWith: target.kind === "reject" ? target.rejectWith : null,
          decider: ruleDecider(tableName, rule, target.kind === "accept" ? "ACCEPT" : target.kind === "drop" ? "DROP" : "REJECT"),
          deciderRule: rule,
          path,
          uncertain: [],
        };
      case "return":
        return next({ frames: frames.slice(0, -1), match, path });
      case "jump": {
        const chain = table.chains.get(target.chain)!;
        if (frames.length >= MAX_DEPTH) {
          return { kind: "indeterminate", reason: `chains nest deeper than ${MAX_DEPTH} (a loop?)`, decider: undecidedDecider(tableName, rule), deciderRule: rule, path };
        }
        // -g replaces the current chain, so its RETURN goes to the caller of the chain that did the goto.
        const below = target.goto ? frames.slice(0, -1) : frames;
        return next({ frames: [...below, { chain, next: 0 }], match, path });
      }
      case "mark": {
        const value = applyMarkUpdate(target.which === "packet" ? match.mark : match.connmark, target.update);
        return next({ frames, match: target.which === "packet" ? { ...match, mark: value } : { ...match, connmark: value }, path });
      }
      case "connmark-save":
        return next({ frames, match: { ...match, connmark: match.mark }, path });
      case "connmark-restore":
        return next({ frames, match: { ...match, mark: match.connmark }, path });
      case "continue":
        return next({ frames, match, path });
      case "unknown":
        return { kind: "indeterminate", reason: target.reason, decider: undecidedDecider(tableName, rule), deciderRule: rule, path };
    }
  };

  const outcome = run({ frames: [{ chain: start, next: 0 }], match: options.marks ?? { mark: 0, connmark: 0 }, path: [] }, false);
  if (outcome.kind === "returned") throw new Error("unreachable: only a walk of one chain on its own returns");
  return outcome;
}

export interface EvaluateResult {
  readonly outcome: Outcome;
  /** The packet as filter saw it (UNTRACKED after a raw NOTRACK, rewritten by nat): what any re-walk must use. */
  readonly packet: Packet;
  /** The marks the packet reached filter with (set in raw or mangle; null where unknown). */
  readonly marks: MatchState;
  /** What the tables before filter did or may have done (§4.3), for the assumptions. */
  readonly warnings: readonly string[];
  /** The nat PREROUTING rewrite that certainly applies and keeps the connection on this node: the walk used the rewritten packet. */
  readonly rewrite: NatRewrite | null;
  /** The nat PREROUTING rewrite that certainly applies and sends the connection to another host: filter INPUT never sees it. */
  readonly forward: NatRewrite | null;
}

export interface EvaluateOptions extends WalkOptions {
  /** Rules of the tables before filter to treat as deleted (for the fix). */
  readonly excludedEarlier?: ReadonlySet<Rule>;
}

function blockOutcome(block: EarlierBlock): Outcome {
  if (block.kind === "policy") {
    const { table, chain, policyText } = block;
    return {
      kind: "decided",
      effect: "drop",
      rejectWith: null,
      decider: { table, chain, rule: null, target: "policy", policy: "DROP", text: policyText },
      deciderRule: null,
      path: [{ table, chain, rule: null, action: "policy DROP" }],
      uncertain: [],
    };
  }
  const { table, rule, effect, rejectWith } = block;
  return {
    kind: "decided",
    effect,
    rejectWith,
    decider: ruleDecider(table, rule, effect === "drop" ? "DROP" : "REJECT"),
    deciderRule: rule,
    path: [{ table, chain: rule.chain, rule: rule.number, action: targetName(rule) }],
    uncertain: [],
  };
}

// A DNAT that sends the connection to another host: routing forwards it, so filter FORWARD and
// that host decide; filter INPUT never sees it, and no INPUT rule may be blamed or deleted.
function forwardOutcome(rewrite: NatRewrite): Outcome {
  const { rule, target, to } = rewrite;
  const reason = to.kind === "elsewhere"
    ? `it sends the connection to ${to.text} (${target})${to.unlessLocal ? `, another host unless ${to.text.split(":")[0]} is this node's own address (give --destination to tell)` : ", another host"}: the FORWARD chain and that host decide, not filter INPUT`
    : `it rewrites the connection's destination (${target}) in a way this doctor cannot follow: ${to.kind === "unknown" ? to.reason : ""}`;
  return { kind: "indeterminate", reason, decider: undecidedDecider("nat", rule), deciderRule: rule, path: [{ table: "nat", chain: rule.chain, rule: rule.number, action: target }] };
}

// A DNAT to a loopback address (§4.3). IPv4 routing takes a packet for 127/8 that came in on
// another interface as a martian and drops it, unless net.ipv4.conf.<in>.route_localnet (or .all)
// is 1, which the input does not show: indeterminate. IPv6 never routes ::1 from another
// interface: the node answers with ICMPv6 no route, and connect() fails with "network is
// unreachable" (both checked in the kernel: test/doctor-iptables-kernel.test.ts).
function loopbackOutcome(rewrite: NatRewrite, inInterface: string): Outcome {
  const { rule, to } = rewrite;
  const path = [{ table: "nat", chain: rule.chain, rule: rule.number, action: rewrite.target }];
  if (to.kind === "loopback" && to.family === "ipv6") {
    return {
      kind: "decided",
      effect: "reject",
      rejectWith: "icmp6-no-route",
      decider: { ...ruleDecider("nat", rule, "REJECT"), ruleTarget: rewrite.target },
      deciderRule: rule,
      path,
      uncertain: [],
    };
  }
  const sysctl = `net.ipv4.conf.${inInterface || "all"}.route_localnet`;
  const reason = `it sends the connection to ${to.text} (${rewrite.target}), a loopback address, which routing drops as a martian unless ${sysctl} (or net.ipv4.conf.all.route_localnet) is 1; the input does not show that sysctl`;
  return { kind: "indeterminate", reason, decider: undecidedDecider("nat", rule), deciderRule: rule, path };
}

const sameEnd = (a: Outcome, b: Outcome): boolean =>
  a.kind === "decided" ? b.kind === "decided" && a.effect === b.effect : b.kind === "indeterminate" && sameDecider(a.decider, b.decider);

// REDIRECT rewrites the destination to the first address of the incoming interface, which may not
// be the one dialled (a secondary address, a VIP): a -d match after it is decided only where it
// covers every address (a loopback range never holds it).
const redirectAssumption = (inInterface: string): string =>
  `After REDIRECT the connection's destination is the primary address of ${inInterface || "the incoming interface"} (its first), not necessarily the one dialled; the input does not show it, so -d matches in filter after it are undecidable (loopback ranges never hold it).`;

interface Scenario {
  readonly outcome: Outcome;
  readonly packet: Packet;
  readonly marks: MatchState;
  readonly notes: readonly string[];
}

export function evaluateIptables(ruleset: Ruleset, packet: Packet, options: EvaluateOptions): EvaluateResult {
  const filter = ruleset.tables.get("filter");
  if (!filter) throw new Error("the input has no filter table");
  const excluded = options.excludedEarlier ?? new Set<Rule>();
  const walkOptions: WalkOptions = { chain: options.chain, ...(options.excluded ? { excluded: options.excluded } : {}) };
  // A locally generated packet meets raw, mangle and nat OUTPUT instead, which are not walked here.
  if (options.chain === "OUTPUT") {
    return { outcome: walkChain(filter, packet, walkOptions), packet, marks: { mark: 0, connmark: 0 }, warnings: ["The tables before filter OUTPUT (raw, mangle and nat OUTPUT) were not walked."], rewrite: null, forward: null };
  }
  const pre = walkPrerouting(ruleset, packet, excluded);
  const warnings = [...pre.notes];
  if (pre.block) return { outcome: blockOutcome(pre.block), packet: pre.packet, marks: pre.marks, warnings, rewrite: null, forward: null };
  // A forwarded packet meets mangle FORWARD, not mangle INPUT, and FORWARD sees the rewritten
  // connection wherever it goes: there nat's rewrites are only named, as the verdict is for the
  // connection as sent.
  const forwarded = options.chain === "FORWARD";
  const scenario = (rewrite: NatRewrite | null): Scenario => {
    if (rewrite && !forwarded && rewrite.to.kind === "loopback") return { outcome: loopbackOutcome(rewrite, packet.inInterface), packet: pre.packet, marks: pre.marks, notes: [] };
    if (rewrite && !forwarded && rewrite.to.kind !== "here") return { outcome: forwardOutcome(rewrite), packet: pre.packet, marks: pre.marks, notes: [] };
    const walked = rewrite && !forwarded && rewrite.to.kind === "here" ? rewrittenPacket(pre.packet, rewrite.to) : pre.packet;
    const mangle = forwarded ? { marks: pre.marks, block: null, notes: [] } : walkMangleInput(ruleset, walked, pre.marks, excluded);
    if (mangle.block) return { outcome: blockOutcome(mangle.block), packet: walked, marks: mangle.marks, notes: mangle.notes };
    return { outcome: walkChain(filter, walked, { ...walkOptions, marks: mangle.marks }), packet: walked, marks: mangle.marks, notes: mangle.notes };
  };
  const certain = pre.rewrites.find((r) => r.certain) ?? null;
  const primary = scenario(certain);
  warnings.push(...primary.notes);
  const nat = (r: NatRewrite) => `nat ${r.rule.chain} rule ${r.rule.number} ("${r.rule.text}")`;
  if (certain && forwarded) {
    warnings.push(`${nat(certain)} rewrites this connection's destination to ${certain.to.text} (${certain.target}) before filter ${options.chain} sees it; the verdict is for the connection as sent.`);
  } else if (certain && certain.to.kind === "here") {
    warnings.push(`${nat(certain)} rewrites this connection's destination to ${certain.to.text} (${certain.target}) before filter ${options.chain} sees it: the walk used the rewritten connection (port ${certain.to.port}, conntrack state DNAT).`);
    if (certain.to.interfaceAddress) warnings.push(redirectAssumption(packet.inInterface));
  }
  // A rewrite that may apply (an undecidable match on the way) is followed both ways, as an
  // undecidable filter rule is (doctor-cli.md: a match that cannot be decided makes the verdict
  // indeterminate and names the rule): where the connection, rewritten, would end otherwise than
  // as the walk above found, the verdict depends on it; where it ends the same, it is only named.
  let outcome = primary.outcome;
  for (const maybe of pre.rewrites.filter((r) => !r.certain)) {
    const other = scenario(maybe);
    if (sameEnd(other.outcome, primary.outcome)) {
      warnings.push(`${nat(maybe)} may rewrite this connection's destination to ${maybe.to.text} (${maybe.target}) before filter ${options.chain} sees it (${maybe.doubt}); the verdict is the same whether or not it applies.`);
      continue;
    }
    if (outcome === primary.outcome) {
      outcome = {
        kind: "indeterminate",
        reason: `it may rewrite the connection's destination to ${maybe.to.text} (${maybe.target}): ${maybe.doubt}`,
        decider: undecidedDecider("nat", maybe.rule),
        deciderRule: maybe.rule,
        path: [{ table: "nat", chain: maybe.rule.chain, rule: maybe.rule.number, action: `undecidable: ${maybe.doubt}` }],
        ifApplies: other.outcome.kind === "decided" ? other.outcome.effect : "indeterminate",
        ifNot: primary.outcome.kind === "decided" ? primary.outcome.effect : "indeterminate",
        branches: { applies: other.outcome, not: primary.outcome },
      };
    }
  }
  return {
    outcome,
    packet: primary.packet,
    marks: primary.marks,
    warnings,
    rewrite: certain && certain.to.kind === "here" && !forwarded ? certain : null,
    forward: certain && certain.to.kind !== "here" && !forwarded ? certain : null,
  };
}
