// One NSG, one direction: rules sorted by priority, the first match decides (troubleshooting.md
// §2.1, §2.8 `evalNsg`). Rules the input cannot decide are collected; the NSG's outcome is still
// certain when every undecided rule would lead to the same access as the first certain match
// (check-nsg.ts then reports the flow indeterminate, naming the rule, with that outcome either way).
import { defaultRules } from "./default-rules.js";
import { matchRule } from "./match-rule.js";
import type { AddressContext } from "./match-rule.js";
import type { Nsg, NsgAccess, NsgDirection, NsgFlow, NsgRule } from "./nsg-model.js";

export interface UndecidedRule {
  readonly rule: NsgRule;
  readonly reason: string;
  /** What input would decide it. */
  readonly needs: string;
}

export interface NsgDecision {
  /** `unknown`: the undecided rules lead to a different access than the first certain match. */
  readonly outcome: NsgAccess | "unknown";
  /** The first rule that certainly matches. */
  readonly matched: NsgRule;
  /** Rules with a lower priority number than `matched` that may or may not match. */
  readonly undecided: readonly UndecidedRule[];
}

export function evaluateNsg(nsg: Nsg, direction: NsgDirection, flow: NsgFlow, ctx: AddressContext): NsgDecision {
  const rules = nsg.rules.filter((r) => r.direction === direction).sort((a, b) => a.priority - b.priority);
  const undecided: UndecidedRule[] = [];
  for (const rule of rules) {
    const m = matchRule(rule, flow, ctx);
    if (m.kind === "unknown") undecided.push({ rule, reason: m.reason, needs: m.needs });
    if (m.kind !== "yes") continue;
    const certain = undecided.every((u) => u.rule.access === rule.access);
    return { outcome: certain ? rule.access : "unknown", matched: rule, undecided };
  }
  // Unreachable in practice: the parser adds DenyAll{In,Out}Bound, which matches every flow.
  const denyAll = defaultRules.find((r) => r.direction === direction && r.access === "Deny")!;
  const certain = undecided.every((u) => u.rule.access === "Deny");
  return { outcome: certain ? "Deny" : "unknown", matched: denyAll, undecided };
}
