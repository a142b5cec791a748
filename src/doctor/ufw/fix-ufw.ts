// The narrowest ufw command that lets the flow in (troubleshooting.md §1.3 cause 2, doctor-cli.md
// `doctor ufw`): an allow for this one source inserted ahead of the blocking rule, or appended
// when the default policy blocks — in both cases ahead of any earlier rule that may block too;
// deleting the blocking rule is offered (after the allow, numbered as ufw renumbers after the
// insert) only when that alone would let the flow in. `ufw disable` is never the first answer: it drops all host filtering.
import type { Fix } from "../report/check-result.js";
import type { UfwEvaluation, UfwFlow } from "./evaluate-ufw.js";
import { evaluateUfw, formatPorts } from "./evaluate-ufw.js";
import type { UfwEndpoint, UfwRule, UfwStatus } from "./parse-ufw-status.js";

export function fixUfw(status: UfwStatus, flow: UfwFlow, evaluation: UfwEvaluation): Fix[] {
  if (evaluation.verdict !== "blocked") return [];
  const allow = `allow from ${flow.source} to ${flow.destination ?? "any"} port ${flow.port} proto ${flow.protocol}`;
  const d = evaluation.decider;
  if (d.kind !== "policy" && d.kind !== "rule") return [];
  const fixes: Fix[] = [];
  const what = `${flow.source} to port ${flow.port}/${flow.protocol}`;
  // A rule the input cannot decide (a To address without --destination...) that would block the
  // same way comes before the decider and may match first: an allow placed after it would work
  // only when it does not match, so the allow goes ahead of the first such rule.
  const maybe = evaluation.sameEffectUnknowns[0];
  if (maybe) {
    const otherwise = d.kind === "policy" ? `the default incoming policy (${d.policy}) decides` : `rule ${d.number} blocks`;
    fixes.push(maybe.numberExact
      ? {
        description: `Allow ${what} ahead of rule ${maybe.number}, which blocks it if it matches (${maybe.reason}); otherwise ${otherwise}. Inserted there, the allow works either way.`,
        command: `ufw insert ${maybe.number} ${allow}`,
      }
      : {
        description: `Allow ${what} ahead of every other rule of its family: rule ${maybe.number} ("${maybe.rule.text.trim()}") blocks it if it matches (${maybe.reason}), otherwise ${otherwise}, and this output does not show its exact number.`,
        command: `ufw prepend ${allow}`,
      });
  } else if (d.kind === "policy") {
    fixes.push({
      description: `Allow ${what}; no rule matches, so the default incoming policy (${d.policy}) decides and an appended allow is reached.`,
      command: `ufw ${allow}`,
    });
  } else {
    fixes.push(d.numberExact
      ? {
        description: `Allow ${what} ahead of rule ${d.number}, which ${d.rule.action === "REJECT" ? "rejects" : "drops"} it; other sources stay blocked.`,
        command: `ufw insert ${d.number} ${allow}`,
      }
      : {
        description: `Allow ${what} ahead of every other rule of its family (the blocking rule's number is not shown by this output, so prepend instead of insert).`,
        command: `ufw prepend ${allow}`,
      });
  }
  if (d.kind !== "rule") return fixes;
  const withoutIt = evaluateUfw(status, flow, { skipRule: d.rule });
  if (withoutIt.verdict === "allowed") {
    // Fixes run in the order given (doctor-cli.md), and every branch above puts an allow of the
    // flow's family ahead of the blocking rule: ufw renumbers on insert, so after it the blocking
    // rule is N+1, and `ufw delete N` would delete the allow just inserted.
    fixes.push(d.numberExact
      ? {
        description: `Optionally, also delete the blocking rule (it then stops blocking every other source too): it is rule ${d.number} now and rule ${d.number + 1} once the allow above is inserted, as this command assumes (run on its own, without the insert, it would be "ufw delete ${d.number}").`,
        // --force: a numbered delete otherwise asks "Proceed with operation (y|n)?" and, pasted
        // in a block, takes the next line as its answer.
        command: `ufw --force delete ${d.number + 1}`,
      }
      : {
        description: "Optionally, also delete the blocking rule (it then stops blocking every other source too); deleted by its text because its number is not certain.",
        command: `ufw delete ${ufwRuleCommand(d.rule)}`,
      });
  }
  return fixes;
}

/** The rule in ufw's own syntax, as `ufw delete <rule>` accepts it. */
export function ufwRuleCommand(rule: UfwRule): string {
  const parts: string[] = [rule.action.toLowerCase()];
  // Only inbound rules decide an inbound flow, so only they are ever spelled out here.
  if (rule.to.iface !== null) parts.push("in", "on", rule.to.iface);
  if (rule.log !== null) parts.push(rule.log);
  parts.push("from", ...endpoint(rule.from), "to", ...endpoint(rule.to));
  if (rule.to.protocol !== null && rule.to.app === null && rule.from.app === null) parts.push("proto", rule.to.protocol);
  return parts.join(" ");
}

function endpoint(e: UfwEndpoint): string[] {
  const out = [e.address ?? "any"];
  if (e.app !== null) out.push("app", /\s/.test(e.app) ? `'${e.app}'` : e.app);
  else if (e.ports !== null) out.push("port", formatPorts(e.ports));
  return out;
}
