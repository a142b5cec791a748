// The measurements, each over one Path. Every loop is bounded by a count and a deadline, and
// every connection a measurement opens is destroyed before it returns, also on failure.
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { SINK_REPORT_BYTES, SINK_REPORT_MS, SOURCE_GREETING, type DestinationName } from "./destination-protocol.js";
import type { Path } from "./paths.js";
import { rssMiB } from "./stack.js";

export interface Timing {
  /** Time to let a transfer reach its steady state before counting. */
  readonly warmupMs: number;
  readonly durationMs: number;
  /** CPU time used so far by each process of interest, in ms (read at the start and end of the window). */
  readonly cpu?: () => Record<string, number>;
}

/** CPU ms each process spent per unit of work in the window: independent of how busy the machine is. */
function cpuPer(t: Timing, before: Record<string, number> | undefined, units: number): Record<string, number> | undefined {
  if (!t.cpu || !before || !(units > 0)) return undefined;
  const after = t.cpu();
  return Object.fromEntries(Object.keys(after).map((k) => [k, (after[k]! - before[k]!) / units]));
}

const MB = 1e6; // MB/s are 10^6 bytes per second, as upstream's table
const ioTimeoutMs = 10_000;
const chunk = Buffer.alloc(64 * 1024, 0x62);
const nowNs = () => process.hrtime.bigint();

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export const median = (values: readonly number[]): number => percentile([...values].sort((a, b) => a - b), 50);

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function openAll(path: Path, dest: DestinationName, n: number): Promise<Duplex[]> {
  const conns: Duplex[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const c = await path.connect(dest);
      c.on("error", () => undefined);
      conns.push(c);
    }
  } catch (err) {
    for (const c of conns) c.destroy();
    throw err;
  }
  return conns;
}

export interface Throughput {
  /** Per connection, MB/s. */
  readonly ratesMBps: readonly number[];
  readonly totalMBps: number;
  /** Fastest connection's rate over the slowest's. */
  readonly maxOverMin: number;
  /** Connections whose first bytes were not the speak-first greeting (download only). */
  readonly orderingErrors: number;
  /** CPU ms per MB moved, per process (client, server, agent, relay, destinations). */
  readonly cpuMsPerMB?: Record<string, number>;
}

function summarize(rates: number[], t: Timing, cpuBefore: Record<string, number> | undefined, orderingErrors = 0): Throughput {
  const total = rates.reduce((a, b) => a + b, 0);
  const cpuMsPerMB = cpuPer(t, cpuBefore, total * (t.durationMs / 1000));
  return { ratesMBps: rates, totalMBps: total, maxOverMin: Math.max(...rates) / Math.min(...rates), orderingErrors, cpuMsPerMB };
}

/** Client → destination: `n` connections write as fast as they can; the sink's own reports give the rate. */
export async function measureUpload(path: Path, n: number, t: Timing): Promise<Throughput> {
  const conns = await openAll(path, "sink", n);
  let stopped = false;
  const reports: { bytes: number; tNs: bigint }[][] = conns.map(() => []);
  try {
    conns.forEach((c, i) => {
      let pending: Buffer = Buffer.alloc(0);
      c.on("data", (d: Buffer) => {
        pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
        while (pending.length >= SINK_REPORT_BYTES) {
          reports[i]!.push({ bytes: Number(pending.readBigUInt64BE(0)), tNs: pending.readBigUInt64BE(8) });
          pending = pending.subarray(SINK_REPORT_BYTES);
        }
      });
      c.resume();
      const pump = () => {
        while (!stopped && !c.destroyed && c.write(chunk));
        if (!stopped && !c.destroyed) c.once("drain", pump);
      };
      pump();
    });
    await sleep(t.warmupMs);
    const start = nowNs();
    const cpuBefore = t.cpu?.();
    await sleep(t.durationMs);
    const end = nowNs();
    const cpuAfter = t.cpu?.();
    stopped = true;
    await sleep(SINK_REPORT_MS * 3); // the last reports of the window are still on their way back
    return summarize(reports.map((list, i) => {
      const inWindow = list.filter((r) => r.tNs >= start && r.tNs <= end);
      if (inWindow.length < 2) throw new Error(`upload connection ${i}: fewer than two sink reports in the window (stalled?)`);
      const a = inWindow[0]!;
      const b = inWindow[inWindow.length - 1]!;
      return (b.bytes - a.bytes) / MB / (Number(b.tNs - a.tNs) / 1e9);
    }), { ...t, cpu: cpuAfter && (() => cpuAfter) }, cpuBefore);
  } finally {
    stopped = true;
    for (const c of conns) c.destroy();
  }
}

