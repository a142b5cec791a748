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
import { applyMarkUpdate } from "../mark-update.js";
import type { Chain, Rule, Ruleset, Table } from "./model.js";
import { matchAll } from "./match-condition.js";
import type { MatchState, Packet } from "./match-condition.js";

export type Effect = "accept" | "drop" | "reject";

/** doctor-cli.md `doctor iptables`: `decidedBy.target` is one of these, whatever the rule's own target. */
export type DeciderTarget = "ACCEPT" | "DROP" | "REJECT" | "policy";

export interface Decider {
  readonly chain: string;
  readonly rule: number | null;
  readonly target: DeciderTarget;
  readonly policy: "ACCEPT" | "DROP" | null;
  readonly text: string;
  /** For an undecidable rule whose own target is not ACCEPT/DROP/REJECT: that target (a chain, RETURN, NFQUEUE...). */
  readonly ruleTarget?: string;
}

export interface PathStep {
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
  };

// Internal: a walk of one chain on its own that came back to its caller.
type Returned = { readonly kind: "returned"; readonly match: MatchState };

export interface WalkOptions {
  readonly chain: string;
  /** Rules to treat as deleted (used to find every rule that blocks, for the fix). */
  readonly excluded?: ReadonlySet<Rule>;
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
  return a.chain === b.chain && a.rule === b.rule;
}

function ruleDecider(rule: Rule, target: "ACCEPT" | "DROP" | "REJECT"): Decider {
  return { chain: rule.chain, rule: rule.number, target, policy: null, text: rule.text };
}

