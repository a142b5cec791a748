// The printed table (every row, every path, with its ratio to direct TCP) and the issue's goals
// (issue 3, "Goals on this machine"), each marked met, not met, or not measured.
import type { ModeName } from "./paths.js";
import { allModes } from "./paths.js";
import { isFailed, type BenchResult, type Failed, type RowId, type RowValues } from "./run-bench.js";

export type GoalStatus = "met" | "not met" | "not measured";

export interface Goal {
  readonly goal: string;
  readonly status: GoalStatus;
  readonly measured: string;
}

type Value<R extends RowId> = RowValues[R] | Failed | undefined;

function get<R extends RowId>(result: BenchResult, row: R, mode: ModeName): RowValues[R] | undefined {
  const v = (result.rows[row] as Partial<Record<ModeName, Value<R>>> | undefined)?.[mode];
  return v === undefined || isFailed(v) ? undefined : (v as RowValues[R]);
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : "–");
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "–");
const signed = (n: number) => (Number.isFinite(n) ? `${n >= 0 ? "+" : "−"}${Math.abs(n).toFixed(0)}` : "–");

function goal(name: string, measured: string | undefined, ok: boolean | undefined): Goal {
  return { goal: name, status: ok === undefined || measured === undefined ? "not measured" : ok ? "met" : "not met", measured: measured ?? "–" };
}

/** The criteria, with the exact thresholds docs/benchmarks.md states. */
export function evaluateGoals(r: BenchResult): Goal[] {
  const goals: Goal[] = [];
  for (const [mode, floor] of [["http-connect", 1000], ["grpc", 800]] as const) {
    for (const row of ["up1", "down1"] as const) {
      const v = get(r, row, mode);
      const dir = row === "up1" ? "frontend→destination" : "destination→frontend";
      goals.push(goal(`${mode}: one connection ${dir} ≥ ${floor} MB/s`, v && `${f0(v.totalMBps)} MB/s`, v && v.totalMBps >= floor));
    }
  }
  for (const mode of ["http-connect", "grpc"] as const) {
    for (const row of ["up4", "down4"] as const) {
      const v = get(r, row, mode);
      goals.push(goal(`${mode}: four connections ${row === "up4" ? "up" : "down"} fair, max/min ≤ 1.25`, v && `max/min ${f2(v.maxOverMin)}`, v && v.maxOverMin <= 1.25));
    }
  }
  for (const mode of ["http-connect", "grpc"] as const) {
    const s = get(r, "stalled", mode);
    const echo = get(r, "echo", mode);
    goals.push(goal(`${mode}: with one stalled reader, bulk keeps ≥ 80 %`, s && `${f0(s.keptFraction * 100)} % (${f0(s.withStallMBps)} of ${f0(s.normalMBps)} MB/s)`, s && s.keptFraction >= 0.8));
    // "Open normally": every dial succeeds and the median is within 3× the unstalled echo median (at least 2 ms).
    const limit = echo ? Math.max(2, 3 * echo.p50Ms) : 2;
    goals.push(goal(`${mode}: with one stalled reader, new connections open normally`,
      s && `${s.newConnections.count} ok, ${s.newConnections.errors} failed, p50 ${f2(s.newConnections.p50Ms)} ms (limit ${f2(limit)})`,
      s && s.newConnections.errors === 0 && s.newConnections.count > 0 && s.newConnections.p50Ms <= limit));
    // "Bounded by the caps": neither process grows by more than 64 MiB while the reader is stalled.
    goals.push(goal(`${mode}: with one stalled reader, server and agent RSS each grow ≤ 64 MiB`,
      s && `server ${signed(s.end.serverMiB - s.before.serverMiB)}, agent ${signed(s.end.agentMiB - s.before.agentMiB)} MiB`,
      s && s.end.serverMiB - s.before.serverMiB <= 64 && s.end.agentMiB - s.before.agentMiB <= 64));
  }
  for (const [mode, ceiling] of [["http-connect", 0.5], ["grpc", 0.8]] as const) {
    const v = get(r, "echo", mode);
    goals.push(goal(`${mode}: fresh connection + echo p50 ≤ ${ceiling} ms`, v && `${f2(v.p50Ms)} ms`, v && v.errors === 0 && v.p50Ms <= ceiling));
  }
  for (const mode of ["http-connect", "grpc"] as const) {
    const v = get(r, "http", mode);
    goals.push(goal(`${mode}: HTTP GET, new tunnel each, 16 at once ≥ 5000 req/s`, v && `${f0(v.requestsPerSecond)} req/s`, v && v.requestsPerSecond >= 5000));
  }
  for (const mode of ["http-connect", "grpc"] as const) {
    const v = get(r, "idle", mode);
    const full = v !== undefined && v.opened >= 10_000;
    const holding = v && v.holding.serverMiB + v.holding.agentMiB;
    goals.push(goal(`${mode}: 10,000 idle connections, server + agent RSS < 250 MiB`,
      v && `${v.opened} open: ${f0(holding!)} MiB${full ? "" : " (fewer than 10,000 connections: not comparable)"}`,
      v && (full ? holding! < 250 : undefined)));
    // "Near the baseline": after closing, back within 20 MiB or a quarter of the growth, whichever is larger.
    const before = v && v.before.serverMiB + v.before.agentMiB;
    const after = v && v.afterClose.serverMiB + v.afterClose.agentMiB;
    const allowed = v && Math.max(20, 0.25 * (holding! - before!));
    goals.push(goal(`${mode}: after closing them, RSS returns near the baseline`,
      v && `before ${f0(before!)}, after ${f0(after!)} MiB (allowed +${f0(allowed!)})`, v && after! - before! <= allowed!));
  }
  const ordering = (["down1", "down4"] as const).flatMap((row) => allModes.map((m) => get(r, row, m)?.orderingErrors ?? 0));
  const anyDownload = (["down1", "down4"] as const).some((row) => r.rows[row] !== undefined);
  goals.push(goal("a speak-first destination's bytes never arrive before the 200 / DIAL_RSP", anyDownload ? `${ordering.reduce((a, b) => a + b, 0)} out of order` : undefined,
    anyDownload ? ordering.every((n) => n === 0) : undefined));
  return goals;
}

