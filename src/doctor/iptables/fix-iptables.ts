// The commands that open the flow (troubleshooting.md §1.3 cause 3, §4.2, §3.2): delete every
// rule that blocks it, found by walking again with each blocker removed; delete from the highest
// number down because numbers shift; rules in ufw's chains are fixed through ufw, which would
// re-add them on reload; a policy DROP needs an inserted ACCEPT before the point it applies.
import type { Fix } from "../report/check-result.js";
import { applyIptablesCommand } from "./apply-iptables-command.js";
import type { Outcome, WalkOptions } from "./evaluate-iptables.js";
import { walkChain } from "./evaluate-iptables.js";
import type { Packet } from "./match-condition.js";
import type { Chain, Rule, Table } from "./model.js";

export interface FixFlow {
  readonly protocol: "tcp" | "udp";
  readonly source: string;
  readonly port: number;
  readonly family: "ipv4" | "ipv6";
}

export interface FixPlan {
  readonly fixes: Fix[];
  readonly notes: string[];
  /** Every rule found to block, in the order the walk met them. */
  readonly blockers: readonly Rule[];
}

const MAX_ROUNDS = 32;

const isUfwChain = (name: string) => name.startsWith("ufw-") || name.startsWith("ufw6-");

// The rule of the start chain at which the walk left it for the policy: a RETURN there, or a
// goto whose chain returned (a goto never comes back to the chain it left, §4.3). null: the walk
// ran off the chain's end. An ACCEPT inserted after that rule is never reached.
function exitRule(start: Chain, outcome: Outcome): Rule | null {
  const last = outcome.path.findLast((s) => s.chain === start.name && s.rule !== null);
  const rule = last ? start.rules[last.rule! - 1] : undefined;
  if (!rule) return null;
  return rule.target.kind === "return" || (rule.target.kind === "jump" && rule.target.goto) ? rule : null;
}

