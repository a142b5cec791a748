// The commands that open the flow (troubleshooting.md §1.3 cause 3, §4.2, §3.2). The walk is
// repeated with each blocker set aside, in the order the packet meets them, until the flow is
// accepted or something stops it that a delete must not remove:
// - a blocker specific to the flow (is-deletable-blocker.ts) is deleted, highest number first in
//   each chain because numbers shift;
// - the first blocker that is not (a catch-all DROP/REJECT, a port range...) gets an ACCEPT for the
//   flow inserted just before it, in its own chain, and nothing after it matters any more;
// - a blocker in ufw's chains is fixed through ufw, which rewrites them on reload: a ufw allow
//   where one is reached before the blocker, else an edit of the rules file ufw loads it from;
// - a policy DROP needs an inserted ACCEPT before the point it applies.
// Every insert and ufw allow is applied to the parsed rules and walked again before it is offered.
import type { Fix } from "../report/check-result.js";
import { applyIptablesCommand } from "./apply-iptables-command.js";
import type { Outcome, PathStep, WalkOptions } from "./evaluate-iptables.js";
import { walkChain } from "./evaluate-iptables.js";
import { isDeletableBlocker } from "./is-deletable-blocker.js";
import type { Packet } from "./match-condition.js";
import type { Chain, Rule, Table } from "./model.js";

export interface FixFlow {
  readonly protocol: "tcp" | "udp";
  readonly source: string;
  readonly port: number;
  readonly family: "ipv4" | "ipv6";
  /**
   * "out": a connection the node opens (walked from OUTPUT) to `destination`: the ACCEPT names
   * that remote address and port (`-d <server> --dport <port>`), not the source. Default "in".
   */
  readonly direction?: "in" | "out";
  /** The remote address of an outgoing flow; required with direction "out". */
  readonly destination?: string;
}

export interface FixPlan {
  readonly fixes: Fix[];
  /** One phrase per fix that opens the flow (not the persist notes), in order, for the summary. */
  readonly steps: string[];
  readonly notes: string[];
  /** Every rule found to block, in the order the walk met them. */
  readonly blockers: readonly Rule[];
}

const MAX_ROUNDS = 32;

const isUfwChain = (name: string) => name.startsWith("ufw-") || name.startsWith("ufw6-");

// ufw's own rules (`ufw allow`, `ufw deny`, `ufw limit`) live in the ufw-user-* chains; every other
// ufw chain is ufw's frame around them: before.rules, after.rules (and before6/after6 for IPv6),
// or chains ufw fills from its settings (default policy, logging).
const isUfwUserChain = (name: string) => /^ufw6?-user-/.test(name);

// The file a rule of a ufw built-in chain is loaded from (§3.2: ufw-not-local is before.rules').
function ufwRulesFile(chain: string, family: "ipv4" | "ipv6"): string | null {
  const six = family === "ipv6" ? "6" : "";
  if (/^ufw6?-(before-|not-local)/.test(chain)) return `/etc/ufw/before${six}.rules`;
  if (/^ufw6?-after-/.test(chain)) return `/etc/ufw/after${six}.rules`;
  return null;
}

// The rule of the start chain at which the walk left it for the policy: a RETURN there, or a
// goto whose chain returned (a goto never comes back to the chain it left, §4.3). null: the walk
// ran off the chain's end. An ACCEPT inserted after that rule is never reached.
function exitRule(start: Chain, outcome: Outcome): Rule | null {
  const last = outcome.path.findLast((s) => s.chain === start.name && s.rule !== null);
  const rule = last ? start.rules[last.rule! - 1] : undefined;
  if (!rule) return null;
  return rule.target.kind === "return" || (rule.target.kind === "jump" && rule.target.goto) ? rule : null;
}

/** What ended the search for blockers, other than the flow being accepted. */
type Stop =
  | { readonly kind: "policy" }
  | { readonly kind: "insert-before"; readonly rule: Rule }
  | { readonly kind: "ufw"; readonly rule: Rule; readonly path: readonly PathStep[] };