/**
 * Destination → client: the speak-first source streams; the client counts what it reads, from
 * one reused read buffer (Path.connectSink), as a Go client would.
 */
export async function measureDownload(path: Path, n: number, t: Timing): Promise<Throughput> {
  const counts: number[] = [];
  const conns: Duplex[] = [];
  let orderingErrors = 0;
  try {
    for (let i = 0; i < n; i++) {
      counts.push(0);
      let greeting: Buffer = Buffer.alloc(0);
      const c = await path.connectSink("source", (d) => {
        if (greeting.length < SOURCE_GREETING.length) {
          const need = SOURCE_GREETING.length - greeting.length;
          greeting = Buffer.concat([greeting, d.subarray(0, need)]);
          if (greeting.length === SOURCE_GREETING.length && !greeting.equals(SOURCE_GREETING)) orderingErrors++;
          d = d.subarray(need);
        }
        counts[i]! += d.length;
      });
      c.on("error", () => undefined);
      conns.push(c);
    }
    await sleep(t.warmupMs);
    const before = [...counts];
    const start = performance.now();
    const cpuBefore = t.cpu?.();
    await sleep(t.durationMs);
    const seconds = (performance.now() - start) / 1000;
    return summarize(counts.map((c, i) => (c - before[i]!) / MB / seconds), t, cpuBefore, orderingErrors);
  } finally {
    for (const c of conns) c.destroy();
  }
}

