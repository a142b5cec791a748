// doctor iptables: the public face (doctor-cli.md `doctor iptables`, troubleshooting.md §4).
export { checkIptables, clientErrorOf } from "./check-iptables.js";
export type { CheckIptablesOptions } from "./check-iptables.js";
export { parseIptables, parseIptablesDumps } from "./parse-iptables.js";
export { parseIptablesSave, parseIptablesSaveDumps } from "./parse-iptables-save.js";
export { parseIptablesList } from "./parse-iptables-list.js";
export { evaluateIptables, walkChain } from "./evaluate-iptables.js";
export type { Decider, Effect, Outcome, PathStep } from "./evaluate-iptables.js";
export { planIptablesFix } from "./fix-iptables.js";
export { findOutputBlock } from "./check-output.js";
export type { OutputBlock, OutputFlow } from "./check-output.js";
export type { Packet } from "./match-condition.js";
export type { Chain, Condition, Rule, Ruleset, Table, Target } from "./model.js";
