// Gives a quiet process's garbage back. V8 collects the old generation when allocation pushes it
// to its limit, and shrinks the heap on its own (the memory reducer) only some time after a full
// GC, and not after every burst: a server that had just closed 10,000 tunnelled connections kept
// their ~25 MiB of garbage, and the memory under it, for 15 s in one run and over 30 s in another
// (docs/benchmarks.md). A quiet server or agent (its event loop under 5 % busy for a check
// interval) is collected once when it was busy since the last collection (connections that were
// live then and have closed since are garbage that no growth figure shows), or when its heap grew
// by `minGrowthBytes` meanwhile. At most one collection per `minSpacingMs`, unless the heap grew
// by four times `minGrowthBytes` since the last one (a burst of thousands of connections just
// opened: its garbage should not wait up to 30 s); a full GC of a heap this size takes
// milliseconds, and nothing is waiting on the process when it runs.
// After the collection, a server or agent also gives back the memory glibc's malloc holds free
// (native-heap.ts): the buffers a burst of bulk traffic freed stay resident otherwise.
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import type { Logger } from "pino";
import { dropPooledFrames } from "../tunnel/index.js";
import { loadNativeHeap } from "./native-heap.js";

export interface IdleGcDeps {
  /** Runs a full garbage collection. */
  readonly gc: () => void;
  /** Bytes of the JavaScript heap in use. */
  readonly heapUsed: () => number;
  /** How busy the event loop was since the previous call, 0 to 1. */
  readonly busySinceLastCall: () => number;
  /** Milliseconds, monotonic. */
  readonly now: () => number;
  /** Resident set size in bytes (for the log line). */
  readonly rss: () => number;
}

export interface IdleGcOptions {
  readonly intervalMs?: number;
  readonly minGrowthBytes?: number;
  readonly minSpacingMs?: number;
  /** Event loop utilisation below which the process counts as quiet. */
  readonly quietBelow?: number;
  /** Runs just before a collection: lets caches that only speed up busy times go. */
  readonly beforeCollect?: () => void;
  /** Runs just after a collection, when the objects' native memory has been freed. */
  readonly afterCollect?: () => void;
}

export interface IdleGc {
  /** Checks once (the timer calls this); true when it collected. */
  check(): boolean;
  stop(): void;
  readonly collections: number;
}

/** V8's gc(), or undefined where it cannot be had. The flag only adds the function; it changes no GC behaviour. */
export function exposedGc(): (() => void) | undefined {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === "function") return existing;
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    return typeof gc === "function" ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

function processDeps(gc: () => void): IdleGcDeps {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  return {
    gc,
    heapUsed: () => getHeapStatistics().used_heap_size,
    busySinceLastCall: () => {
      const now = performance.eventLoopUtilization();
      const busy = performance.eventLoopUtilization(now, last).utilization;
      last = now;
      return busy;
    },
    now: () => performance.now(),
    rss: () => process.memoryUsage.rss(),
  };
}

export function startIdleGc(log: Logger, options: IdleGcOptions = {}, deps?: IdleGcDeps): IdleGc {
  const intervalMs = options.intervalMs ?? 5000;
  const minGrowth = options.minGrowthBytes ?? 16 * 1024 * 1024;
  const minSpacingMs = options.minSpacingMs ?? 30_000;
  const quietBelow = options.quietBelow ?? 0.05;
  const gc = deps ? deps.gc : exposedGc();
  if (!gc) {
    log.debug("V8's gc() is not available: garbage is left to V8's own schedule");
    return { check: () => false, stop: () => {}, collections: 0 };
  }
  const d = deps ?? processDeps(gc);
  let baseline = d.heapUsed();
  let busySinceGc = false;
  let lastGcAt = -Infinity;
  let collections = 0;
  const check = (): boolean => {
    if (d.busySinceLastCall() >= quietBelow) {
      busySinceGc = true;
      return false;
    }
    const used = d.heapUsed();
    if (used < baseline) baseline = used; // V8 collected on its own
    const started = d.now();
    const growth = used - baseline;
    if (!busySinceGc && growth < minGrowth) return false;
    if (started - lastGcAt < minSpacingMs && growth < 4 * minGrowth) return false;
    // Twice: the first collection frees the objects, the second gives back the pages the first one
    // emptied (measured: heap 44 MiB committed for 5 MiB live after one, 8 MiB after the second).
    const rssBefore = d.rss();
    options.beforeCollect?.();
    d.gc();
    d.gc();
    options.afterCollect?.();
    baseline = d.heapUsed();
    busySinceGc = false;
    lastGcAt = started;
    collections++;
    const MiB = 1048576;
    log.debug(
      { heapUsedMiB: Math.round(used / MiB), afterMiB: Math.round(baseline / MiB), rssMiB: Math.round(rssBefore / MiB), rssAfterMiB: Math.round(d.rss() / MiB), ms: Math.round(d.now() - started) },
      "quiet: collected garbage",
    );
    return true;
  };
  const timer = setInterval(check, intervalMs);
  timer.unref();
  return {
    check,
    stop: () => clearInterval(timer),
    get collections() {
      return collections;
    },
  };
}

/**
 * The idle collector of a server or agent process: the frame pool's spare buffers go just before
 * the collection, and malloc's free memory goes back to the kernel just after it, when the native
 * heap helper was built (native-heap.ts; without it that memory stays with the process).
 */
export function startProcessIdleGc(log: Logger): IdleGc {
  if (!isSemiSpaceCapped(process.execArgv, process.env.NODE_OPTIONS)) {
    log.info(
      "Node runs without --max-semi-space-size=1 (started as plain `node bin/nodetunnel.js`?): each idle connection holds more memory " +
        "(in the bench, 10,000 idle gRPC connections took 255 instead of 197 MiB of server + agent RSS); run `nodetunnel`, or give node the flags of docs/operations.md",
    );
  }
  const heap = loadNativeHeap();
  if (heap.available) log.debug({ helper: heap.path }, "quiet: native memory will be given back after each idle collection");
  else log.debug({ helper: heap.path, reason: heap.reason }, "quiet: native memory cannot be given back (the helper is optional)");
  return startIdleGc(log, { beforeCollect: dropPooledFrames, afterCollect: heap.available ? heap.trim : undefined });
}

/**
 * Whether V8's semi-space was capped at start-up, by the `#!` line of bin/nodetunnel.js, node's own
 * arguments or NODE_OPTIONS. Unlike the growing factor, which bin/nodetunnel.js sets itself when it
 * is missing, it cannot be changed once the heap is made.
 */
export function isSemiSpaceCapped(execArgv: readonly string[], nodeOptions = ""): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(a));
}
