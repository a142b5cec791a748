// The number `ufw status numbered` gives each rule (what `ufw delete N` / `ufw insert N` take).
// Numbered order is ufw's insertion order: all IPv4 rules (in, out and routed interleaved), then
// all IPv6 rules. Plain and verbose output list inbound rules, then outbound, then routed, each
// section IPv4 first — so the interleaving is lost (§3.1, confirmed on ufw 0.36.2: see the
// `out-and-route` fixtures). An inbound rule's number is certain only when no outbound/routed
// rule of its family exists.
import type { UfwRule, UfwStatus } from "./parse-ufw-status.js";

export interface UfwRuleNumber {
  readonly number: number;
  /** False when the input could not show the number (plain/verbose with out/routed rules). */
  readonly exact: boolean;
}

export function numberUfwRules(status: UfwStatus): Map<UfwRule, UfwRuleNumber> {
  const numbers = new Map<UfwRule, UfwRuleNumber>();
  if (status.format === "numbered") {
    status.rules.forEach((rule, i) => numbers.set(rule, { number: rule.shownNumber ?? i + 1, exact: rule.shownNumber !== null }));
    return numbers;
  }
  const v4 = status.rules.filter((r) => !r.v6);
  const v6 = status.rules.filter((r) => r.v6);
  const v4Exact = v4.every((r) => r.direction === "in");
  const v6Exact = v6.every((r) => r.direction === "in");
  // Lower-bound guesses when inexact. Every IPv4 row is listed, so IPv6 numbers start after them.
  v4.filter((r) => r.direction === "in").forEach((r, i) => numbers.set(r, { number: i + 1, exact: v4Exact }));
  v6.filter((r) => r.direction === "in").forEach((r, i) => numbers.set(r, { number: v4.length + i + 1, exact: v6Exact }));
  return numbers;
}