export function planIptablesFix(table: Table, packet: Packet, options: WalkOptions, first: Outcome, flow: FixFlow): FixPlan {
  const fixes: Fix[] = [];
  const notes: string[] = [];
  const blockers: Rule[] = [];
  if (first.kind !== "decided" || first.effect === "accept") return { fixes, notes, blockers };
  const cmd = flow.family === "ipv6" ? "ip6tables" : "iptables";
  const excluded = new Set<Rule>();
  let outcome: Outcome = first;
  let policyBlocks = false;
  const uncertain = new Map<Rule, string>();
  for (let round = 0; round < MAX_ROUNDS; round++) {
    if (outcome.kind !== "decided") {
      notes.push(`With the rules above deleted, ${outcome.decider.chain} rule ${outcome.decider.rule ?? "policy"} cannot be decided (${outcome.reason}).`);
      break;
    }
    if (outcome.effect === "accept") break;
    // Rules the walk could not decide that may block ahead of the decider go too: otherwise the
    // fix works only when they do not match.
    const maybe = outcome.uncertain.map((u) => u.ifAppliesRule).filter((r): r is Rule => r !== null && !excluded.has(r));
    for (const rule of maybe) {
      blockers.push(rule);
      excluded.add(rule);
      uncertain.set(rule, outcome.uncertain.find((u) => u.ifAppliesRule === rule)!.reason);
    }
    if (outcome.deciderRule === null) {
      if (maybe.length === 0) {
        policyBlocks = true;
        break;
      }
    } else {
      blockers.push(outcome.deciderRule);
      excluded.add(outcome.deciderRule);
    }
    outcome = walkChain(table, packet, { ...options, excluded });
  }

  const ufwBlockers = blockers.filter((r) => isUfwChain(r.chain));
  const plain = blockers.filter((r) => !isUfwChain(r.chain));
  const chainOrder = [...new Set(plain.map((r) => r.chain))];
  const ordered = chainOrder.flatMap((chain) => plain.filter((r) => r.chain === chain).sort((a, b) => b.number - a.number));
  const several = ordered.length > 1;
  for (const rule of ordered) {
    fixes.push({
      description: `Delete ${rule.chain} rule ${rule.number} (${rule.text.trim()})${uncertain.has(rule) ? `, which blocks the flow if it matches (${uncertain.get(rule)})` : ""}${several ? "; rule numbers shift after each delete, so run these in the order given (highest number first in each chain)" : ""}`,
      command: `${cmd} --delete ${rule.chain} ${rule.number}`,
    });
  }
  const hasUfw = [...table.chains.keys()].some(isUfwChain);
  // `ufw insert 1` fails when ufw has no rules yet; a plain allow is enough when no ufw rule blocks.
  const ufwRule = `allow from ${flow.source} to any port ${flow.port} proto ${flow.protocol}`;
  const ufwAllow = ufwBlockers.length > 0 ? `ufw insert 1 ${ufwRule}` : `ufw ${ufwRule}`;
  if (ufwBlockers.length > 0 || (policyBlocks && hasUfw)) {
    const where = ufwBlockers.map((r) => `${r.chain} rule ${r.number}`).join(", ");
    fixes.push({
      description: ufwBlockers.length > 0
        ? `The block is in ufw's chains (${where}); ufw rewrites them on reload, so change it through ufw (an iptables --delete would not last). Check "ufw status numbered" for a DENY to delete instead`
        : `ufw manages ${options.chain} (its policy drops what no rule allows): allow the flow through ufw`,
      command: ufwAllow,
    });
    if (ufwBlockers.some((r) => !r.chain.includes("user"))) {
      notes.push("A blocking rule sits in ufw's built-in chains (from /etc/ufw/before.rules or after.rules), which ufw allow rules do not precede: edit that file and run ufw reload.");
    }
  } else if (policyBlocks) {
    const start = table.chains.get(options.chain)!;
    const deletes = fixes.map((f) => f.command);
    const exit = exitRule(start, outcome);
    // Numbers after the deletes above: each deleted rule before the point moves it up by one.
    const deletedBefore = ordered.filter((r) => r.chain === options.chain && (exit === null || r.number < exit.number)).length;
    let position = (exit === null ? start.rules.length + 1 : exit.number) - deletedBefore;
    const insertAt = (n: number) => `${cmd} --insert ${options.chain} ${n} -p ${flow.protocol} --dport ${flow.port} -s ${flow.source} -j ACCEPT`;
    // The walk above followed one way past each rule it could not decide; another way may leave
    // the chain earlier. Move up until the evaluator sees the inserted rule accept for certain
    // (at 1 it always does: every packet reaches a chain's first rule).
    const afterDeletes = deletes.reduce(applyIptablesCommand, table);
    const opens = (n: number) => {
      const o = walkChain(applyIptablesCommand(afterDeletes, insertAt(n)), packet, { chain: options.chain });
      return o.kind === "decided" && o.effect === "accept";
    };
    while (position > 1 && !opens(position)) position--;
    const where = exit !== null && position === exit.number - deletedBefore
      ? `before ${options.chain} rule ${exit.number} (${exit.target.kind === "return" ? "the RETURN" : "the goto"} through which the packet leaves ${options.chain} for its policy)`
      : position === start.rules.length - deletedBefore + 1
        ? "at the end, just before the policy applies"
        : `at position ${position}, the last place every way through ${options.chain} still reaches`;
    fixes.push({
      description: `${options.chain}'s policy is DROP and no rule accepts the flow: insert an ACCEPT ${where}${ordered.length > 0 ? " (numbered after the deletes above)" : ""}`,
      command: insertAt(position),
    });
  }
  if (ordered.length > 0 || (policyBlocks && !hasUfw)) {
    const file = flow.family === "ipv6" ? "/etc/iptables/rules.v6" : "/etc/iptables/rules.v4";
    fixes.push({
      description: `Changes made with ${cmd} are lost on reboot: save them where netfilter-persistent (iptables-persistent) restores them from; whatever wrote the rules (a script, a DaemonSet, cloud-init) may add them again`,
      command: `${cmd}-save > ${file}`,
    });
  }
  return { fixes, notes, blockers };
}
