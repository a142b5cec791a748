import assert from "node:assert/strict";
import { it } from "node:test";
import pino from "pino";
import { exposedGc, startIdleGc, type IdleGcDeps } from "./idle-gc.js";

const log = pino({ level: "silent" });
const MiB = 1024 * 1024;

function fakeProcess(): IdleGcDeps & { used: number; busy: number; gcs: number; liveBytes: number } {
  const p = {
    used: 20 * MiB,
    busy: 0,
    gcs: 0,
    liveBytes: 12 * MiB,
    gc: () => {
      p.gcs++;
      p.used = p.liveBytes;
    },
    heapUsed: () => p.used,
    busySinceLastCall: () => p.busy,
  };
  return p;
}

it("collects once when the process is quiet and its heap grew, and not again until it grows again", () => {
  const p = fakeProcess();
  const idle = startIdleGc(log, { minGrowthBytes: 16 * MiB }, p);
  try {
    p.used += 10 * MiB;
    assert.equal(idle.check(), false, "grew less than the threshold");
    p.used += 10 * MiB;
    assert.equal(idle.check(), true, "quiet and 20 MiB above the baseline");
    assert.equal(p.gcs, 1);
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
    assert.equal(idle.check(), false);
    p.used = 8 * MiB + 17 * MiB;
    assert.equal(idle.check(), true, "measured from the lower baseline");
    assert.equal(p.gcs, 1);
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