// For an indeterminate verdict, decidedBy names the undecidable rule "in the same shape"
// (doctor-cli.md), so `target` stays in the contract's set: the rule's own ACCEPT/DROP/REJECT, or
// else what the walk ends in if it applies (the ACCEPT/DROP/REJECT met, or "policy" with the
// policy reached, e.g. through a RETURN). Where that is unknown too (a chain the input lacks,
// NFQUEUE, a later undecidable rule) it is "policy" with policy null: handed on to something the
// input does not show, as at the end of a user chain. `ruleTarget` keeps the rule's own target.
function undecidedDecider(rule: Rule, ifApplies: Outcome | Returned | null): Decider {
  const own = targetName(rule);
  if (own === "ACCEPT" || own === "DROP" || own === "REJECT") return ruleDecider(rule, own);
  const leadsTo = ifApplies?.kind === "decided" ? ifApplies.decider : null;
  return {
    chain: rule.chain,
    rule: rule.number,
    target: leadsTo?.target ?? "policy",
    policy: leadsTo?.rule === null ? leadsTo.policy : null,
    text: rule.text,
    ruleTarget: own,
  };
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

export function walkChain(table: Table, packet: Packet, options: WalkOptions): Outcome {
  const start = table.chains.get(options.chain);
  if (!start) throw new Error(`chain ${options.chain} is not in the input`);
  const excluded = options.excluded ?? new Set<Rule>();
  let steps = 0;

  const endOfStart = (path: readonly PathStep[]): Outcome => {
    if (start.policy === null) {
      return {
        kind: "indeterminate",
        reason: `the walk fell off the end of user chain ${start.name}: its caller decides`,
        decider: { chain: start.name, rule: null, target: "policy", policy: null, text: `end of chain ${start.name}` },
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
      decider: { chain: start.name, rule: null, target: "policy", policy: start.policy, text: start.policyText ?? `(no policy line for ${start.name} in the input: ${start.policy}, the default)` },
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
          decider: { chain: top.chain.name, rule: null, target: "policy", policy: top.chain.policy, text: `Chain ${top.chain.name}` },
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
          return { kind: "indeterminate", reason: matched.unknown, decider: undecidedDecider(rule, null), deciderRule: rule, path };
        }
        if (ifApplies.kind === "decided" && ifNot.kind === "decided" && ifApplies.effect === ifNot.effect) {
          const uncertainty = { chain: rule.chain, rule: rule.number, reason: matched.unknown, decider: undecidedDecider(rule, ifApplies), ifApplies: ifApplies.decider, ifAppliesRule: ifApplies.deciderRule };
          return { ...ifNot, uncertain: [uncertainty, ...ifNot.uncertain, ...ifApplies.uncertain] };
        }
        // Both ways stop at the same later undecidable rule: that rule is the one to name.
        if (ifApplies.kind === "indeterminate" && ifNot.kind === "indeterminate" && sameDecider(ifApplies.decider, ifNot.decider)) return ifNot;
        return {
          kind: "indeterminate",
          reason: matched.unknown,
          decider: undecidedDecider(rule, ifApplies),
          deciderRule: rule,
          path: [...path, { chain: rule.chain, rule: rule.number, action: `undecidable: ${matched.unknown}` }],
          ifApplies: ifApplies.kind === "decided" ? ifApplies.effect : "indeterminate",
          ifNot: ifNot.kind === "decided" ? ifNot.effect : "indeterminate",
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
          decider: ruleDecider(rule, target.kind === "accept" ? "ACCEPT" : target.kind === "drop" ? "DROP" : "REJECT"),
          deciderRule: rule,
          path,
          uncertain: [],
        };
      case "return":
        return next({ frames: frames.slice(0, -1), match, path });
      case "jump": {
        const chain = table.chains.get(target.chain)!;
        if (frames.length >= MAX_DEPTH) {
          return { kind: "indeterminate", reason: `chains nest deeper than ${MAX_DEPTH} (a loop?)`, decider: undecidedDecider(rule, null), deciderRule: rule, path };
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
        return { kind: "indeterminate", reason: target.reason, decider: undecidedDecider(rule, null), deciderRule: rule, path };
    }
  };

  const outcome = run({ frames: [{ chain: start, next: 0 }], match: { mark: 0, connmark: 0 }, path: [] }, false);
  if (outcome.kind === "returned") throw new Error("unreachable: only a walk of one chain on its own returns");
  return outcome;
}

/** A nat rule that certainly rewrites the connection's destination before filter INPUT. */
export interface DestinationRewrite {
  readonly rule: Rule;
  /** DNAT, REDIRECT, NETMAP... */
  readonly target: string;
  /** Where it sends the connection, as the rule says it (`10.0.0.9:8080`, `ports 8080`); null if unread. */
  readonly to: string | null;
}

export interface EvaluateResult {
  readonly outcome: Outcome;
  /** The packet as filter saw it (UNTRACKED after a raw NOTRACK): what any re-walk must use. */
  readonly packet: Packet;
  /** Warnings about tables before filter INPUT (nat DNAT, raw NOTRACK): §4.3. */
  readonly warnings: readonly string[];
  /** The nat PREROUTING rule that certainly rewrites the destination, if any (§4.3 "flag"). */
  readonly rewrite: DestinationRewrite | null;
}

const DESTINATION_NAT = new Set(["DNAT", "REDIRECT", "NETMAP", "DNPT"]);
// Targets that end a walk of the nat or raw table (a NAT target binds the connection's mapping).
const ENDS_NAT_WALK = new Set([...DESTINATION_NAT, "SNAT", "MASQUERADE", "SNPT"]);

interface EarlierRule { readonly rule: Rule; readonly certain: boolean }

// Walks a built-in chain of a table that runs before filter INPUT and collects the rules `wanted`
// picks that the packet may reach and match. `certain` holds only when every rule before it
// decidably matched or missed and it matches for sure: a rule after an undecidable RETURN, ACCEPT
// or DNAT, or in a chain reached through an undecidable jump, may never be reached. Marks set in
// mangle are not followed (they read as unknown).
function earlierRules(table: Table | undefined, chainName: string, packet: Packet, wanted: (rule: Rule) => boolean): EarlierRule[] {
  const found: EarlierRule[] = [];
  if (!table) return found;
  let steps = 0;
  // "ended": a verdict or NAT target certainly applied; "returned": certainly came back; "maybe": either.
  const walk = (name: string, reached: boolean, depth: number): "ended" | "returned" | "maybe" => {
    const chain = table.chains.get(name);
    if (!chain || depth > MAX_DEPTH) return "maybe";
    let sure = reached;
    for (const rule of chain.rules) {
      if (++steps > MAX_STEPS) return "maybe";
      const m = matchAll(rule.conditions, packet, { mark: null, connmark: null });
      if (m === false) continue;
      const certain = sure && m === true;
      if (wanted(rule)) found.push({ rule, certain });
      const t = rule.target;
      let result: "ended" | "returned" | "maybe" | "continue";
      if (t.kind === "jump") {
        const sub = walk(t.chain, certain, depth + 1);
        // A goto never comes back here: its chain's RETURN is this chain's.
        result = t.goto ? sub : sub === "returned" ? "continue" : sub;
      } else if (t.kind === "return") result = "returned";
      else if (t.kind === "accept" || t.kind === "drop" || t.kind === "reject" || (t.kind === "unknown" && ENDS_NAT_WALK.has(t.name))) result = "ended";
      else if (t.kind === "unknown") result = "maybe";
      else result = "continue";
      if (result === "continue") continue;
      if (certain && result !== "maybe") return result;
      sure = false;
    }
    return sure ? "returned" : "maybe";
  };
  walk(chainName, true, 0);
  return found;
}

/**
 * The first nat rule of `chainName` (OUTPUT for what the node sends) that may rewrite the
 * connection's destination before filter sees it, certainly or maybe; null where none can.
 */
export function mayRewriteDestination(ruleset: Ruleset, chainName: string, packet: Packet): Rule | null {
  const nameOf = (rule: Rule) => (rule.target.kind === "unknown" || rule.target.kind === "continue" ? rule.target.name : "");
  return earlierRules(ruleset.tables.get("nat"), chainName, packet, (r) => DESTINATION_NAT.has(nameOf(r)))[0]?.rule ?? null;
}

function rewriteDestination(rule: Rule, name: string): string | null {
  const option = name === "REDIRECT" ? "--to-ports" : name === "NETMAP" ? "--to" : "--to-destination";
  const value = new RegExp(`${option}\\s+(\\S+)`).exec(rule.text)?.[1];
  return value === undefined ? null : name === "REDIRECT" ? `this node's port ${value}` : value;
}

// The nat and raw tables run before filter INPUT (§4.3); the doctor does not rewrite the packet
// but names any rule that would, since it changes what filter sees.
function earlierTableWarnings(ruleset: Ruleset, packet: Packet): { warnings: string[]; untracked: boolean; rewrite: DestinationRewrite | null } {
  const warnings: string[] = [];
  let untracked = false;
  let rewrite: DestinationRewrite | null = null;
  const nameOf = (rule: Rule) => (rule.target.kind === "unknown" || rule.target.kind === "continue" ? rule.target.name : "");
  for (const { rule, certain } of earlierRules(ruleset.tables.get("nat"), "PREROUTING", packet, (r) => DESTINATION_NAT.has(nameOf(r)))) {
    const name = nameOf(rule);
    if (certain) {
      const to = rewriteDestination(rule, name);
      rewrite ??= { rule, target: name, to };
      warnings.push(`nat ${rule.chain} rule ${rule.number} rewrites this connection's destination${to ? ` to ${to}` : ""} (${name}) before filter INPUT sees it: "${rule.text}". The verdict is for the connection as sent, which is not what filter INPUT sees.`);
    } else {
      warnings.push(`nat ${rule.chain} rule ${rule.number} may rewrite this connection's destination before filter INPUT sees it (${name}): "${rule.text}". The verdict assumes it does not apply.`);
    }
  }
  const notrack = (r: Rule) => nameOf(r) === "NOTRACK" || (nameOf(r) === "CT" && /--notrack|\bnotrack\b/.test(r.text));
  for (const { rule, certain } of earlierRules(ruleset.tables.get("raw"), "PREROUTING", packet, notrack)) {
    if (certain) untracked = true;
    warnings.push(`raw ${rule.chain} rule ${rule.number} exempts this connection from conntrack ("${rule.text}"): its ctstate is UNTRACKED, not NEW${certain ? "; the walk used UNTRACKED" : "; the walk assumed it does not apply"}.`);
  }
  return { warnings, untracked, rewrite };
}

export function evaluateIptables(ruleset: Ruleset, packet: Packet, options: WalkOptions): EvaluateResult {
  const filter = ruleset.tables.get("filter");
  if (!filter) throw new Error("the input has no filter table");
  const { warnings, untracked, rewrite } = earlierTableWarnings(ruleset, packet);
  const walked = untracked ? { ...packet, ctstates: new Set(["UNTRACKED"]) } : packet;
  return { outcome: walkChain(filter, walked, options), packet: walked, warnings, rewrite };
}
