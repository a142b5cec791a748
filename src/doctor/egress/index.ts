// Live egress probes (doctor-cli.md `doctor egress`).
export { checkEgress, withLocalBlocks } from "./check-egress.js";
export type { EgressOptions, LocalEgressBlock } from "./check-egress.js";
export { isTlsTarget, probeEndpoint, probeOutcomes } from "./probe-endpoint.js";
export type { ProbeCertificate, ProbeOptions, ProbeOutcome, ProbeResult } from "./probe-endpoint.js";
export { formatHostPort, parseHostPort } from "./egress-target.js";
export type { EgressTarget } from "./egress-target.js";
