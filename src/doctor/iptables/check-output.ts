// Whether the node's own filter OUTPUT chain stops a new connection the node opens (the agent's
// to the tunnel server), and what on the node opens it. `doctor node` asks this when its probe of
// the server failed: a DROP there looks, from the probe, exactly like a firewall on the path
// (troubleshooting.md §4: OUTPUT is walked like INPUT, for a packet with no input interface).
import ipaddr from "ipaddr.js";
import type { Fix } from "../report/check-result.js";
import type { Decider, PathStep } from "./evaluate-iptables.js";
import { mayRewriteDestination } from "./before-filter.js";
import { walkChain } from "./evaluate-iptables.js";
import { planIptablesFix } from "./fix-iptables.js";
import type { Packet } from "./match-condition.js";
import { parseIptablesDumps } from "./parse-iptables.js";
import { parseUnmapped } from "../flow-family.js";

export interface OutputFlow {
  /** The node's own address (the connection's source). */
  readonly source: string;
  /** The remote address the node dials. */
  readonly destination: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  /** The interface the connection leaves by. */
  readonly outInterface: string;
}

export interface OutputBlock {
  readonly command: "iptables" | "ip6tables";
  readonly effect: "drop" | "reject";
  readonly decidedBy: Decider;
  readonly path: readonly PathStep[];
  /** "iptables OUTPUT rule 1 (-A OUTPUT ...)" or "the iptables OUTPUT policy DROP". */
  readonly where: string;
  readonly fixes: readonly Fix[];
  /** The commands that open the flow, in order (not the save commands). */
  readonly steps: readonly string[];
  readonly notes: readonly string[];
}

const plain = parseUnmapped;

/**
 * The block, when the filter table's OUTPUT chain certainly drops or rejects the flow; null when
 * it lets it out, cannot tell, or the dump has no filter OUTPUT chain or is of the other family.
 */
export function findOutputBlock(dumpText: string, flow: OutputFlow): OutputBlock | null {
  if (!ipaddr.isValid(flow.source) || !ipaddr.isValid(flow.destination)) return null;
  const source = plain(flow.source);
  const destination = plain(flow.destination);
  if (source.kind() !== destination.kind()) return null;
  const family = destination.kind() === "ipv6" ? "ipv6" : "ipv4";
  // iptables-save prints nothing where no table is loaded: no rule, so nothing blocks (as checkIptables reads it).
  if (dumpText.trim() === "") return null;
  // A dump that shows no family is taken as the one asked about (as checkIptables does).
  const dumps = parseIptablesDumps(dumpText);
  const ruleset = dumps.find((d) => d.family === family) ?? (dumps.length === 1 && dumps[0]!.familyShownAt === null ? dumps[0] : undefined);
  const filter = ruleset?.tables.get("filter");
  if (!filter || !filter.chains.has("OUTPUT")) return null;
  const packet: Packet = {
    protocol: flow.protocol === "tcp" ? 6 : 17,
    source,
    destination,
    port: flow.port,
    inInterface: "",
    outInterface: flow.outInterface,
    ctstates: new Set(["NEW"]),
  };
  // A DNAT in nat OUTPUT (a Service address, say) runs before filter OUTPUT: filter then sees
  // another destination than the server's, so the walk says nothing about the connection.
  if (mayRewriteDestination(ruleset!, "OUTPUT", packet)) return null;
  const outcome = walkChain(filter, packet, { chain: "OUTPUT" });
  if (outcome.kind !== "decided" || outcome.effect === "accept") return null;
  const command = family === "ipv6" ? "ip6tables" : "iptables";
  const plan = planIptablesFix(filter, packet, { chain: "OUTPUT" }, outcome, {
    protocol: flow.protocol, source: flow.source, port: flow.port, family, direction: "out", destination: flow.destination,
  });
  const d = outcome.decider;
  const where = d.rule === null
    ? `the ${command} ${d.chain} policy ${d.policy ?? ""}`.trimEnd()
    : `${command} ${d.chain} rule ${d.rule} (${d.text.trim()})`;
  return { command, effect: outcome.effect, decidedBy: d, path: outcome.path, where, fixes: plan.fixes, steps: plan.steps, notes: plan.notes };
}
