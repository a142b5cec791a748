import assert from "node:assert/strict";
import { it } from "node:test";
import pino from "pino";
import { exposedGc, isSemiSpaceCapped, startIdleGc, type IdleGcDeps } from "./idle-gc.js";

const log = pino({ level: "silent" });
const MiB = 1024 * 1024;

function fakeProcess(): IdleGcDeps & { used: number; busy: number; gcs: number; liveBytes: number; clock: number; now: () => number } {
  const p = {
    used: 20 * MiB,
    busy: 0,
    gcs: 0,
    liveBytes: 12 * MiB,
    clock: 0,
    now: () => (p.clock += 60_000),
    gc: () => {
      p.gcs++;
      p.used = p.liveBytes;
    },
    heapUsed: () => p.used,
    busySinceLastCall: () => p.busy,
    rss: () => 0,
  };
  return p;
}

it("after a busy spell, collects on the first quiet check whatever the heap did (closed connections were live at the last collection)", () => {
  const p = fakeProcess();
  const idle = startIdleGc(log, { minGrowthBytes: 16 * MiB }, p);
  try {
    p.used += 5 * MiB;
    assert.equal(idle.check(), false, "quiet all along: 5 MiB is below the threshold");
    p.busy = 0.5;
    assert.equal(idle.check(), false, "busy");
    p.busy = 0;
    p.used = 15 * MiB; // V8 scavenged meanwhile: below the last baseline
    assert.equal(idle.check(), true, "quiet again after work");
    p.used += 5 * MiB;
    assert.equal(idle.check(), false, "no work since: the growth threshold applies again");
  } finally {
    idle.stop();
  }
});

it("runs beforeCollect just before each collection and afterCollect just after it, and only then", () => {
  const p = fakeProcess();
  const calls: string[] = [];
  const deps: IdleGcDeps = {
    ...p,
    gc: () => {
      calls.push("gc");
      p.gc();
    },
  };
  const idle = startIdleGc(log, { beforeCollect: () => calls.push("before"), afterCollect: () => calls.push("after") }, deps);
  try {
    p.busy = 0.5;
    assert.equal(idle.check(), false);
    assert.deepEqual(calls, [], "busy: nothing runs");
    p.busy = 0;
    assert.equal(idle.check(), true);
    assert.deepEqual(calls, ["before", "gc", "gc", "after"]);
    assert.equal(idle.check(), false, "nothing new to collect");
    assert.deepEqual(calls, ["before", "gc", "gc", "after"]);
  } finally {
    idle.stop();
  }
});

it("keeps collections at least minSpacingMs apart", () => {
  const p = fakeProcess();
  p.now = () => p.clock;
  const idle = startIdleGc(log, { minGrowthBytes: 16 * MiB, minSpacingMs: 30_000 }, p);
  try {
    p.clock = 100_000;
    p.used += 20 * MiB;
    assert.equal(idle.check(), true);
    p.used += 20 * MiB;
    p.clock += 10_000;
    assert.equal(idle.check(), false, "10 s after the last one");
    p.clock += 25_000;
    assert.equal(idle.check(), true, "35 s after");
  } finally {
    idle.stop();
  }
});

it("collects sooner than minSpacingMs when the heap grew by four times minGrowthBytes (a burst of connections)", () => {
  const p = fakeProcess();
  p.now = () => p.clock;
  const idle = startIdleGc(log, { minGrowthBytes: 16 * MiB, minSpacingMs: 30_000 }, p);
  try {
    p.clock = 100_000;
    p.busy = 0.5;
    assert.equal(idle.check(), false, "busy");
    p.busy = 0;
    assert.equal(idle.check(), true, "quiet after work");
    p.busy = 0.5;
    p.used += 63 * MiB;
    p.clock += 5_000;
    assert.equal(idle.check(), false, "busy");
    p.busy = 0;
    p.clock += 5_000;
    assert.equal(idle.check(), false, "quiet after work, 10 s after the last one, 63 MiB grown: spacing holds");
    p.used += 2 * MiB;
    p.clock += 5_000;
    assert.equal(idle.check(), true, "65 MiB grown: collected 15 s after the last one");
  } finally {
    idle.stop();
  }
});

it("collects once when the process is quiet and its heap grew, and not again until it grows again", () => {
  const p = fakeProcess();
  const idle = startIdleGc(log, { minGrowthBytes: 16 * MiB }, p);
  try {
    p.used += 10 * MiB;
    assert.equal(idle.check(), false, "grew less than the threshold");
    p.used += 10 * MiB;
    assert.equal(idle.check(), true, "quiet and 20 MiB above the baseline");
    assert.equal(p.gcs, 2, "two full collections: the second returns the pages the first emptied");
    assert.equal(p.used, 12 * MiB);
    assert.equal(idle.check(), false, "nothing new since");
    p.used += 17 * MiB;
    assert.equal(idle.check(), true);
    assert.equal(idle.collections, 2);
  } finally {
    idle.stop();
  }
});

it("leaves a busy process to V8, and follows V8's own collections down", () => {
  const p = fakeProcess();
  const idle = startIdleGc(log, { minGrowthBytes: 16 * MiB, quietBelow: 0.05 }, p);
  try {
    p.busy = 0.4;
    p.used += 40 * MiB;
    assert.equal(idle.check(), false, "busy: a full GC would pause live traffic");
    p.used = 8 * MiB; // V8 collected by itself: the baseline follows
    p.busy = 0;
    p.liveBytes = 8 * MiB;
    assert.equal(idle.check(), true, "the first quiet check after work collects");
    assert.equal(idle.collections, 1);
    assert.equal(idle.check(), false);
    p.used = 8 * MiB + 17 * MiB;
    assert.equal(idle.check(), true, "growth measured from the lower baseline");
    assert.equal(idle.collections, 2);
  } finally {
    idle.stop();
  }
});

it("gets V8's gc() in a process started without --expose-gc, and it frees unreachable memory", async () => {
  const gc = exposedGc();
  assert.equal(typeof gc, "function");
  let garbage: number[][] | undefined = Array.from({ length: 200 }, () => Array.from({ length: 1000 }, (_, i) => i));
  const ref = new WeakRef(garbage);
  garbage = undefined;
  await new Promise((r) => setImmediate(r)); // a WeakRef holds its target until the current job ends
  gc!();
  assert.equal(ref.deref(), undefined);
});

it("knows whether the semi-space was capped at start-up: node's arguments or NODE_OPTIONS", () => {
  assert.equal(isSemiSpaceCapped(["--max-semi-space-size=1", "--heap-growing-percent=300"]), true, "the #! line");
  assert.equal(isSemiSpaceCapped([], "--max_semi_space_size=2 --enable-source-maps"), true, "NODE_OPTIONS, underscores");
  assert.equal(isSemiSpaceCapped(["--max-semi-space-size", "1"]), true, "value as the next argument");
  assert.equal(isSemiSpaceCapped([]), false, "plain node");
  assert.equal(isSemiSpaceCapped(["--heap-growing-percent=300"], "--max-old-space-size=512"), false);
  assert.equal(isSemiSpaceCapped(["--max-semi-space-sizes=1"]), false, "not a prefix match");
});
