// The benchmark harness's public face: run it from code (the smoke test) or `npm run bench`.
export { evaluateGoals, formatGoals, formatTable, type Goal, type GoalStatus } from "./report.js";
export { isFailed, rowIds, runBench, type BenchOptions, type BenchResult, type RowId, type RowValues } from "./run-bench.js";
export { allModes, tunnelModes, type ModeName } from "./paths.js";
