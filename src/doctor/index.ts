// The doctor's public face: every check, the result contract and its reports.
export type { CheckName, CheckResult, CheckStatus, Fix, Flow, FlowEffect, FlowVerdict, ReportError, TextOptions } from "./report/index.js";
export { exitCodeOf, renderErrorJson, renderErrorLine, renderJson, renderText, toJsonValue } from "./report/index.js";
export { DoctorInputError } from "./input-error.js";
export { checkEgress, formatHostPort, parseHostPort, probeEndpoint } from "./egress/index.js";
export type { EgressOptions, EgressTarget, ProbeOutcome, ProbeResult } from "./egress/index.js";
export { checkUfw } from "./ufw/index.js";
export { checkNsg, parseNsg } from "./nsg/index.js";
export type { NsgInputs, NsgOptions } from "./nsg/index.js";
export { checkIptables } from "./iptables/index.js";
export { checkNftables } from "./nftables/index.js";
export { explainError } from "./explain/index.js";
export { checkSnat, parseConnections, parseSnatMetrics } from "./snat/index.js";
