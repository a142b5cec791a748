// doctor snat: SNAT port arithmetic, metrics and churn (doctor-cli.md `snat`).
export { checkSnat } from "./check-snat.js";
export type { SnatOptions } from "./check-snat.js";
export { computeSnat, portsThatFit, invalidPortsError } from "./snat-arithmetic.js";
export type { SnatArithmetic, SnatInput, Finding } from "./snat-arithmetic.js";
export { defaultPortsPerNode, nextBoundary } from "./default-allocation.js";
export { parseSnatMetrics } from "./parse-snat-metrics.js";
export type { SnatMetrics, BackendPorts } from "./parse-snat-metrics.js";
export { parseConnections } from "./parse-connections.js";
export type { Connection, ParsedConnections } from "./parse-connections.js";
export { summarizeChurn, churnThreshold } from "./summarize-churn.js";
export { noSnatRanges, takesSnatPort } from "./snat-destination.js";
export type { DestinationChurn } from "./summarize-churn.js";
