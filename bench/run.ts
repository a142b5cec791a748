// `npm run bench [-- --quick] [--rows=up1,echo] [--modes=direct,grpc] [--idle=N] [--profile=DIR] [--grpc-client=h2c|node-http2] [--no-credit] [--plain-node] [--no-write]`:
// runs the benchmark once, prints the table and the goals, and writes
// bench/results/<date>-<machine>.json (docs/benchmarks.md explains the method).
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { shortMachineName } from "./machine.js";
import { allModes, grpcClientKinds, type GrpcClientKind, type ModeName } from "./paths.js";
import { evaluateGoals, formatGoals, formatTable } from "./report.js";
import { rowIds, runBench, type RowId } from "./run-bench.js";

function parseArgs(argv: readonly string[]) {
  const out: { quick: boolean; write: boolean; noCredit: boolean; plainNode: boolean; rows?: RowId[]; modes?: ModeName[]; idle?: number; profileDir?: string; grpcClient?: GrpcClientKind } = { quick: false, write: true, noCredit: false, plainNode: false };
  for (const arg of argv) {
    const [name, value] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, ""];
    const list = () => value.split(",").map((s) => s.trim()).filter(Boolean);
    if (name === "--quick") out.quick = true;
    else if (name === "--no-write") out.write = false;
    else if (name === "--no-credit") out.noCredit = true;
    else if (name === "--plain-node") out.plainNode = true;
    else if (name === "--rows") {
      out.rows = list() as RowId[];
      for (const r of out.rows) if (!rowIds.includes(r)) throw new Error(`--rows: unknown row "${r}" (known: ${rowIds.join(", ")})`);
    } else if (name === "--modes") {
      out.modes = list() as ModeName[];
      for (const m of out.modes) if (!allModes.includes(m)) throw new Error(`--modes: unknown mode "${m}" (known: ${allModes.join(", ")})`);
    } else if (name === "--idle") out.idle = Number(value);
    else if (name === "--profile") out.profileDir = resolve(value || "bench/profiles");
    else if (name === "--grpc-client") {
      if (!grpcClientKinds.includes(value as GrpcClientKind)) throw new Error(`--grpc-client: unknown client "${value}" (known: ${grpcClientKinds.join(", ")})`);
      out.grpcClient = value as GrpcClientKind;
    }
    else throw new Error(`unknown argument "${arg}"`);
  }
  return out;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`nodetunnel benchmark (${args.quick ? "quick" : "full"}) on loopback`);
  const result = await runBench({ quick: args.quick, rows: args.rows, modes: args.modes, idleConnections: args.idle, profileDir: args.profileDir, grpcClient: args.grpcClient, noCredit: args.noCredit, plainNode: args.plainNode, log });
  const goals = evaluateGoals(result);
  const m = result.machine;
  console.log(`\n${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, node ${m.node}; commit ${result.code.commit.slice(0, 12)}${result.code.dirty ? " (+ uncommitted changes in src/)" : ""}`);
  console.log(`load average: ${result.loadAverage.start.map((l) => l.toFixed(2)).join(" ")} at the start, ${result.loadAverage.end.map((l) => l.toFixed(2)).join(" ")} at the end`);
  for (const n of result.notes) console.log(`note: ${n}`);
  console.log(`\n${formatTable(result)}\n\ngoals (issue 3):\n${formatGoals(goals)}\n`);
  if (args.write) {
    const dir = resolve(import.meta.dirname, "results");
    mkdirSync(dir, { recursive: true });
    const stamp = result.date.replace(/:\d\d\.\d+Z$/, "").replace(/:/g, "");
    const file = join(dir, `${stamp}-${shortMachineName(m)}${args.quick ? "-quick" : ""}${args.noCredit ? "-no-credit" : ""}${args.plainNode ? "-plain-node" : ""}.json`);
    writeFileSync(file, `${JSON.stringify({ ...result, goals }, null, 2)}\n`);
    console.log(`written: ${file}`);
  }
  if (args.profileDir) console.log(`profiles: ${args.profileDir} (summarize with: npx tsx bench/profile-summary.ts ${args.profileDir})`);
  return 0;
}

main().then((code) => {
  process.exitCode = code;
}, (err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
});
