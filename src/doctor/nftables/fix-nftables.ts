// The commands that open a blocked flow through nftables (doctor-cli.md `doctor nftables`).
// "Every base chain on the input hook is walked…; `accept` ends only its base chain": an accept
// added where the flow is blocked lets it past that base chain only, and a later one may still
// drop it. So the walk is made again with each fix in place, and every base chain that blocks
// gets its own fix, in the order the packet meets them — as fix-iptables.ts deletes every rule
// that blocks, not just the first.
//
// What each blocker gets:
// - an accept for the flow alone at the top of the blocker's chain (`nft insert rule`); deleting
//   the blocker is offered besides only where the rule singles out the flow
//   (is-deletable-nft-blocker.ts: never a catch-all such as firewalld's final reject) and deleting
//   it opens as much as the accept does;
// - in a table firewalld owns (firewalld-zone.ts), which firewalld rewrites on every reload, a
//   firewall-cmd rich rule in the zone the packet lands in instead, walked again in the chain
//   firewalld puts it in before it is offered; never an nft command;
// - in iptables-nft's tables, the iptables command.
import type { Fix } from "../report/check-result.js";
import type { NftEvaluateOptions, NftEvaluation, NftFlow, NftPlace } from "./evaluate-nftables.js";
import { evaluateNftables } from "./evaluate-nftables.js";
import { firewalldZone, isFirewalldTable } from "./firewalld-zone.js";
import { isDeletableNftBlocker } from "./is-deletable-nft-blocker.js";
import type { NftChain, NftRule, NftRuleset } from "./nft-model.js";
import { parseNftStatements } from "./parse-nft-statements.js";

export interface NftFixPlan {
  readonly fixes: Fix[];
  /** The commands that open the flow, one per blocker in order (not the alternatives such as a delete). */
  readonly steps: string[];
  /** Every place found to block, in the order the packet meets them. */
  readonly blockers: readonly NftPlace[];
  /** What the walk found after the fixes where it could not finish (for the report's details). */
  readonly notes: string[];
  /** What the fixes assume that the input does not show (the firewalld zone, where it does not). */
  readonly assumptions: string[];
}

/** Each round opens one chain, and an opened chain cannot block again: this only bounds a bug. */
const maxRounds = 32;

