// Whether the node's nftables ruleset stops a new connection the node opens itself (the agent's to
// the tunnel server): the output-path twin of check-nftables.ts, as iptables/check-output.ts is of
// the INPUT walk. `doctor node` asks this when its probe of the server failed and iptables' own
// OUTPUT chain did not explain it: a drop on the output hook looks, from the probe, exactly like a
// firewall on the path.
import ipaddr from "ipaddr.js";
import type { Fix } from "../report/check-result.js";
import { evaluateNftables, parseAddr, type NftFlow } from "./evaluate-nftables.js";
import { planNftablesFix } from "./fix-nftables.js";
import { parseNftRuleset } from "./parse-nft-ruleset.js";

export interface NftOutputFlow {
  /** The node's own address (the connection's source). */
  readonly source: string;
  /** The remote address the node dials. */
  readonly destination: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  /** The interface the connection leaves by. */
  readonly outInterface: string;
}

export interface NftOutputBlock {
  readonly effect: "drop" | "reject";
  /** The deciding rule, named as the egress finding's blockedBy does (rule null: the chain's policy). */
  readonly rule: { readonly command: "nft"; readonly table: string; readonly chain: string; readonly rule: number | null; readonly text: string; readonly handle?: number };
  /** "nft inet filter output rule 2 (ip daddr 10.0.0.9 drop)" or "the nft inet filter output policy drop". */
  readonly where: string;
  readonly fixes: readonly Fix[];
  /** The commands that open the flow, in order. */
  readonly steps: readonly string[];
  readonly notes: readonly string[];
  readonly assumptions: readonly string[];
}

/**
 * The block, when the ruleset certainly drops or rejects the flow on its way out; null when it lets
 * it out or cannot tell (a rule it cannot decide: the walk is then no explanation of the probe).
 * Throws on a ruleset it cannot parse (the nftables finding reports that).
 */
export function findNftOutputBlock(rulesetText: string, flow: NftOutputFlow): NftOutputBlock | null {
  if (!ipaddr.isValid(flow.source) || !ipaddr.isValid(flow.destination)) return null;
  if (parseAddr(flow.source).kind() !== parseAddr(flow.destination).kind()) return null;
  const ruleset = parseNftRuleset(rulesetText);
  const nftFlow: NftFlow = {
    source: flow.source, destination: flow.destination, port: flow.port, protocol: flow.protocol,
    inInterface: "", direction: "out", outInterface: flow.outInterface,
  };
  const e = evaluateNftables(ruleset, nftFlow);
  if (e.verdict !== "blocked" || e.place === null || e.effect === "accept" || e.effect === null) return null;
  const plan = planNftablesFix(ruleset, nftFlow, e);
  const { table, chain, rule } = e.place;
  const t = `${table.family} ${table.name}`;
  const where = rule === null
    ? `the nft ${t} ${chain.name} policy ${chain.base?.policy ?? "drop"}`
    : `nft ${t} ${chain.name} rule ${rule.index} (${rule.text})`;
  return {
    effect: e.effect,
    rule: { command: "nft", table: t, chain: chain.name, rule: rule?.index ?? null, text: rule?.text ?? chain.base!.text, ...(rule?.handle != null ? { handle: rule.handle } : {}) },
    where,
    fixes: plan.fixes,
    steps: plan.steps,
    notes: plan.notes,
    assumptions: [...e.assumptions, ...plan.assumptions],
  };
}
