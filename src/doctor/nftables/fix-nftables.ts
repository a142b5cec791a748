// The commands that open a blocked flow through nftables (doctor-cli.md `doctor nftables`).
// "Every base chain on the input hook is walked…; `accept` ends only its base chain": an accept
// added where the flow is blocked lets it past that base chain only, and a later one may still
// drop it. So the walk is made again with each fix in place, and every base chain that blocks
// gets its own fix, in the order the packet meets them — as fix-iptables.ts deletes every rule
// that blocks, not just the first.
import type { Fix } from "../report/check-result.js";
import type { NftEvaluateOptions, NftEvaluation, NftFlow, NftPlace } from "./evaluate-nftables.js";
import { evaluateNftables } from "./evaluate-nftables.js";
import type { NftChain, NftRule, NftRuleset } from "./nft-model.js";
import { parseNftStatements } from "./parse-nft-statements.js";

export interface NftFixPlan {
  readonly fixes: Fix[];
  /** Every place found to block, in the order the packet meets them. */
  readonly blockers: readonly NftPlace[];
  /** What the walk found after the fixes where it could not finish (for the report's details). */
  readonly notes: string[];
}

/** Each round opens one chain, and an opened chain cannot block again: this only bounds a bug. */
const maxRounds = 32;

export function planNftablesFix(ruleset: NftRuleset, flow: NftFlow, first: NftEvaluation, options: NftEvaluateOptions = {}): NftFixPlan {
  const fixes: Fix[] = [];
  const blockers: NftPlace[] = [];
  const notes: string[] = [];
  const accept = acceptText(flow);
  let current = ruleset;
  let e = first;
  while (e.verdict === "blocked" && e.place !== null && blockers.length < maxRounds) {
    const place = e.place;
    // What `nft insert rule <table> <chain> <accept>` leaves behind: the accept heads the chain.
    const opened = withChain(current, place, (c) => ({ ...c, rules: [acceptRule(accept), ...c.rules].map((r, i) => ({ ...r, index: i + 1 })) }));
    const next = evaluateNftables(opened, flow, options);
    // Deleting the blocking rule instead is offered only where it opens as much as the accept
    // does; a later rule of the same chain may drop the flow too.
    const deleteIsEnough = place.rule !== null && sameOutcome(evaluateNftables(withChain(current, place, (c) => ({ ...c, rules: c.rules.filter((r) => r !== place.rule) })), flow, options), next);
    fixes.push(...fixesFor(place, e, flow, accept, { also: blockers.length > 0, deleteIsEnough }));
    blockers.push(place);
    current = opened;
    e = next;
  }
  if (blockers.length > 0 && e.verdict === "indeterminate" && e.place !== null) {
    const what = e.place.rule ? `rule ${e.place.rule.index} "${e.place.rule.text}"` : "whether the packet passes through";
    notes.push(`With the fixes above in place, ${what} of ${e.place.table.family} ${e.place.table.name} chain ${e.place.chain.name} cannot be decided (${e.reason}).`);
  }
  return { fixes, blockers, notes };
}

const acceptText = (flow: NftFlow) => `${flow.source.includes(":") ? "ip6" : "ip"} saddr ${flow.source} ${flow.protocol} dport ${flow.port} accept`;

function acceptRule(text: string): NftRule {
  return { index: 1, handle: null, text, line: null, statements: parseNftStatements(text).statements };
}

/** The ruleset with the place's chain replaced; every other table and chain is shared. */
function withChain(ruleset: NftRuleset, place: NftPlace, change: (c: NftChain) => NftChain): NftRuleset {
  return {
    ...ruleset,
    tables: ruleset.tables.map((t) => (t !== place.table ? t : { ...t, chains: t.chains.map((c) => (c === place.chain ? change(c) : c)) })),
  };
}

function sameOutcome(a: NftEvaluation, b: NftEvaluation): boolean {
  if (a.verdict !== b.verdict || a.effect !== b.effect) return false;
  if (a.verdict === "allowed") return true;
  const key = (p: NftPlace | null) => (p === null ? "" : `${p.table.family} ${p.table.name} ${p.chain.name} ${p.rule?.text ?? "policy"}`);
  return key(a.place) === key(b.place);
}

/** The fixes for one blocker; `e` is the walk that stopped there. */
function fixesFor(place: NftPlace, e: NftEvaluation, flow: NftFlow, accept: string, opts: { also: boolean; deleteIsEnough: boolean }): Fix[] {
  const { table, chain, rule } = place;
  const t = `${table.family} ${table.name}`;
  const acceptWord = opts.also ? "Also accept" : "Accept";
  const later = opts.also ? " (a later base chain: the fixes above end only their own base chain)" : "";
  const iptablesNft = table.name === "filter" && (table.family === "ip" || table.family === "ip6") && /^[A-Z]/.test(chain.name);
  if (iptablesNft) {
    return [{ description: `${opts.also ? "Also: table" : "Table"} ${t} is managed by iptables-nft: change it with iptables (doctor iptables gives the exact command), not nft${later}.`, command: `iptables -I ${chain.name} -s ${flow.source} -p ${flow.protocol} --dport ${flow.port} -j ACCEPT` }];
  }
  const insert = `nft insert rule ${t} ${chain.name} ${accept}`;
  if (rule === null) {
    return [{ description: `${acceptWord} ${flow.source} to port ${flow.port}/${flow.protocol} in ${t} ${chain.name} before its drop policy applies${later}.`, command: insert }];
  }
  const verb = e.effect === "reject" ? "rejects" : "drops";
  const fixes: Fix[] = [{ description: `${acceptWord} ${flow.source} to port ${flow.port}/${flow.protocol} at the top of ${t} ${chain.name}, ahead of the rule that ${verb} it${later}.`, command: insert }];
  if (!opts.deleteIsEnough) return fixes;
  fixes.push(rule.handle !== null
    ? { description: `Or delete the blocking rule (rule ${rule.index}, handle ${rule.handle}).`, command: `nft delete rule ${t} ${chain.name} handle ${rule.handle}` }
    : { description: `Or delete the blocking rule "${rule.text}": the input shows no handles, so list them with -a first and delete that rule's handle.`, command: `nft -a list chain ${t} ${chain.name}` });
  return fixes;
}
