// doctor-cli.md: "A match the evaluator cannot decide from the input makes the verdict
// `indeterminate` and names the rule, unless an earlier rule already decided." The flow checks
// follow such a rule both ways; where both ways end alike they still answer `indeterminate`, and
// keep what the flow ends in either way in the summary, in `eitherWay` and in the fixes.
import type { CheckResult } from "./check-result.js";

export interface UndecidedRule {
  /** The contract's decidedBy for the rule that could not be decided. */
  readonly decidedBy: Readonly<Record<string, unknown>>;
  /** In the check's words, from "whether": "whether iptables lets … in: INPUT rule 2 (…) depends on …". */
  readonly because: string;
}

/** `decided` as the contract wants it when `undecided` came first; `decided` itself when nothing did. */
export function undecidedFirst(decided: CheckResult, undecided: UndecidedRule | undefined, eitherWayExtra: Readonly<Record<string, unknown>> = {}): CheckResult {
  if (!undecided) return decided;
  return {
    ...decided,
    status: "indeterminate",
    verdict: "indeterminate",
    effect: null,
    decidedBy: undecided.decidedBy,
    eitherWay: { verdict: decided.verdict, effect: decided.effect, decidedBy: decided.decidedBy, ...eitherWayExtra },
    summary: `Cannot tell for certain ${undecided.because}; but the flow is ${decided.verdict} whichever way it matches: ${decided.summary}`,
  };
}
