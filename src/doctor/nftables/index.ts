// Public face of the nftables check: `checkNftables` for the CLI; parser, evaluator and the
// legacy-rules warning for reuse by the node check.
export { checkNftables, checkNftablesBesideIptables, hasOwnNftRules, legacyRulesWarning } from "./check-nftables.js";
export type { CheckNftablesOptions } from "./check-nftables.js";
export { parseNftRuleset, parsePriority } from "./parse-nft-ruleset.js";
export { evaluateNftables } from "./evaluate-nftables.js";
export type { NftEffect, NftEvaluateOptions, NftEvaluation, NftFlow, NftPlace, NftUncertainty } from "./evaluate-nftables.js";
export type * from "./nft-model.js";
export { findNftOutputBlock } from "./check-output.js";
export type { NftOutputBlock, NftOutputFlow } from "./check-output.js";