export function planIptablesFix(table: Table, packet: Packet, options: WalkOptions, first: Outcome, flow: FixFlow): FixPlan {
  const fixes: Fix[] = [];
  const steps: string[] = [];
  const notes: string[] = [];
  const blockers: Rule[] = [];
  if (first.kind !== "decided" || first.effect === "accept") return { fixes, steps, notes, blockers };
  const cmd = flow.family === "ipv6" ? "ip6tables" : "iptables";
  const outgoing = flow.direction === "out";
  if (outgoing && flow.destination === undefined) throw new Error("an outgoing flow needs its destination");
  const accept = outgoing
    ? `-d ${flow.destination} -p ${flow.protocol} --dport ${flow.port} -j ACCEPT`
    : `-p ${flow.protocol} --dport ${flow.port} -s ${flow.source} -j ACCEPT`;
  // ufw's rules for each direction: `ufw allow out to ...` lands in ufw-user-output.
  const ufwRuleForFlow = outgoing
    ? `allow out to ${flow.destination} port ${flow.port} proto ${flow.protocol}`
    : `allow from ${flow.source} to any port ${flow.port} proto ${flow.protocol}`;
  const ufwUser = outgoing ? "output" : "input";
  const excluded = new Set<Rule>();
  const deleted: Rule[] = [];
  const uncertain = new Map<Rule, string>();
  let outcome: Outcome = first;
  let stop: Stop | null = null;
  rounds: for (let round = 0; round < MAX_ROUNDS; round++) {
    if (outcome.kind !== "decided") {
      notes.push(`With the rules above deleted, ${outcome.decider.chain} rule ${outcome.decider.rule ?? "policy"} cannot be decided (${outcome.reason}).`);
      break;
    }
    if (outcome.effect === "accept") break;
    // Rules the walk could not decide that may block ahead of the decider count too: otherwise the
    // fix works only when they do not match.
    const met: Rule[] = [];
    for (const u of outcome.uncertain) {
      const rule = u.ifAppliesRule;
      if (rule === null || excluded.has(rule) || met.includes(rule)) continue;
      met.push(rule);
      uncertain.set(rule, u.reason);
    }
    if (outcome.deciderRule !== null) met.push(outcome.deciderRule);
    if (met.length === 0) {
      stop = { kind: "policy" };
      break;
    }
    for (const rule of met) {
      blockers.push(rule);
      if (isUfwChain(rule.chain)) {
        stop = { kind: "ufw", rule, path: outcome.path };
        break rounds;
      }
      if (!isDeletableBlocker(rule, flow.port)) {
        stop = { kind: "insert-before", rule };
        break rounds;
      }
      deleted.push(rule);
      excluded.add(rule);
    }
    outcome = walkChain(table, packet, { ...options, excluded });
  }

  const chainOrder = [...new Set(deleted.map((r) => r.chain))];
  const ordered = chainOrder.flatMap((chain) => deleted.filter((r) => r.chain === chain).sort((a, b) => b.number - a.number));
  const several = ordered.length > 1;
  for (const rule of ordered) {
    const command = `${cmd} --delete ${rule.chain} ${rule.number}`;
    fixes.push({
      description: `Delete ${rule.chain} rule ${rule.number} (${rule.text.trim()})${uncertain.has(rule) ? `, which blocks the flow if it matches (${uncertain.get(rule)})` : ""}${several ? "; rule numbers shift after each delete, so run these in the order given (highest number first in each chain)" : ""}`,
      command,
    });
    steps.push(command);
  }
  const afterDeletes = fixes.map((f) => f.command).reduce(applyIptablesCommand, table);
  const opensWith = (command: string) => {
    const o = walkChain(applyIptablesCommand(afterDeletes, command), packet, { chain: options.chain, ...(options.marks ? { marks: options.marks } : {}) });
    return o.kind === "decided" && o.effect === "accept";
  };
  // Numbers after the deletes above: each deleted rule before a point in its chain moves it up by one.
  const renumbered = (chain: string, number: number) => number - ordered.filter((r) => r.chain === chain && r.number < number).length;
  const hasUfw = [...table.chains.keys()].some(isUfwChain);
  // Whether an ACCEPT first in ufw's user chain for the flow's direction (where `ufw allow` puts
  // it) is reached and opens the flow: an outgoing flow is fixed through ufw only when it is.
  const ufwAllowReached = () => {
    const userChain = table.chains.get(flow.family === "ipv6" ? `ufw6-user-${ufwUser}` : `ufw-user-${ufwUser}`);
    return userChain !== undefined && opensWith(`${cmd} --insert ${userChain.name} 1 ${accept}`);
  };
  let iptablesChanged = ordered.length > 0;

  if (stop?.kind === "insert-before") {
    const { rule } = stop;
    const chain = table.chains.get(rule.chain)!;
    const insertAt = (n: number) => `${cmd} --insert ${rule.chain} ${n} ${accept}`;
    const before = renumbered(rule.chain, rule.number);
    let position = before;
    // Where a rule the walk could not decide may let the packet leave the chain earlier, move up
    // until the evaluator sees the inserted rule accept for certain.
    while (position > 1 && !opensWith(insertAt(position))) position--;
    if (!opensWith(insertAt(position))) {
      notes.push(`The evaluator could not confirm that an ACCEPT in ${rule.chain} opens the flow: the packet may not reach ${rule.chain} on every way through ${options.chain}.`);
    }
    const verb = rule.target.kind === "reject" ? "rejects" : "drops";
    const why = chain.policy === null && rule.number === chain.rules.length && rule.conditions.length === 0
      ? `it ends user chain ${rule.chain} and ${verb} whatever reaches it`
      : `it ${verb} more than this flow (no destination-port match that singles out port ${flow.port})`;
    const command = insertAt(position);
    fixes.push({
      description: `Do not delete ${rule.chain} rule ${rule.number} (${rule.text.trim()})${uncertain.has(rule) ? `, which blocks the flow if it matches (${uncertain.get(rule)})` : ""}: ${why}, so deleting it would open every port it guards. Insert an ACCEPT for this flow alone ${position === before ? `just before it` : `at position ${position}, the last place every way through ${rule.chain} still reaches`}${before !== rule.number ? " (numbered after the deletes above)" : ""}`,
      command,
    });
    steps.push(command);
    iptablesChanged = true;
  } else if (stop?.kind === "ufw") {
    const { rule } = stop;
    // `ufw insert 1 allow ...` puts an ACCEPT first in ufw-user-input; `ufw insert 1` fails when
    // ufw has no rules yet, so a plain (appended) allow where it has none. An IPv6 rule cannot go
    // to position 1 while an IPv4 rule holds it (ufw: "Invalid position"): `ufw prepend` puts it
    // first among the IPv6 rules, the top of ufw6-user-input.
    const userChain = table.chains.get(flow.family === "ipv6" ? `ufw6-user-${ufwUser}` : `ufw-user-${ufwUser}`);
    const ufwRule = ufwRuleForFlow;
    const hasUserRules = userChain !== undefined && userChain.rules.length > 0;
    const ufwCommand = !hasUserRules ? `ufw ${ufwRule}` : flow.family === "ipv6" ? `ufw prepend ${ufwRule}` : `ufw insert 1 ${ufwRule}`;
    const ufwOpens = userChain !== undefined
      && opensWith(`${cmd} --insert ${userChain.name} ${hasUserRules ? 1 : userChain.rules.length + 1} ${accept}`);
    if (ufwOpens) {
      fixes.push({
        description: isUfwUserChain(rule.chain)
          ? `The block is in ufw's chains (${rule.chain} rule ${rule.number}); ufw rewrites them on reload, so change it through ufw (an iptables --delete would not last). Check "ufw status numbered" for a DENY to delete instead`
          : `The block is ${rule.chain} rule ${rule.number} (${rule.text.trim()}), one of ufw's built-in rules; ufw's own rules are reached before it, so allow the flow through ufw (an iptables --delete would not last past a ufw reload)`,
        command: ufwCommand,
      });
      steps.push(ufwCommand);
    } else {
      // §3.2: ufw-user-input is jumped to only at the end of ufw-before-input, after every rule of
      // before.rules; no ufw allow is reached before such a rule. The rule must go from the file.
      const file = ufwRulesFile(rule.chain, flow.family)
        ?? [...stop.path].reverse().map((s) => ufwRulesFile(s.chain, flow.family)).find((f) => f !== null)
        ?? `/etc/ufw/before${flow.family === "ipv6" ? "6" : ""}.rules`;
      const change = isDeletableBlocker(rule, flow.port)
        ? `delete the line in ${file} that adds it`
        : `it blocks more than this flow, so do not delete it: add "-A ${rule.chain} ${accept}" in ${file} just before the line that adds it`;
      fixes.push({
        description: `The block is ${rule.chain} rule ${rule.number} (${rule.text.trim()}), which ufw loads from ${file} ahead of its own rules, so no "ufw allow" is reached before it (and an iptables --delete would be undone by the next ufw reload): ${change}, then run ufw reload`,
        command: `\${EDITOR:-vi} ${file} && ufw reload`,
      });
      steps.push(`edit ${file} (${isDeletableBlocker(rule, flow.port) ? "delete" : "add an ACCEPT for the flow before"} the line that makes ${rule.chain} rule ${rule.number}), then run ufw reload`);
    }
  } else if (stop?.kind === "policy" && hasUfw && (!outgoing || ufwAllowReached())) {
    const command = `ufw ${ufwRuleForFlow}`;
    fixes.push({ description: `ufw manages ${options.chain} (its policy drops what no rule allows): allow the flow through ufw`, command });
    steps.push(command);
  } else if (stop?.kind === "policy") {
    const start = table.chains.get(options.chain)!;
    const exit = exitRule(start, outcome);
    let position = exit === null ? renumbered(options.chain, start.rules.length + 1) : renumbered(options.chain, exit.number);
    const insertAt = (n: number) => `${cmd} --insert ${options.chain} ${n} ${accept}`;
    // The walk above followed one way past each rule it could not decide; another way may leave
    // the chain earlier. Move up until the evaluator sees the inserted rule accept for certain
    // (at 1 it always does: every packet reaches a chain's first rule).
    while (position > 1 && !opensWith(insertAt(position))) position--;
    const deletedBefore = ordered.filter((r) => r.chain === options.chain).length;
    const where = exit !== null && position === renumbered(options.chain, exit.number)
      ? `before ${options.chain} rule ${exit.number} (${exit.target.kind === "return" ? "the RETURN" : "the goto"} through which the packet leaves ${options.chain} for its policy)`
      : position === start.rules.length - deletedBefore + 1
        ? "at the end, just before the policy applies"
        : `at position ${position}, the last place every way through ${options.chain} still reaches`;
    const command = insertAt(position);
    fixes.push({
      description: `${options.chain}'s policy is DROP and no rule accepts the flow: insert an ACCEPT ${where}${ordered.length > 0 ? " (numbered after the deletes above)" : ""}`,
      command,
    });
    steps.push(command);
    iptablesChanged = true;
  }
  if (iptablesChanged) fixes.push(...persistFixes(flow.family));
  return { fixes, steps, notes, blockers };
}

