// Whether anything in the ruleset can give a new incoming connection the conntrack status `dnat`
// or `snat` before the filter chains read it (`ct status dnat accept`, firewalld's filter_INPUT).
// The kernel sets those bits only where a NAT rule rewrote the connection's address
// (nf_nat_setup_info: IPS_DST_NAT / IPS_SRC_NAT, and only when the tuple changed), and nft allows
// dnat/redirect only in nat chains on prerouting (and output, for local traffic), snat/masquerade
// only on input (and postrouting, after delivery). `nft list ruleset` is the whole ruleset, so
// where no such statement can apply to the connection it has neither status, and the rule is
// decided — as doctor iptables does by reading the nat table (troubleshooting.md §4.3).
//
// The scan over-approximates, so that "cannot apply" is certain: it walks every nat base chain on
// the hook (and the chains they jump to) and counts a rewrite that may be reached and whose matches
// before it do not rule it out; verdicts that may stop the walk earlier are not followed. Where the
// input cannot be the whole ruleset (it jumps to a chain or looks up a set it does not hold) or
// iptables-legacy rules also apply (their nat table is not in the input), the status stays unknown.
import type { NftChain, NftRule, NftRuleset, NftStatement, NftTable, NftVerdict } from "./nft-model.js";

export type NatStatus = "dnat" | "snat";

/** What may set the status; null where nothing can. */
export interface NatSource {
  /** The rule whose rewrite may apply; null where the input itself leaves it open. */
  readonly place: { readonly table: NftTable; readonly chain: NftChain; readonly rule: NftRule } | null;
  readonly reason: string;
}

/** The evaluator's own three-valued matchers, for one statement of a rule in `table`. */
export interface NatMatchers {
  readonly match: (st: Extract<NftStatement, { kind: "match" | "tcp-flags" }>, table: NftTable, hook: string) => boolean | "unknown";
  /** The verdict a verdict map picks: one verdict, none (no entry matches), or "unknown". */
  readonly vmap: (st: Extract<NftStatement, { kind: "vmap" }>, table: NftTable, hook: string) => NftVerdict | null | "unknown";
}

// nft's NAT statements as the parsers keep them: dnat and redirect as `nat` statements; snat,
// masquerade, netmap and iptables-nft's untranslated targets (`xt target DNAT`) as unknown
// statements with their text (JSON: the expression's JSON, `{"snat": {...}}`).
// A connection the node opens itself (direction "out") meets dnat on the output hook and snat on
// postrouting, which filter chains on postrouting of a later priority than srcnat see.
const rewrites: Record<NatStatus, { hook: { in: string; out: string }; words: RegExp; what: string }> = {
  dnat: { hook: { in: "prerouting", out: "output" }, words: /\b(dnat|redirect|netmap|dnpt)\b/i, what: "dnat or redirect" },
  snat: { hook: { in: "input", out: "postrouting" }, words: /\b(snat|masquerade|snpt)\b/i, what: "snat or masquerade" },
};

/** The words of a destination rewrite in an expression the parsers keep as unknown (`xt target DNAT`, netmap). */
export const natWords = rewrites.dnat.words;

const maxDepth = 64;

export function findNatSource(ruleset: NftRuleset, family: "ip" | "ip6", status: NatStatus, matchers: NatMatchers, legacyRulesPresent: boolean, direction: "in" | "out" = "in"): NatSource | null {
  if (legacyRulesPresent || ruleset.legacyWarning) {
    return { place: null, reason: `iptables-legacy rules apply as well, and their nat table, which may ${status === "dnat" ? "rewrite the destination" : "rewrite the source"}, is not in the input` };
  }
  const missing = missingReference(ruleset);
  if (missing) return { place: null, reason: `the input ${missing}, so it is not the whole ruleset (nft list ruleset), and NAT rules elsewhere may set it` };
  const { words, what } = rewrites[status];
  const hook = rewrites[status].hook[direction];
  const seen = new Set<NftChain>();
  const scan = (table: NftTable, chain: NftChain, depth: number): NatSource | null => {
    if (seen.has(chain) || depth > maxDepth) return null;
    seen.add(chain);
    for (const rule of chain.rules) {
      const found = scanRule(table, chain, rule, depth);
      if (found) return found;
    }
    return null;
  };
  const follow = (table: NftTable, verdict: NftVerdict, depth: number): NatSource | null => {
    if (verdict.kind !== "jump" && verdict.kind !== "goto") return null;
    const target = table.chains.find((c) => c.name === verdict.target);
    return target ? scan(table, target, depth + 1) : null;
  };
  const scanRule = (table: NftTable, chain: NftChain, rule: NftRule, depth: number): NatSource | null => {
    for (const st of rule.statements) {
      if ((st.kind === "unknown" && words.test(st.text)) || (st.kind === "nat" && status === "dnat")) {
        return { place: { table, chain, rule }, reason: `rule ${rule.index} "${rule.text}" of ${table.family} ${table.name} chain ${chain.name} may apply a ${what} to this connection` };
      }
      if (st.kind === "verdict") return follow(table, st.verdict, depth);
      if (st.kind === "match" || st.kind === "tcp-flags") {
        if (matchers.match(st, table, hook) === false) return null;
      } else if (st.kind === "vmap") {
        const v = matchers.vmap(st, table, hook);
        if (v === "unknown") {
          const entries = "ref" in st.map ? table.sets.get(st.map.ref)?.entries ?? [] : st.map;
          for (const e of entries) {
            const found = follow(table, e.verdict, depth);
            if (found) return found;
          }
          return null;
        }
        return v === null ? null : follow(table, v, depth);
      }
    }
    return null;
  };
  for (const table of ruleset.tables) {
    if (table.family !== family && table.family !== "inet") continue;
    for (const chain of table.chains) {
      if (chain.base?.type !== "nat" || chain.base.hook !== hook) continue;
      const found = scan(table, chain, 0);
      if (found) return found;
    }
  }
  return null;
}

/**
 * nft lists a chain a rule jumps to, and a set or map a rule looks up, in the same table: an input
 * that refers to one it does not hold is a part of the ruleset (`nft list chain`, a table cut out).
 */
function missingReference(ruleset: NftRuleset): string | null {
  for (const table of ruleset.tables) {
    const chains = new Set(table.chains.map((c) => c.name));
    const targets = (v: NftVerdict) => (v.kind === "jump" || v.kind === "goto") && !chains.has(v.target) ? v.target : null;
    for (const set of table.sets.values()) {
      for (const e of set.entries) {
        const t = targets(e.verdict);
        if (t) return `refers to chain ${t} of table ${table.family} ${table.name}, which it does not hold`;
      }
    }
    for (const chain of table.chains) {
      for (const rule of chain.rules) {
        for (const st of rule.statements) {
          const missing =
            st.kind === "verdict" ? targets(st.verdict)
            : st.kind === "vmap" && !("ref" in st.map) ? st.map.map((e) => targets(e.verdict)).find((t) => t !== null) ?? null
            : null;
          if (missing) return `refers to chain ${missing} of table ${table.family} ${table.name}, which it does not hold`;
          const set = st.kind === "match" && st.value.kind === "ref" ? st.value.name : st.kind === "vmap" && "ref" in st.map ? st.map.ref : null;
          if (set !== null && !table.sets.has(set)) return `refers to set @${set} of table ${table.family} ${table.name}, which it does not hold`;
        }
      }
    }
  }
  return null;
}
