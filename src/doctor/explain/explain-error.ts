// `doctor explain`: an error message from kubectl, kube-apiserver, the tunnel server or agent, or
// curl → the mechanism and the likely causes in order, each with the check that confirms it
// (doctor-cli.md `explain`). Exit 0 when recognised, 3 (indeterminate) when not.
import { mechanismOfText } from "../../protocol/net-error.js";
import type { CheckResult } from "../report/check-result.js";
import { causesFor } from "./causes.js";
import { dialCauses, errorPatterns } from "./error-patterns.js";
import { extractContext } from "./extract-context.js";
import { reportedMechanism, type MechanismDetail } from "./mechanism.js";

/** What to gather when a message is not recognised. */
export const whatToCollect: readonly string[] = [
  "the full error with the command that produced it (kubectl ... -v=6 shows the request)",
  "kube-apiserver's log lines around the failure (grep -i 'egress\\|dial\\|proxy')",
  "the tunnel server's and the agents' logs (kubectl logs -n kube-system -l k8s-app=konnectivity-agent --tail=200)",
  "which nodes fail and which work (kubectl get nodes -o wide; nodetunnel doctor cluster)",
  "the output of `nodetunnel doctor node` on a failing node",
];

/** nodetunnel appends ` — <explanation>` to the texts it passes on; the original text is before it. */
function splitOwnExplanation(text: string): { original: string; own: string } {
  const i = text.indexOf(" — ");
  return i >= 0 ? { original: text.slice(0, i), own: text.slice(i + 3) } : { original: text, own: "" };
}

export function explainError(text: string): CheckResult {
  // The original text decides the mechanism; the explanation only lends the server's agent endpoint.
  const { original, own } = splitOwnExplanation(text.trim());
  const ctx = extractContext(original, own);
  const pattern = errorPatterns.find((p) => p.test.test(original));
  let mechanism: MechanismDetail;
  let ids: readonly string[];
  let meaning: string;
  if (pattern) {
    mechanism = pattern.mechanism;
    ids = pattern.causes(ctx);
    meaning = pattern.meaning;
  } else {
    // Words the shared classifier knows that no pattern above caught.
    mechanism = mechanismOfText(original);
    ids = dialCauses(mechanism, ctx);
    meaning = `The text reads as a ${mechanism} error.`;
  }
  const extracted = { host: ctx.host, port: ctx.port, nodeName: ctx.nodeName, httpCode: ctx.httpCode, leg: ctx.leg };
  if (mechanism === "unknown" || ids.length === 0) {
    return {
      check: "explain", status: "indeterminate", mechanism: "unknown", mechanismDetail: "unknown", causes: [], extracted,
      summary: "Not a message the doctor recognises; collect the items listed and run the checks for the failing node.",
      fixes: [], assumptions: [], collect: whatToCollect,
      details: whatToCollect.map((c) => `collect: ${c}`),
    };
  }
  const causes = causesFor(ids, ctx);
  const where = ctx.host ? ` (${ctx.host}${ctx.port !== null ? `:${ctx.port}` : ""}${ctx.leg === "server" ? ", the agent's link to the tunnel server" : ""})` : "";
  const assumptions: string[] = [];
  if (ctx.leg === "unknown" && ["timeout", "refused", "no-route", "reset"].includes(mechanism)) {
    assumptions.push("The text does not say which leg failed; taken as the dial to the node or pod, not the agent's link to the tunnel server");
  }
  if (causes.some((c) => c.check.includes("<agent-node-ip>"))) {
    assumptions.push("The source address is not in the text: replace <agent-node-ip> with the address of a node running an agent");
  }
  return {
    check: "explain", status: "warning", mechanism: reportedMechanism(mechanism), mechanismDetail: mechanism, causes, extracted,
    summary: `${meaning}${where} Most likely: ${causes[0]!.why}; check with: ${causes[0]!.check}`,
    fixes: [], assumptions,
    details: causes.map((c, i) => `${i + 1}. ${c.id}: ${c.why}\n   ${c.check}`),
  };
}
