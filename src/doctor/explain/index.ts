// doctor explain: error text → mechanism and causes (doctor-cli.md `explain`).
export { explainError, whatToCollect } from "./explain-error.js";
export { extractContext } from "./extract-context.js";
export type { ErrorContext, Leg } from "./extract-context.js";
export { errorPatterns, dialCauses } from "./error-patterns.js";
export type { ErrorPattern, ExplainMechanism } from "./error-patterns.js";
export { causesFor, knownCauseIds } from "./causes.js";
export type { Cause } from "./causes.js";
