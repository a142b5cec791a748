// doctor nsg: Azure network security groups on one flow (doctor-cli.md `nsg`).
export { checkNsg, describeRule } from "./check-nsg.js";
export type { NsgInputs, NsgOptions } from "./check-nsg.js";
export { parseNsg } from "./parse-nsg.js";
export { evaluateNsg } from "./evaluate-nsg.js";
export type { NsgDecision, UndecidedRule } from "./evaluate-nsg.js";
export { evaluateNsgPath } from "./evaluate-nsg-path.js";
export type { NsgsOnPath, PathStep, PathVerdict } from "./evaluate-nsg-path.js";
export { matchRule } from "./match-rule.js";
export type { AddressContext, Match } from "./match-rule.js";
export { fixNsg, freePriorityBelow } from "./fix-nsg.js";
export { defaultRules } from "./default-rules.js";
export type { Nsg, NsgAttachment, NsgFlow, NsgRule, NsgSource } from "./nsg-model.js";
