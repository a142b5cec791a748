// One benchmark run: start the stack, measure every row for every path side by side, stop
// everything (also on failure), and return the figures with the machine they were measured on.
import os from "node:os";
import { isDistCurrent } from "../bin/dist.js";
import { heapTrimPath, loadNativeHeap } from "../src/cli/native-heap.js";
import { codeVersion, describeMachine, type CodeVersion, type MachineDescription } from "./machine.js";
import {
  measureDownload, measureEcho, measureFlood, measureHttp, measureIdle, measureSlowReader, measureStalled, measureUpload, median,
  type FloodResult, type IdleResult, type Latency, type RequestRate, type SlowReaderResult, type StalledResult, type Throughput, type Timing,
} from "./measure.js";
import { allModes, grpcClientDescriptions, makePath, tunnelModes, type GrpcClientKind, type ModeName, type Path } from "./paths.js";
import { cpuMs, openFileLimit, serverMetric, startStack } from "./stack.js";

export const rowIds = ["up1", "down1", "up4", "down4", "echo", "http", "flood", "idle", "stalled", "slow"] as const;
export type RowId = (typeof rowIds)[number];

export interface RepeatedThroughput {
  readonly reps: readonly Throughput[];
  readonly totalMBps: number;
  readonly maxOverMin: number;
  readonly orderingErrors: number;
}

export interface RowValues {
  up1: RepeatedThroughput;
  down1: RepeatedThroughput;
  up4: RepeatedThroughput;
  down4: RepeatedThroughput;
  echo: Latency;
  http: RequestRate;
  flood: FloodResult;
  idle: IdleResult;
  stalled: StalledResult;
  slow: SlowReaderResult;
}

export interface Failed {
  readonly error: string;
}

export type Rows = { [R in RowId]?: Partial<Record<ModeName, RowValues[R] | Failed>> };

export interface BenchSettings {
  readonly quick: boolean;
  readonly timing: Timing;
  readonly repetitions: number;
  readonly echoMaxCount: number;
  readonly httpConcurrency: number;
  readonly idleConnections: number;
  readonly idleRequested: number;
  readonly floodDials: number;
  readonly floodConcurrency: number;
  readonly grpcClient: string;
  /** Whether server and agent used the credit extension (false: upstream-style peers, `--no-credit`). */
  readonly creditFlowControl: boolean;
  /** The pace of the slow row's reader, MB/s. */
  readonly slowReaderMBps: number;
  /** What server and agent ran: the compiled dist/ or the sources through tsx (bin/dist.js). */
  readonly entry: "dist" | "src (tsx)";
}

export interface BenchResult {
  readonly date: string;
  readonly machine: MachineDescription;
  readonly code: CodeVersion;
  readonly settings: BenchSettings;
  readonly notes: string[];
  readonly rows: Rows;
  readonly durationSeconds: number;
  /** 1-, 5- and 15-minute load averages before and after: other work on the machine skews every figure. */
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
}

export interface BenchOptions {
  readonly quick?: boolean;
  readonly rows?: readonly RowId[];
  readonly modes?: readonly ModeName[];
  readonly idleConnections?: number;
  /** Directory for the server's and agent's `--cpu-prof` files. */
  readonly profileDir?: string;
  /** How the gRPC rows reach the frontend (bench/paths.ts); "h2c" unless told. */
  readonly grpcClient?: GrpcClientKind;
  /** Start server and agent with `--credit-flow-control=false`, as against upstream peers. */
  readonly noCredit?: boolean;
  /** Server and agent without the #! line's V8 flags (bench/stack.ts). */
  readonly plainNode?: boolean;
  readonly log?: (line: string) => void;
}

export const isFailed = (v: unknown): v is Failed => typeof v === "object" && v !== null && "error" in v;

// Sockets each process holds per idle connection is one (client, server, agent, destination each
// hold their own end); keep this many descriptors spare for everything else.
const spareFds = 512;