function readAtLeast(c: Duplex, bytes: number, timeoutMs = ioTimeoutMs): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`no ${bytes} bytes within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (buf.length >= bytes) done(null);
    };
    const onEnd = () => done(new Error(`closed after ${buf.length} of ${bytes} bytes`));
    const done = (err: Error | null) => {
      clearTimeout(timer);
      c.off("data", onData).off("end", onEnd).off("close", onEnd);
      c.pause();
      if (err) reject(err);
      else resolve(buf);
    };
    c.on("data", onData).once("end", onEnd).once("close", onEnd);
    c.resume();
  });
}

export interface Latency {
  readonly count: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly firstError?: string;
}

function latencySummary(samples: number[], errors: number, firstError?: string): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  return { count: samples.length, errors, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), firstError };
}

/** One fresh connection to the echo destination, one byte there and back; the time of all of it. */
async function connectAndEcho(path: Path): Promise<number> {
  const t0 = performance.now();
  const c = await path.connect("echo");
  try {
    c.on("error", () => undefined);
    c.write(Buffer.of(0x2a));
    await readAtLeast(c, 1);
    return performance.now() - t0;
  } finally {
    c.destroy();
  }
}

/** Sequential fresh connection + 1-byte echo, for `durationMs` or `maxCount` samples; the first few warm up. */
export async function measureEcho(path: Path, o: { durationMs: number; maxCount: number; warmupCount?: number }): Promise<Latency> {
  const warmup = o.warmupCount ?? 10;
  const samples: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const deadline = performance.now() + o.durationMs;
  for (let i = 0; i < o.maxCount + warmup && (i < warmup || performance.now() < deadline) && errors < 20; i++) {
    try {
      const ms = await connectAndEcho(path);
      if (i >= warmup) samples.push(ms);
    } catch (err) {
      errors++;
      firstError ??= errorText(err);
    }
  }
  return latencySummary(samples, errors, firstError);
}

async function httpGet(path: Path): Promise<void> {
  const c = await path.connect("http");
  try {
    c.on("error", () => undefined);
    c.write("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    let buf: Buffer = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error("HTTP response timeout")), ioTimeoutMs);
      const onData = (d: Buffer) => {
        buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.toString("latin1", 0, end);
        if (!head.startsWith("HTTP/1.1 200")) return done(new Error(`HTTP status: ${head.split("\r\n")[0]}`));
        const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? Number.NaN);
        if (buf.length >= end + 4 + length) done(null);
      };
      const onEnd = () => done(new Error("closed before the whole response"));
      const done = (err: Error | null) => {
        clearTimeout(timer);
        c.off("data", onData).off("end", onEnd).off("close", onEnd);
        if (err) reject(err);
        else resolve();
      };
      c.on("data", onData).once("end", onEnd).once("close", onEnd);
      c.resume();
    });
  } finally {
    c.destroy();
  }
}

export interface RequestRate {
  readonly requestsPerSecond: number;
  readonly completed: number;
  readonly errors: number;
  readonly firstError?: string;
  /** CPU ms per request, per process. */
  readonly cpuMsPerRequest?: Record<string, number>;
}

/** HTTP GETs, each on a new connection (a new tunnel), `concurrency` at once; completions in the window count. */
export async function measureHttp(path: Path, concurrency: number, t: Timing): Promise<RequestRate> {
  const t0 = performance.now();
  const start = t0 + t.warmupMs;
  const end = start + t.durationMs;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let cpuBefore: Record<string, number> | undefined;
  const cpuTimer = setTimeout(() => {
    cpuBefore = t.cpu?.();
  }, t.warmupMs);
  const worker = async () => {
    while (performance.now() < end && errors < 1000) {
      try {
        await httpGet(path);
        const now = performance.now();
        if (now >= start && now <= end) completed++;
      } catch (err) {
        errors++;
        firstError ??= errorText(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  clearTimeout(cpuTimer);
  return { requestsPerSecond: completed / (t.durationMs / 1000), completed, errors, firstError, cpuMsPerRequest: cpuPer(t, cpuBefore, completed) };
}

export interface ProcessRss {
  readonly serverMiB: number;
  readonly agentMiB: number;
}

export interface Pids {
  readonly server: number;
  readonly agent: number;
}

const rssOf = (pids: Pids): ProcessRss => ({ serverMiB: rssMiB(pids.server), agentMiB: rssMiB(pids.agent) });

/** Runs `fn` for each index below `total`, `concurrency` at a time. */
async function pool(total: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}

export interface IdleResult {
  readonly requested: number;
  readonly opened: number;
  readonly failed: number;
  readonly openSeconds: number;
  readonly firstError?: string;
  readonly before: ProcessRss;
  readonly holding: ProcessRss;
  readonly afterClose: ProcessRss;
}

/**
 * Opens `n` tunnelled connections (each proven with a 1-byte echo), holds them, closes them; RSS
 * at each step, each read after `quietMs` without traffic. V8 gives garbage back only when its
 * memory reducer runs, ~8 s after the last full GC once allocation has stopped, so a reading taken
 * a few seconds after a busy phase still counts that phase's garbage; a steady state needs ~30 s.
 */
export async function measureIdle(path: Path, n: number, pids: Pids, o: { concurrency: number; quietMs: number }): Promise<IdleResult> {
  await sleep(o.quietMs);
  const before = rssOf(pids);
  const conns: Duplex[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  try {
    await pool(n, o.concurrency, async () => {
      if (failed > 100) return; // stop early when the path has collapsed
      try {
        const c = await path.connect("echo");
        conns.push(c);
        c.on("error", () => undefined);
        c.write(Buffer.of(0x2a));
        await readAtLeast(c, 1);
      } catch (err) {
        failed++;
        firstError ??= errorText(err);
      }
    });
    const openSeconds = (performance.now() - t0) / 1000;
    await sleep(o.quietMs);
    const holding = rssOf(pids);
    for (const c of conns.splice(0)) c.destroy();
    await sleep(o.quietMs);
    const afterClose = rssOf(pids);
    return { requested: n, opened: n - failed, failed, openSeconds, firstError, before, holding, afterClose };
  } finally {
    for (const c of conns) c.destroy();
  }
}

/**
 * The bulk download's rate alone, measured before and after the disturbance (the stalled or slow
 * reader): a machine that speeds up or slows down during the row moves both, so their mean is what
 * the disturbed rate is held against, as the throughput rows interleave their paths.
 */
export interface NormalRate {
  /** The mean of the two. */
  readonly normalMBps: number;
  readonly normalBeforeMBps: number;
  readonly normalAfterMBps: number;
}

/** Lets the closed reader's queues drain before the second measurement alone. */
const afterDisturbanceMs = 500;

async function normalAround<T>(path: Path, t: Timing, disturbed: () => Promise<T>): Promise<{ normal: NormalRate; value: T }> {
  const before = await measureDownload(path, 1, t);
  const value = await disturbed();
  await sleep(afterDisturbanceMs);
  const after = await measureDownload(path, 1, t);
  return { value, normal: { normalMBps: (before.totalMBps + after.totalMBps) / 2, normalBeforeMBps: before.totalMBps, normalAfterMBps: after.totalMBps } };
}

export interface StalledResult extends NormalRate {
  readonly withStallMBps: number;
  /** withStall / normal. */
  readonly keptFraction: number;
  /** Fresh connection + echo while the reader is stalled. */
  readonly newConnections: Latency;
  /** Whether the server closed a slow consumer during the test (the stalled reader never reads, so it cannot see its close). */
  readonly stalledClosed: boolean;
  readonly before: ProcessRss;
  readonly stalledSettled: ProcessRss;
  readonly end: ProcessRss;
}

/**
 * One connection whose reader stops (a `kubectl logs -f` into a stuck pager) and one bulk
 * download beside it: the bulk rate against its rate alone, new connections during the stall,
 * and whether memory stays bounded.
 */
export async function measureStalled(path: Path, pids: Pids, t: Timing, o: { stallSettleMs: number; echoCount: number; slowConsumerCloses: () => Promise<number> }): Promise<StalledResult> {
  const { normal, value: stall } = await normalAround(path, t, async () => {
    const before = rssOf(pids);
    const closesBefore = await o.slowConsumerCloses();
    const stalled = await path.connect("source"); // left paused: nobody reads it
    stalled.on("error", () => undefined);
    try {
      await sleep(o.stallSettleMs); // let every queue on its way fill up
      const stalledSettled = rssOf(pids);
      const withStall = await measureDownload(path, 1, t);
      const newConnections = await measureEcho(path, { durationMs: t.durationMs, maxCount: o.echoCount, warmupCount: 0 });
      const end = rssOf(pids);
      const stalledClosed = (await o.slowConsumerCloses()) > closesBefore;
      return { withStallMBps: withStall.totalMBps, newConnections, stalledClosed, before, stalledSettled, end };
    } finally {
      stalled.destroy();
    }
  });
  return { ...normal, ...stall, keptFraction: stall.withStallMBps / normal.normalMBps };
}

export interface SlowReaderResult extends NormalRate {
  readonly withSlowMBps: number;
  /** withSlow / normal. */
  readonly keptFraction: number;
  /** The pace the slow reader aims at, and what it read in the bulk connection's window. */
  readonly readerTargetMBps: number;
  readonly readerMBps: number;
  /** Whether the tunnel closed the slow reader's connection (as a slow consumer) during the test. */
  readonly readerClosed: boolean;
}

/**
 * One download read at a steady `readerMBps`, slower than the tunnel (`kubectl cp` to a laptop),
 * and one bulk download beside it. With credit only the slow connection's own sender slows down;
 * without it (upstream peers) the only brake is the shared stream, and the bulk download shares
 * the slow reader's pace, as it would upstream, while the slow reader still gets every byte.
 */
export async function measureSlowReader(path: Path, t: Timing, o: { readerMBps: number; settleMs: number; slowConsumerCloses: () => Promise<number> }): Promise<SlowReaderResult> {
  const { normal, value: slowRun } = await normalAround(path, t, async () => {
    const closesBefore = await o.slowConsumerCloses();
    const slow = await path.connect("source");
    let got = 0;
    let readerClosed = false;
    let resumeTimer: NodeJS.Timeout | undefined;
    const started = performance.now();
    slow.on("error", () => undefined).once("close", () => {
      readerClosed = true;
    });
    slow.on("data", (d: Buffer) => {
      got += d.length;
      const aheadMs = (got / (o.readerMBps * MB)) * 1000 - (performance.now() - started);
      if (aheadMs > 5) {
        slow.pause();
        resumeTimer = setTimeout(() => slow.resume(), aheadMs);
      }
    });
    slow.resume();
    try {
      await sleep(o.settleMs); // past the caps: the slow reader is now the one setting its pace
      const gotBefore = got;
      const windowStart = performance.now();
      const withSlow = await measureDownload(path, 1, t);
      const readerMBps = (got - gotBefore) / MB / ((performance.now() - windowStart) / 1000);
      return {
        withSlowMBps: withSlow.totalMBps,
        readerTargetMBps: o.readerMBps,
        readerMBps,
        readerClosed: readerClosed || (await o.slowConsumerCloses()) > closesBefore,
      };
    } finally {
      clearTimeout(resumeTimer);
      slow.destroy();
    }
  });
  return { ...normal, ...slowRun, keptFraction: slowRun.withSlowMBps / normal.normalMBps };
}

export interface FloodResult extends Latency {
  readonly total: number;
  readonly concurrency: number;
  readonly seconds: number;
}

/** `total` dials, `concurrency` at once: each connection set up (200 / DIAL_RSP / TCP connect), then closed. */
export async function measureFlood(path: Path, total: number, concurrency: number): Promise<FloodResult> {
  const samples: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  await pool(total, concurrency, async () => {
    const start = performance.now();
    try {
      const c = await path.connect("echo");
      samples.push(performance.now() - start);
      c.on("error", () => undefined);
      c.destroy();
    } catch (err) {
      errors++;
      firstError ??= errorText(err);
    }
  });
  return { ...latencySummary(samples, errors, firstError), total, concurrency, seconds: (performance.now() - t0) / 1000 };
}