interface Cell {
  readonly text: string;
  /** The figure compared with direct TCP, and whether bigger is better. */
  readonly key?: number;
}

function cell<R extends RowId>(r: BenchResult, row: R, mode: ModeName): Cell {
  const raw = (r.rows[row] as Partial<Record<ModeName, Value<R>>> | undefined)?.[mode];
  if (raw === undefined) return { text: "" };
  if (isFailed(raw)) return { text: `failed: ${raw.error.slice(0, 40)}` };
  const v = raw as RowValues[RowId];
  switch (row) {
    case "up1":
    case "down1": {
      const t = v as RowValues["up1"];
      return { text: `${f0(t.totalMBps)} MB/s`, key: t.totalMBps };
    }
    case "up4":
    case "down4": {
      const t = v as RowValues["up4"];
      return { text: `${f0(t.totalMBps)} MB/s, max/min ${f2(t.maxOverMin)}`, key: t.totalMBps };
    }
    case "echo": {
      const l = v as RowValues["echo"];
      return { text: `${f2(l.p50Ms)} / ${f2(l.p99Ms)} ms${l.errors ? ` (${l.errors} err)` : ""}`, key: l.p50Ms };
    }
    case "http": {
      const h = v as RowValues["http"];
      return { text: `${f0(h.requestsPerSecond)} req/s${h.errors ? ` (${h.errors} err)` : ""}`, key: h.requestsPerSecond };
    }
    case "flood": {
      const fl = v as RowValues["flood"];
      return { text: `${fl.count}/${fl.total} ok, ${f2(fl.p50Ms)} / ${f2(fl.p99Ms)} ms`, key: fl.p50Ms };
    }
    case "idle": {
      const i = v as RowValues["idle"];
      return { text: `${i.opened} open: ${f0(i.before.serverMiB)}→${f0(i.holding.serverMiB)}→${f0(i.afterClose.serverMiB)} / ${f0(i.before.agentMiB)}→${f0(i.holding.agentMiB)}→${f0(i.afterClose.agentMiB)} MiB` };
    }
    case "stalled": {
      const s = v as RowValues["stalled"];
      const n = s.newConnections;
      return { text: `bulk ${f0(s.keptFraction * 100)} %, new ${n.count}/${n.count + n.errors} ok, RSS ${signed(s.end.serverMiB - s.before.serverMiB)}/${signed(s.end.agentMiB - s.before.agentMiB)} MiB${s.stalledClosed ? ", stalled one closed" : ""}` };
    }
    case "slow": {
      const s = v as RowValues["slow"];
      return { text: `bulk ${f0(s.keptFraction * 100)} % (${f0(s.withSlowMBps)} MB/s), reader ${f0(s.readerMBps)} MB/s${s.readerClosed ? ", closed" : ""}` };
    }
  }
  return { text: "" };
}

