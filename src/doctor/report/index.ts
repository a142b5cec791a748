// The report: the result contract every check returns, and its text and JSON forms.
export type { CheckName, CheckResult, CheckStatus, Fix, Flow, FlowEffect, FlowVerdict } from "./check-result.js";
export { exitCodeOf } from "./check-result.js";
export { undecidedFirst, type UndecidedRule } from "./undecided-first.js";
export { renderText } from "./render-text.js";
export type { TextOptions } from "./render-text.js";
export { renderErrorJson, renderErrorLine, renderJson, toJsonValue } from "./render-json.js";
export type { ReportError } from "./render-json.js";
