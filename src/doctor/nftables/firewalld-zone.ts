// firewalld's tables and the zone a packet lands in, read from what `nft list ruleset` shows of them.
//
// firewalld (nftables backend) owns `table inet firewalld` (and, before 1.0, `table ip firewalld`
// and `table ip6 firewalld` too) and writes them anew on every `firewall-cmd --reload`, so a rule
// put there with nft is lost at the next reload: a fix must go through firewall-cmd. Its input path:
// filter_INPUT jumps to filter_INPUT_ZONES (older releases: filter_INPUT_ZONES_SOURCE first), which
// sends each packet to one zone's chain by source address or interface, the default zone last:
//
//   chain filter_INPUT_ZONES {
//     ip saddr 10.224.0.0/16 goto filter_IN_trusted
//     iifname "eth0" goto filter_IN_public
//     goto filter_IN_public
//   }
//
// The zone's chain jumps to filter_IN_<zone>_pre, _log, _deny, _allow, _post: a rich rule goes to
// _allow (accept) or _deny (reject, drop) at the default priority 0, to _pre with a priority below
// 0 and to _post above it (firewalld.richlanguage(5); RHEL "Prioritizing rich rules").
import { evaluateNftables } from "./evaluate-nftables.js";
import type { NftEvaluateOptions, NftFlow } from "./evaluate-nftables.js";
import type { NftChain, NftRuleset, NftTable } from "./nft-model.js";
import { parseNftStatements } from "./parse-nft-statements.js";

export function isFirewalldTable(table: Pick<NftTable, "family" | "name">): boolean {
  return table.name === "firewalld" && (table.family === "inet" || table.family === "ip" || table.family === "ip6");
}

/** The chains that pick a zone, in the order filter_INPUT jumps to them. */
const dispatchChains = ["filter_INPUT_ZONES_SOURCE", "filter_INPUT_ZONES"];
const probeChain = "nodetunnel_zone_probe";
const zoneChainPrefix = "filter_IN_";

/**
 * The zone whose chain firewalld's dispatch sends the flow's packet to, decided by the evaluator
 * itself (so interface globs, address ranges and sets are read as for the walk): a copy of the
 * table is walked from the dispatch chains alone, with every zone chain they name replaced by a
 * lone `drop`; the chain that drop stands in names the zone. null where the input shows no
 * dispatch chain, or it sends the packet nowhere for certain (an undecidable match, a set not
 * shown: the zone would then depend on which way it goes).
 */
export function firewalldZone(ruleset: NftRuleset, preferred: NftTable, flow: NftFlow, options: NftEvaluateOptions = {}): string | null {
  const tables = [preferred, ...ruleset.tables.filter((t) => t !== preferred && isFirewalldTable(t))];
  for (const table of tables) {
    const dispatch = dispatchChains.filter((name) => table.chains.some((c) => c.name === name));
    if (dispatch.length === 0) continue;
    const zoneChains = new Set<string>();
    for (const c of table.chains.filter((x) => dispatch.includes(x.name))) {
      for (const r of c.rules) {
        for (const st of r.statements) {
          if (st.kind === "verdict" && (st.verdict.kind === "goto" || st.verdict.kind === "jump") && st.verdict.target.startsWith(zoneChainPrefix)) zoneChains.add(st.verdict.target);
        }
      }
    }
    const rule = (text: string, index: number) => ({ index, handle: null, text, line: null, statements: parseNftStatements(text).statements });
    const probe: NftChain = {
      name: probeChain,
      base: { type: "filter", hook: "input", priority: 0, policy: "accept", text: "type filter hook input priority filter; policy accept;" },
      rules: dispatch.map((name, i) => rule(`jump ${name}`, i + 1)),
    };
    const probed: NftTable = {
      ...table,
      chains: [probe, ...table.chains.map((c) => (zoneChains.has(c.name) ? { name: c.name, base: null, rules: [rule("drop", 1)] } : { ...c, base: null }))],
    };
    const e = evaluateNftables({ ...ruleset, tables: [probed] }, flow, options);
    const chain = e.place?.chain.name;
    if (e.verdict === "blocked" && e.uncertain.length === 0 && e.place?.rule != null && chain !== undefined && zoneChains.has(chain)) return chain.slice(zoneChainPrefix.length);
    return null;
  }
  return null;
}