export function settingsFor(quick: boolean, requestedIdle: number | undefined, fdLimit: number, notes: string[], grpcClient: GrpcClientKind = "h2c", creditFlowControl = true): BenchSettings {
  const idleRequested = requestedIdle ?? (quick ? 2000 : 10_000);
  const idleConnections = Math.max(0, Math.min(idleRequested, fdLimit - spareFds));
  if (idleConnections < idleRequested) {
    notes.push(`open-file limit (ulimit -n) is ${fdLimit}: idle connections scaled down from ${idleRequested} to ${idleConnections}; raise it with \`ulimit -n ${idleRequested + spareFds}\``);
  }
  return {
    quick,
    timing: quick ? { warmupMs: 250, durationMs: 1000 } : { warmupMs: 500, durationMs: 3000 },
    repetitions: quick ? 1 : 3,
    echoMaxCount: quick ? 1000 : 5000,
    httpConcurrency: 16,
    idleConnections,
    idleRequested,
    floodDials: quick ? 1000 : 2000,
    floodConcurrency: 200,
    grpcClient: grpcClientDescriptions[grpcClient],
    creditFlowControl,
    slowReaderMBps: 20,
    entry: isDistCurrent() ? "dist" : "src (tsx)",
  };
}

async function attempt<T>(fn: () => Promise<T>): Promise<T | Failed> {
  try {
    return await fn();
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

function repeated(reps: Throughput[]): RepeatedThroughput {
  return {
    reps,
    totalMBps: median(reps.map((r) => r.totalMBps)),
    maxOverMin: median(reps.map((r) => r.maxOverMin)),
    orderingErrors: reps.reduce((a, r) => a + r.orderingErrors, 0),
  };
}

export async function runBench(options: BenchOptions = {}): Promise<BenchResult> {
  const t0 = Date.now();
  const log = options.log ?? (() => undefined);
  const notes: string[] = [];
  const fdLimit = openFileLimit();
  const loadStart = os.loadavg();
  if (loadStart[0]! > os.cpus().length * 0.5) {
    notes.push(`the machine was busy when the run started (load average ${loadStart.map((l) => l.toFixed(2)).join(", ")} on ${os.cpus().length} cores): figures are lower and noisier than on an idle machine`);
  }
  const grpcClient = options.grpcClient ?? "h2c";
  const settings = settingsFor(options.quick ?? false, options.idleConnections, fdLimit, notes, grpcClient, !options.noCredit);
  if (options.noCredit) notes.push("server and agent ran with --credit-flow-control=false: flow control as against upstream peers (slow-consumer cap, then the shared stream pauses)");
  if (options.plainNode) notes.push("server and agent ran as plain `node bin/nodetunnel.js`, without the #! line's V8 flags (only those V8 takes at run time, set by the entry)");
  if (settings.entry !== "dist") notes.push("dist/ is missing or older than src/: server and agent ran from the sources through tsx (~25 MiB more RSS each); `npm run bench` builds it first");
  const heap = loadNativeHeap();
  if (!heap.available) notes.push(`the native heap helper ${heap.reason}: quiet processes keep the native memory bulk rows freed, so later rows start from a higher RSS (docs/operations.md)`);
  else if (heap.path !== heapTrimPath) notes.push(`the native heap helper was not built here (no C compiler?): server and agent use the prebuilt ${heap.path}`);
  for (const n of notes) log(`note: ${n}`);
  const wanted = new Set(options.rows ?? rowIds);
  const modes = allModes.filter((m) => !options.modes || options.modes.includes(m));
  const rows: Rows = {};
  const stack = await startStack({ profileDir: options.profileDir, noCredit: options.noCredit, plainNode: options.plainNode });
  try {
    const paths = Object.fromEntries(modes.map((m) => [m, makePath(m, stack, grpcClient)])) as Record<ModeName, Path>;
    const pids = { server: stack.children.server.pid, agent: stack.children.agent.pid };
    const children = stack.children;
    // The client is this process; its CPU is counted too, so a slow client shows up as one.
    const cpu = () => ({
      client: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
      server: cpuMs(children.server.pid), agent: cpuMs(children.agent.pid),
      relay: cpuMs(children.relay.pid), destinations: cpuMs(children.destinations.pid),
    });
    const t: Timing = { ...settings.timing, cpu };
    const slowConsumerCloses = () => serverMetric(stack.serverAdminPort, "nodetunnel_server_slow_consumer_closes_total");
    const set = <R extends RowId>(row: R, mode: ModeName, value: RowValues[R] | Failed) => {
      const r = (rows[row] ??= {}) as Partial<Record<ModeName, RowValues[R] | Failed>>;
      r[mode] = value;
      log(`  ${row} ${mode}: ${isFailed(value) ? `FAILED ${value.error}` : "done"}`);
    };

    const throughputRows: [RowId, (p: Path) => Promise<Throughput>][] = [
      ["up1", (p) => measureUpload(p, 1, t)],
      ["down1", (p) => measureDownload(p, 1, t)],
      ["up4", (p) => measureUpload(p, 4, t)],
      ["down4", (p) => measureDownload(p, 4, t)],
    ];
    for (const [row, fn] of throughputRows) {
      if (!wanted.has(row)) continue;
      log(`${row}…`);
      // Repetitions interleave the paths, so drift (thermal, other load) spreads over all of them.
      const reps = new Map<ModeName, Throughput[]>();
      const failures = new Map<ModeName, Failed>();
      for (let rep = 0; rep < settings.repetitions; rep++) {
        for (const m of modes) {
          if (failures.has(m)) continue;
          const r = await attempt(() => fn(paths[m]));
          if (isFailed(r)) failures.set(m, r);
          else reps.set(m, [...(reps.get(m) ?? []), r]);
        }
      }
      for (const m of modes) set(row as "up1", m, failures.get(m) ?? repeated(reps.get(m)!));
    }
    if (wanted.has("echo")) {
      log("echo…");
      for (const m of modes) set("echo", m, await attempt(() => measureEcho(paths[m], { durationMs: t.durationMs, maxCount: settings.echoMaxCount })));
    }
    if (wanted.has("http")) {
      log("http…");
      for (const m of modes) set("http", m, await attempt(() => measureHttp(paths[m], settings.httpConcurrency, t)));
    }
    if (wanted.has("flood")) {
      log("flood…");
      for (const m of modes) set("flood", m, await attempt(() => measureFlood(paths[m], settings.floodDials, settings.floodConcurrency)));
    }
    const tunnels = modes.filter((m) => tunnelModes.includes(m));
    if (wanted.has("idle") && settings.idleConnections > 0) {
      log(`idle (${settings.idleConnections} connections)…`);
      const quietMs = settings.quick ? 1000 : 30_000;
      for (const m of tunnels) set("idle", m, await attempt(() => measureIdle(paths[m], settings.idleConnections, pids, { concurrency: 100, quietMs })));
    }
    if (wanted.has("stalled")) {
      log("stalled reader…");
      const stallSettleMs = settings.quick ? 1000 : 3000;
      for (const m of tunnels) set("stalled", m, await attempt(() => measureStalled(paths[m], pids, t, { stallSettleMs, echoCount: 50, slowConsumerCloses })));
    }
    if (wanted.has("slow")) {
      log(`slow reader (${settings.slowReaderMBps} MB/s)…`);
      const settleMs = settings.quick ? 2000 : 4000;
      for (const m of tunnels) set("slow", m, await attempt(() => measureSlowReader(paths[m], t, { readerMBps: settings.slowReaderMBps, settleMs, slowConsumerCloses })));
    }
  } finally {
    await stack.stop();
  }
  return {
    date: new Date().toISOString(),
    machine: describeMachine(fdLimit),
    code: codeVersion(),
    settings,
    notes,
    rows,
    durationSeconds: (Date.now() - t0) / 1000,
    loadAverage: { start: loadStart, end: os.loadavg() },
  };
}