export const rowTitles: Record<RowId, string> = {
  up1: "one connection, frontend→destination",
  down1: "one connection, destination→frontend",
  up4: "four connections up, total (fairness)",
  down4: "four connections down, total (fairness)",
  echo: "fresh connection + 1-byte echo, p50 / p99",
  http: "HTTP GET, new tunnel per request, 16 at once",
  flood: "dial flood: set-up p50 / p99",
  idle: "idle connections: RSS server / agent (before→holding→closed)",
  stalled: "one stalled reader + one bulk connection",
  slow: "one slow reader (20 MB/s) + one bulk connection",
};

/** Bigger is better for throughput and request rate; for latencies the ratio is "times slower". */
const higherIsBetter: Partial<Record<RowId, boolean>> = { up1: true, down1: true, up4: true, down4: true, http: true, echo: false, flood: false };

export function formatTable(r: BenchResult): string {
  const modes = allModes.filter((m) => Object.values(r.rows).some((row) => row && m in row));
  const lines: string[] = [];
  const header = ["test", ...modes];
  const body: string[][] = [];
  for (const row of Object.keys(rowTitles) as RowId[]) {
    if (!r.rows[row]) continue;
    const direct = cell(r, row, "direct").key;
    body.push([rowTitles[row], ...modes.map((m) => {
      const c = cell(r, row, m);
      const better = higherIsBetter[row];
      if (c.key === undefined || direct === undefined || better === undefined || m === "direct" || direct === 0) return c.text;
      const ratio = c.key / direct;
      return `${c.text} (${better ? ratio.toFixed(2) : ratio.toFixed(1)}×)`;
    })]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const fmt = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i]!)).join(" | ");
  lines.push(fmt(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...body.map(fmt));
  lines.push("", "ratios: throughput and req/s as a fraction of direct TCP; latencies as times direct TCP's");
  lines.push("", "CPU cost, per process (client / relay / server / agent / destinations): ms per MB moved, ms per HTTP request");
  const cost = (c: Record<string, number> | undefined, digits: number) =>
    c ? ["client", "relay", "server", "agent", "destinations"].map((k) => (c[k] ?? Number.NaN).toFixed(digits)).join(" / ") : "–";
  for (const row of ["up1", "down1", "http"] as const) {
    if (!r.rows[row]) continue;
    const parts = modes.map((m) => {
      const v = get(r, row, m);
      if (!v) return `${m}: –`;
      return row === "http" ? `${m}: ${cost((v as RowValues["http"]).cpuMsPerRequest, 3)}` : `${m}: ${cost((v as RowValues["up1"]).reps[0]?.cpuMsPerMB, 2)}`;
    });
    lines.push(`  ${row}: ${parts.join("  |  ")}`);
  }
  return lines.join("\n");
}

export function formatGoals(goals: readonly Goal[]): string {
  const mark: Record<GoalStatus, string> = { met: "[met]    ", "not met": "[NOT MET]", "not measured": "[  –  ]  " };
  return goals.map((g) => `${mark[g.status]} ${g.goal}: ${g.measured}`).join("\n");
}