/** The notes that make iptables changes last past a reboot, one per distribution family. */
export function persistFixes(family: "ipv4" | "ipv6"): Fix[] {
  const cmd = family === "ipv6" ? "ip6tables" : "iptables";
  // Where the boot-time rules live depends on the distribution: Debian and Ubuntu's
  // netfilter-persistent (iptables-persistent) restores /etc/iptables/rules.v4 and rules.v6;
  // RHEL, CentOS, Rocky and Fedora's iptables-services restores /etc/sysconfig/iptables and ip6tables.
  const [debian, rhel] = family === "ipv6"
    ? ["/etc/iptables/rules.v6", "/etc/sysconfig/ip6tables"]
    : ["/etc/iptables/rules.v4", "/etc/sysconfig/iptables"];
  return [
    {
      description: `Changes made with ${cmd} are lost on reboot, and whatever wrote the rules (a script, a DaemonSet, cloud-init) may add them again. Save them where the node restores them from at boot: on Debian or Ubuntu, netfilter-persistent (iptables-persistent) reads ${debian}`,
      command: `${cmd}-save > ${debian}`,
    },
    {
      description: `On RHEL, CentOS, Rocky or Fedora, iptables-services reads ${rhel} instead: run this one there, not the one above`,
      command: `${cmd}-save > ${rhel}`,
    },
  ];
}

