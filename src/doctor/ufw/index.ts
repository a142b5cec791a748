// Public face of the ufw check: `checkUfw` for the CLI, the parser and evaluator for reuse
// (the node check reads `ufw status verbose` on a live node).
export { checkUfw } from "./check-ufw.js";
export type { CheckUfwOptions } from "./check-ufw.js";
export { parseUfwStatus } from "./parse-ufw-status.js";
export type { UfwAction, UfwDefaults, UfwDirection, UfwEndpoint, UfwFormat, UfwPolicy, UfwRule, UfwStatus } from "./parse-ufw-status.js";
export { evaluateUfw } from "./evaluate-ufw.js";
export type { UfwDecider, UfwEvaluation, UfwFlow } from "./evaluate-ufw.js";
export { numberUfwRules } from "./number-ufw-rules.js";
export { fixUfw, ufwRuleCommand } from "./fix-ufw.js";