export function planNftablesFix(ruleset: NftRuleset, flow: NftFlow, first: NftEvaluation, options: NftEvaluateOptions = {}): NftFixPlan {
  const fixes: Fix[] = [];
  const steps: string[] = [];
  const blockers: NftPlace[] = [];
  const notes: string[] = [];
  const assumptions: string[] = [];
  let current = ruleset;
  let e = first;
  while (e.verdict === "blocked" && e.place !== null && blockers.length < maxRounds) {
    const place = e.place;
    // After a dnat or redirect to the node (evaluate-nftables.ts) the blocking chain sees the
    // rewritten port: the accept, and whether the rule singles the flow out, are for that port.
    const seen = seenFlow(flow, e);
    const accept = acceptText(seen);
    const also = blockers.length > 0;
    // What `nft insert rule <table> <chain> <accept>` leaves behind: the accept heads the chain.
    const atTop = withChain(current, place, (c) => ({ ...c, rules: [acceptRule(accept), ...c.rules].map((r, i) => ({ ...r, index: i + 1 })) }));
    if (isFirewalldTable(place.table) && flow.direction === "out") {
      // Rich rules of a zone act on what comes in; what the node sends is filtered by firewalld's
      // policies (HOST as ingress zone), whose layout the input does not show well enough to walk.
      const fix = firewalldOutputFix(place, seen, blockers.length > 0);
      fixes.push(fix);
      steps.push(fix.command);
      blockers.push(place);
      current = withChain(current, place, (c) => ({ ...c, rules: [acceptRule(accept), ...c.rules].map((r, i) => ({ ...r, index: i + 1 })) }));
      e = evaluateNftables(current, flow, options);
      continue;
    }
    if (isFirewalldTable(place.table)) {
      const fw = firewalldFix(current, place, flow, seen, options, also);
      fixes.push(fw.fix);
      steps.push(fw.fix.command);
      if (fw.assumption !== null && !assumptions.includes(fw.assumption)) assumptions.push(fw.assumption);
      blockers.push(place);
      // Where no rich rule reaches ahead of the block, the walk goes on as if it were lifted, to
      // find what blocks after it.
      current = fw.opened ?? atTop;
      e = fw.next ?? evaluateNftables(atTop, flow, options);
      continue;
    }
    const next = evaluateNftables(atTop, flow, options);
    // Deleting the blocking rule instead is offered only for a rule that stands for this flow
    // alone (a catch-all opens every port it guards), and only where it opens as much as the
    // accept does: a later rule of the same chain may drop the flow too.
    const deleteIsEnough = place.rule !== null && isDeletableNftBlocker(place.rule, seen)
      && sameOutcome(evaluateNftables(withChain(current, place, (c) => ({ ...c, rules: c.rules.filter((r) => r !== place.rule) })), flow, options), next);
    const own = fixesFor(place, e, seen, accept, { also, deleteIsEnough });
    if (seen !== flow && e.rewrite) {
      const r = e.rewrite.place;
      own[0] = { ...own[0]!, description: `${own[0]!.description} Port ${seen.port}, not ${flow.port}: rule ${r.rule!.index} "${r.rule!.text}" of ${r.table.family} ${r.table.name} chain ${r.chain.name} rewrites the connection's port before this chain sees it.` };
    }
    fixes.push(...own);
    steps.push(own[0]!.command);
    blockers.push(place);
    current = atTop;
    e = next;
  }
  if (blockers.length > 0 && e.verdict === "indeterminate" && e.place !== null) {
    const what = e.place.rule ? `rule ${e.place.rule.index} "${e.place.rule.text}"` : "whether the packet passes through";
    notes.push(`With the fixes above in place, ${what} of ${e.place.table.family} ${e.place.table.name} chain ${e.place.chain.name} cannot be decided (${e.reason}).`);
  }
  return { fixes, steps, blockers, notes, assumptions };
}

/**
 * The firewall-cmd fix for a block in a table firewalld owns: a rich rule accepting the flow in the
 * zone the packet lands in, made permanent and loaded with a reload (an nft insert there would be
 * gone at the next `firewall-cmd --reload`). At the default priority the rich rule goes to the
 * zone's _allow chain, after its _deny chain; where that does not open the block (a reject rich
 * rule of the zone), priority -32768 puts it at the head of the zone's _pre chain, before every
 * other rule of the zone. Each placement is walked again before it is offered. opened/next are null
 * where neither opens it: the block lies outside the zone's rules (before the zone dispatch, in a
 * policy chain), where no rich rule of a zone is reached first.
 */
