// doctor explain: error text → mechanism and causes (doctor-cli.md `explain`).
export { explainError, whatToCollect } from "./explain-error.js";
export { extractContext } from "./extract-context.js";
export type { ErrorContext, Leg } from "./extract-context.js";
export { errorPatterns, dialCauses } from "./error-patterns.js";
export type { ErrorPattern } from "./error-patterns.js";
export { explainMechanisms, reportedMechanism } from "./mechanism.js";
export type { ExplainMechanism, MechanismDetail } from "./mechanism.js";
export { causesFor, knownCauseIds } from "./causes.js";
export type { Cause } from "./causes.js";