/**
 * The fix for a DROP or REJECT in a table before filter (raw PREROUTING, mangle PREROUTING or
 * INPUT): delete it where it blocks exactly the flow's port, as in filter; otherwise an ACCEPT for
 * the flow just before it, which ends only that table's chain — the packet goes on to the next
 * table, as the kernel walks them (§4.3).
 */
export function planEarlierTableFix(table: string, rule: Rule, flow: FixFlow): Fix {
  const cmd = flow.family === "ipv6" ? "ip6tables" : "iptables";
  // A DNAT decides only where it sends the flow to ::1, which IPv6 never routes from another interface.
  const isDnat = rule.target.kind !== "reject" && rule.target.kind !== "drop";
  const verb = rule.target.kind === "reject" ? "rejects" : rule.target.kind === "drop" ? "drops" : "rewrites";
  const effect = isDnat ? "sends the flow to a loopback address, which IPv6 routing never delivers from another interface," : `${verb} the flow`;
  if (isDeletableBlocker(rule, flow.port)) {
    return {
      description: `Delete ${table} ${rule.chain} rule ${rule.number} (${rule.text.trim()}): it ${effect} before filter INPUT sees it`,
      command: `${cmd} -t ${table} --delete ${rule.chain} ${rule.number}`,
    };
  }
  return {
    description: `Do not delete ${table} ${rule.chain} rule ${rule.number} (${rule.text.trim()}): it ${verb} more than this flow (no destination-port match that singles out port ${flow.port}). Insert an ACCEPT for this flow alone just before it; in the ${table} table an ACCEPT ends only that chain${isDnat ? " (so the flow keeps its destination)" : ""}, and filter INPUT still judges the flow`,
    command: `${cmd} -t ${table} --insert ${rule.chain} ${rule.number} -p ${flow.protocol} --dport ${flow.port} -s ${flow.source} -j ACCEPT`,
  };
}

/**
 * The fix for a raw or mangle built-in chain whose policy DROP drops the flow: an ACCEPT for the
 * flow first in that chain, which every packet reaches. In raw and mangle an ACCEPT ends only that
 * chain, so the next tables and filter still judge the flow (checked in the kernel). `apply` is
 * the same command without `-t`, for applyIptablesCommand on that table.
 */
export function planEarlierPolicyFix(table: string, chain: string, flow: FixFlow): { fix: Fix; apply: string } {
  const cmd = flow.family === "ipv6" ? "ip6tables" : "iptables";
  const spec = `--insert ${chain} 1 -p ${flow.protocol} --dport ${flow.port} -s ${flow.source} -j ACCEPT`;
  return {
    fix: {
      description: `The ${table} ${chain} policy is DROP and no rule of that chain accepts the flow: insert an ACCEPT for it first in ${table} ${chain}; in the ${table} table an ACCEPT ends only that chain, and filter INPUT still judges the flow`,
      command: `${cmd} -t ${table} ${spec}`,
    },
    apply: `${cmd} ${spec}`,
  };
}