function firewalldFix(current: NftRuleset, place: NftPlace, flow: NftFlow, seen: NftFlow, options: NftEvaluateOptions, also: boolean): { fix: Fix; opened: NftRuleset | null; next: NftEvaluation | null; assumption: string | null } {
  const t = `${place.table.family} ${place.table.name}`;
  const found = firewalldZone(current, place.table, flow, options);
  // doctor-cli.md: the fix is copy-paste commands, followed by what was assumed. A `<zone>`
  // placeholder would not paste; `public` is firewalld's shipped default zone, and the assumption
  // says so and names the read-only command that shows the real one.
  const zone = found ?? "public";
  const assumption = found !== null ? null
    : `The input does not show which firewalld zone the packet from ${flow.source} on ${flow.inInterface} lands in (no filter_INPUT_ZONES chain that decides it); the firewall-cmd fix assumes public, firewalld's default zone as shipped. \`firewall-cmd --get-active-zones\` lists each zone's interfaces and sources (\`firewall-cmd --get-default-zone\` the zone of the rest): use that zone instead.`;
  const where = found !== null ? `zone ${zone}, where firewalld's filter_INPUT_ZONES sends this packet` : `zone ${zone} (assumed: see the assumptions)`;
  const blocked = place.rule ? `rule ${place.rule.index} "${place.rule.text}" of ${t} chain ${place.chain.name}` : `the policy of ${t} chain ${place.chain.name}`;
  const owned = `${also ? "Also: the" : "The"} block is ${blocked}; firewalld owns table ${t} and writes it anew on every reload, so an nft change there is lost at the next firewall-cmd --reload`;
  const family = flow.source.includes(":") ? "ipv6" : "ipv4";
  const richFix = (priority: number | null, why: string): Fix => {
    const rich = `rule family="${family}"${priority === null ? "" : ` priority="${priority}"`} source address="${flow.source}" port port="${seen.port}" protocol="${flow.protocol}" accept`;
    return {
      description: `${owned}: accept ${flow.source} to port ${seen.port}/${flow.protocol} with a permanent rich rule in ${where}${why}, then reload firewalld.`,
      command: `firewall-cmd --permanent --zone=${zone} --add-rich-rule='${rich}' && firewall-cmd --reload`,
    };
  };
  const placements = [{ priority: null, chain: `filter_IN_${zone}_allow` }, { priority: -32768, chain: `filter_IN_${zone}_pre` }]
    .map((p) => ({ ...p, found: place.table.chains.find((c) => c.name === p.chain) }));
  if (placements.every((p) => p.found === undefined)) {
    // The zone's chains are not in the input (one table or chain listed, a layout not known here):
    // the rich rule cannot be walked, and is offered as what firewalld's layout makes of it.
    const unseen = `firewalld's chains for zone ${zone} are not in the input, so the rich rule's accept is assumed to be reached before ${blocked}, as firewalld's filter_INPUT reaches its zones before its final reject.`;
    return { fix: richFix(null, ""), opened: null, next: null, assumption: assumption === null ? unseen : `${assumption} ${unseen}` };
  }
  for (const placement of placements) {
    const chain = placement.found;
    if (!chain) continue;
    const opened = withChain(current, { table: place.table, chain, rule: null }, (c) => ({ ...c, rules: [acceptRule(acceptText(seen)), ...c.rules].map((r, i) => ({ ...r, index: i + 1 })) }));
    const next = evaluateNftables(opened, flow, options);
    if (next.verdict === "blocked" && placeKey(next.place) === placeKey(place)) continue; // still blocked where it was
    const why = placement.priority === null ? "" : ` (priority ${placement.priority} puts it at the head of the zone's _pre chain, ahead of the zone's deny rules that block the flow; at the default priority it would come after them)`;
    return {
      fix: richFix(placement.priority, why),
      opened, next, assumption,
    };
  }
  return {
    fix: {
      description: `${owned}, and no rich rule of ${where} is reached before it. Change the firewalld setting that makes this rule (the zone's settings are listed by the command below); do not delete it with nft.`,
      command: `firewall-cmd --zone=${zone} --list-all`,
    },
    opened: null, next: null, assumption,
  };
}

/** The flow as the blocking chain saw it: with the port a dnat or redirect before it gave it. */
const seenFlow = (flow: NftFlow, e: NftEvaluation): NftFlow => (e.rewrite ? { ...flow, port: e.rewrite.port } : flow);

const ipFamily = (flow: NftFlow) => (flow.source.includes(":") ? "ip6" : "ip");

const acceptText = (flow: NftFlow) => flow.direction === "out"
  ? `${flow.destination === null ? "" : `${ipFamily(flow)} daddr ${flow.destination} `}${flow.protocol} dport ${flow.port} accept`
  : `${ipFamily(flow)} saddr ${flow.source} ${flow.protocol} dport ${flow.port} accept`;

/** The flow in a fix's words: "10.0.0.5 to port 10250/tcp", or "the connection to 10.0.0.9 port 8132/tcp" for one the node opens. */
const flowWords = (flow: NftFlow) => flow.direction === "out"
  ? `the connection to ${flow.destination ?? "the server"} port ${flow.port}/${flow.protocol}`
  : `${flow.source} to port ${flow.port}/${flow.protocol}`;

