// `doctor ufw`: is a new connection from the source to the kubelet port let in by ufw?
// Contract: doctor-cli.md `doctor ufw`; semantics: troubleshooting.md §3 and §1.3 cause 2.
import type { CheckResult } from "../report/check-result.js";
import { undecidedFirst } from "../report/undecided-first.js";
import { DoctorInputError } from "../input-error.js";
import { checkFlowFamilies, unmapped } from "../flow-family.js";
import type { UfwEvaluation, UfwFlow } from "./evaluate-ufw.js";
import { evaluateUfw, parseAddress } from "./evaluate-ufw.js";
import { fixUfw } from "./fix-ufw.js";
import { parseUfwStatus } from "./parse-ufw-status.js";
import type { UfwDefaults, UfwRule } from "./parse-ufw-status.js";

export interface CheckUfwOptions {
  readonly source: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  readonly inInterface: string;
  /** The node's address; rules with a To address need it. */
  readonly destination?: string;
}

export function checkUfw(text: string, opts: CheckUfwOptions): CheckResult {
  for (const [flag, value] of [["--source", opts.source], ["--destination", opts.destination]] as const) {
    if (value === undefined) continue;
    try {
      parseAddress(value);
    } catch (cause) {
      throw new DoctorInputError(`${flag} ${JSON.stringify(value)} is not an IP address`, { expected: "an IPv4 or IPv6 address", cause });
    }
  }
  checkFlowFamilies(opts.source, opts.destination);
  const status = parseUfwStatus(text);
  // A mapped address (::ffff:10.224.0.7) is its IPv4 address: ufw's IPv4 rules decide it.
  const flow: UfwFlow = {
    source: unmapped(opts.source),
    destination: opts.destination === undefined ? null : unmapped(opts.destination),
    port: opts.port,
    protocol: opts.protocol,
    inInterface: opts.inInterface,
  };
  const evaluation = evaluateUfw(status, flow);
  const details: string[] = [];
  const assumptions = [...evaluation.assumptions];
  const d = evaluation.decider;
  if (d.kind === "rule" && !d.numberExact) {
    assumptions.push(`Rule number ${d.number} counts only the inbound rules shown; \`ufw status numbered\` interleaves outbound and routed rules, so the real number may be higher (run it before \`ufw delete N\`).`);
  }
  if (d.kind === "rule" && d.rule.action === "LIMIT" && evaluation.verdict === "allowed") {
    details.push(`LIMIT rejects the 6th new connection within 30 s from one source address (recent match, --hitcount 6 --seconds 30): kube-apiserver and konnectivity open many connections to the kubelet, so expect intermittent "connection refused". \`ufw insert ${d.number} allow from ${flow.source} to any port ${flow.port} proto ${flow.protocol}\` exempts this source.`);
  }
  for (const u of evaluation.sameEffectUnknowns) {
    assumptions.push(`Rule ${u.number} ("${u.rule.text}") might match instead (${u.reason}); it would have the same effect.`);
  }
  const decided: CheckResult = {
    check: "ufw",
    status: evaluation.verdict === "allowed" ? "ok" : evaluation.verdict === "blocked" ? "problem" : "indeterminate",
    summary: summarize(evaluation, flow),
    fixes: fixUfw(status, flow, evaluation),
    assumptions,
    flow: { protocol: flow.protocol, source: flow.source, destination: flow.destination, port: flow.port },
    verdict: evaluation.verdict,
    effect: evaluation.effect,
    decidedBy: decidedBy(evaluation, status.defaults),
    ...(details.length > 0 ? { details } : {}),
  };
  const undecided = evaluation.sameEffectUnknowns[0];
  return undecidedFirst(decided, undecided && {
    decidedBy: ruleDecidedBy(undecided),
    because: `whether ufw lets new ${flow.protocol.toUpperCase()} connections from ${flow.source} to port ${flow.port} in, which depends on ${ruleText(undecided.number, undecided.rule)}: ${undecided.reason}`,
  });
}

function ruleDecidedBy(d: { rule: UfwRule; number: number; numberExact: boolean }): Record<string, unknown> {
  return { rule: d.number, action: d.rule.action, policy: null, text: d.rule.text, ...(d.numberExact ? {} : { ruleNumberExact: false }) };
}

const ruleText = (n: number, rule: UfwRule) => `rule ${n} "${rule.text.replace(/^\[\s*\d+\]\s*/, "").replace(/\s+/g, " ")}"`;

function decidedBy(evaluation: UfwEvaluation, defaults: UfwDefaults | null): Record<string, unknown> | null {
  const d = evaluation.decider;
  switch (d.kind) {
    case "inactive":
      return null;
    case "loopback":
      return { rule: null, action: "ALLOW", policy: null, text: "-A ufw-before-input -i lo -j ACCEPT (before.rules)" };
    case "policy":
      // The input's own Default line; plain `ufw status` shows none, so the assumed one is said as such.
      return { rule: null, action: "policy", policy: d.policy, text: defaults?.text ?? `Default: ${d.policy} (incoming) (assumed)` };
    case "rule":
      return ruleDecidedBy(d);
  }
}

function summarize(e: UfwEvaluation, flow: UfwFlow): string {
  const what = `new ${flow.protocol.toUpperCase()} connections from ${flow.source} to port ${flow.port}`;
  const d = e.decider;
  const seen = e.effect === "drop" ? " (the client sees an i/o timeout)" : e.effect === "reject" ? " (the client sees connection refused)" : "";
  switch (d.kind) {
    case "inactive":
      return `ufw is inactive, so it does not filter ${what}; other iptables or nftables rules still may (check them with doctor iptables / doctor nftables).`;
    case "loopback":
      return `ufw accepts ${what} on lo: before.rules accepts all loopback traffic before any user rule.`;
    case "policy":
      return e.verdict === "allowed"
        ? `ufw allows ${what}: no rule matches and the default incoming policy is allow.`
        : `ufw ${e.effect === "reject" ? "rejects" : "drops"} ${what}: no rule allows them, so the default incoming policy "${d.policy}" decides${seen}; add an allow rule.`;
    case "rule": {
      const rule = ruleText(d.number, d.rule);
      if (e.verdict === "indeterminate") return `ufw's verdict on ${what} depends on ${rule}: ${e.reason}.`;
      if (e.verdict === "allowed") return `ufw allows ${what}: ${rule} matches first${d.rule.action === "LIMIT" ? " (rate-limited: the 6th new connection within 30 s is rejected)" : ""}.`;
      return `ufw ${e.effect === "reject" ? "rejects" : "drops"} ${what}: ${rule} matches first${seen}; allow the source ahead of it.`;
    }
  }
}
