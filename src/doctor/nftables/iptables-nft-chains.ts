// Which base chains of an `nft list ruleset` iptables-nft made, for `doctor node`, which judges
// those from iptables-save (with the rule numbers its fixes use) and the rest with this check.
//
// A table's name does not tell: `table ip filter` is a common name in hand-written rulesets, and
// iptables-nft adds its INPUT chain to such a table beside the hand-written `input` (seen in a
// namespace; iptables-save then prints "# Table `filter' contains incompatible base-chains" and
// leaves the hand-written one out). A chain does: iptables-nft only shows (and only makes) base
// chains named as iptables' built-in chains of its table, on the hook of that name, with the type
// and priority iptables gives them (iptables nft.c, the builtin table definitions).
import type { NftChain, NftRuleset, NftStatement, NftTable, NftVerdict } from "./nft-model.js";
import { natWords } from "./nat-status.js";

const filter = (priority: number) => ({ type: "filter", priority });
const nat = (priority: number) => ({ type: "nat", priority });

const builtinChains: Readonly<Record<string, Readonly<Record<string, { type: string; priority: number }>>>> = {
  raw: { PREROUTING: filter(-300), OUTPUT: filter(-300) },
  mangle: { PREROUTING: filter(-150), INPUT: filter(-150), FORWARD: filter(-150), OUTPUT: { type: "route", priority: -150 }, POSTROUTING: filter(-150) },
  filter: { INPUT: filter(0), FORWARD: filter(0), OUTPUT: filter(0) },
  nat: { PREROUTING: nat(-100), INPUT: nat(100), OUTPUT: nat(-100), POSTROUTING: nat(100) },
  security: { INPUT: filter(50), FORWARD: filter(50), OUTPUT: filter(50) },
};

/** A base chain as iptables-nft makes it: an iptables table's built-in chain, with its hook, type and priority. */
export function isIptablesNftBaseChain(table: NftTable, chain: NftChain): boolean {
  const want = table.family === "ip" || table.family === "ip6" ? builtinChains[table.name]?.[chain.name] : undefined;
  const b = chain.base;
  return want !== undefined && b !== null && b.hook === chain.name.toLowerCase() && b.type === want.type && b.priority === want.priority;
}

export interface IptablesNftSplit {
  /** The ruleset without the iptables-nft base chains that may be left out of the walk. */
  readonly ruleset: NftRuleset;
  /** Those left out, as `ip filter INPUT`. */
  readonly skipped: readonly string[];
  /** iptables-nft base chains kept in the walk: they may change what later chains read (NAT, a mark, notrack). */
  readonly kept: readonly string[];
  /** The chains only iptables-nft's base chains reach (those themselves included): a decision there is iptables-save's to report. */
  readonly iptablesNftChains: ReadonlySet<NftChain>;
  /** Whether any base chain, or any table, is not iptables-nft's. */
  readonly hasOwn: boolean;
}

const targets = (v: NftVerdict) => (v.kind === "jump" || v.kind === "goto" ? [v.target] : []);

function calledChains(table: NftTable, st: NftStatement): string[] {
  if (st.kind === "verdict") return targets(st.verdict);
  if (st.kind !== "vmap") return [];
  const entries = "ref" in st.map ? table.sets.get(st.map.ref)?.entries ?? [] : st.map;
  return entries.flatMap((e) => targets(e.verdict));
}

/** The chains a walk from `start` can run: it and every chain it jumps or goes to, to any depth. */
function reach(table: NftTable, start: NftChain): Set<NftChain> {
  const seen = new Set<NftChain>();
  const todo = [start];
  while (todo.length > 0) {
    const chain = todo.pop()!;
    if (seen.has(chain)) continue;
    seen.add(chain);
    for (const rule of chain.rules) {
      for (const st of rule.statements) {
        for (const name of calledChains(table, st)) {
          const next = table.chains.find((c) => c.name === name);
          if (next) todo.push(next);
        }
      }
    }
  }
  return seen;
}

// What a chain may do to the packet besides accepting or dropping it: set its mark, exempt it from
// conntrack, rewrite it (a NAT statement, or an untranslated target: `xt target MARK`, CT, DNAT).
const changesPacket = (st: NftStatement) =>
  st.kind === "mark-set" || st.kind === "notrack" || st.kind === "nat" || (st.kind === "unknown" && (/^xt target\b/.test(st.text) || natWords.test(st.text)));

/**
 * Leaves out of `ruleset` the iptables-nft base chains the nftables walk need not see. That is
 * sound because a base chain acts on the others in only two ways: it may end the packet (a drop or
 * reject, which the iptables finding reports from iptables-save) or change what the later chains
 * read (the packet's mark, its conntrack state, its destination). An accept ends only its own base
 * chain, and the kernel orders the base chains by hook and priority whatever else is registered, so
 * once a chain that cannot change the packet is gone, every other chain still sees the packet as
 * before, in the same order. Chains that can change it (nat chains, mangle chains setting a mark,
 * raw chains with notrack) stay in the walk; where the walk then ends in one of them, the iptables
 * finding names it already (`iptablesNftChains`).
 */
export function withoutIptablesNft(ruleset: NftRuleset): IptablesNftSplit {
  const skipped: string[] = [];
  const kept: string[] = [];
  const iptablesNftChains = new Set<NftChain>();
  let hasOwn = false;
  const tables = ruleset.tables.map((table) => {
    const mine = table.chains.filter((c) => c.base !== null && isIptablesNftBaseChain(table, c));
    const others = table.chains.filter((c) => c.base !== null && !mine.includes(c));
    const isIptablesTable = (table.family === "ip" || table.family === "ip6") && builtinChains[table.name] !== undefined;
    if (others.length > 0 || !isIptablesTable) hasOwn = true;
    if (mine.length === 0) return table;
    const fromOthers = new Set(others.flatMap((c) => [...reach(table, c)]));
    const leftOut = new Set<NftChain>();
    for (const chain of mine) {
      const reached = reach(table, chain);
      for (const c of reached) if (!fromOthers.has(c)) iptablesNftChains.add(c);
      const name = `${table.family} ${table.name} ${chain.name}`;
      const changes = chain.base!.type === "nat" || [...reached].some((c) => c.rules.some((r) => r.statements.some(changesPacket)));
      if (changes) kept.push(name);
      else {
        skipped.push(name);
        leftOut.add(chain);
      }
    }
    return leftOut.size === 0 ? table : { ...table, chains: table.chains.filter((c) => !leftOut.has(c)) };
  });
  return { ruleset: { ...ruleset, tables }, skipped, kept, iptablesNftChains, hasOwn };
}