/** A block in a table firewalld owns, of a connection the node opens: firewalld's own listing, never an nft change it would undo. */
function firewalldOutputFix(place: NftPlace, flow: NftFlow, also: boolean): Fix {
  const t = `${place.table.family} ${place.table.name}`;
  const blocked = place.rule ? `rule ${place.rule.index} "${place.rule.text}" of ${t} chain ${place.chain.name}` : `the policy of ${t} chain ${place.chain.name}`;
  return {
    description: `${also ? "Also: the" : "The"} block of ${flowWords(flow)} is ${blocked}; firewalld owns table ${t} and writes it anew on every reload, so an nft change there is lost at the next firewall-cmd --reload. `
      + "What the node sends is filtered by firewalld's policies (ingress zone HOST) and direct rules: find the one that makes this rule in the listing below and allow the connection there "
      + `(a rich rule \`rule family="${flow.source.includes(":") ? "ipv6" : "ipv4"}" destination address="${flow.destination ?? "<server>"}" port port="${flow.port}" protocol="${flow.protocol}" accept\` in that policy), then reload firewalld.`,
    command: "firewall-cmd --list-all-policies; firewall-cmd --direct --get-all-rules",
  };
}

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

/** A place by its names and the rule's text: a fix replaces the table and chain objects it changes. */
const placeKey = (p: NftPlace | null) => (p === null ? "" : `${p.table.family} ${p.table.name} ${p.chain.name} ${p.rule?.text ?? "policy"}`);

function sameOutcome(a: NftEvaluation, b: NftEvaluation): boolean {
  if (a.verdict !== b.verdict || a.effect !== b.effect) return false;
  if (a.verdict === "allowed") return true;
  return placeKey(a.place) === placeKey(b.place);
}

/** The fixes for one blocker; `e` is the walk that stopped there. */
function fixesFor(place: NftPlace, e: NftEvaluation, flow: NftFlow, accept: string, opts: { also: boolean; deleteIsEnough: boolean }): Fix[] {
  const { table, chain, rule } = place;
  const t = `${table.family} ${table.name}`;
  const acceptWord = opts.also ? "Also accept" : "Accept";
  const later = opts.also ? " (a later base chain: the fixes above end only their own base chain)" : "";
  const iptablesNft = table.name === "filter" && (table.family === "ip" || table.family === "ip6") && /^[A-Z]/.test(chain.name);
  if (iptablesNft) {
    const command = table.family === "ip6" ? "ip6tables" : "iptables";
    const match = flow.direction === "out" ? (flow.destination === null ? "" : `-d ${flow.destination} `) : `-s ${flow.source} `;
    const checker = flow.direction === "out" ? "doctor node walks its OUTPUT chain" : "doctor iptables gives the exact command";
    return [{ description: `${opts.also ? "Also: table" : "Table"} ${t} is managed by iptables-nft: change it with ${command} (${checker}), not nft${later}.`, command: `${command} -I ${chain.name} ${match}-p ${flow.protocol} --dport ${flow.port} -j ACCEPT` }];
  }
  const insert = `nft insert rule ${t} ${chain.name} ${accept}`;
  if (rule === null) {
    return [{ description: `${acceptWord} ${flowWords(flow)} in ${t} ${chain.name} before its drop policy applies${later}.`, command: insert }];
  }
  const verb = e.effect === "reject" ? "rejects" : "drops";
  const fixes: Fix[] = [{ description: `${acceptWord} ${flowWords(flow)} at the top of ${t} ${chain.name}, ahead of the rule that ${verb} it${later}.`, command: insert }];
  if (!opts.deleteIsEnough) return fixes;
  fixes.push(rule.handle !== null
    ? { description: `Or delete the blocking rule (rule ${rule.index}, handle ${rule.handle}).`, command: `nft delete rule ${t} ${chain.name} handle ${rule.handle}` }
    : { description: `Or delete the blocking rule "${rule.text}": the input shows no handles, so list them with -a first and delete that rule's handle.`, command: `nft -a list chain ${t} ${chain.name}` });
  return fixes;
}
