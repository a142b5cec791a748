// CI's benchmark smoke test: a subset of the quick benchmark (real server and agent processes,
// mTLS agent link, both frontends) with floors that only a collapse misses. The goals are
// checked by `npm run bench`, not here: timed assertions on a shared CI machine would be noise.
import assert from "node:assert/strict";
import os from "node:os";
import { test } from "node:test";
import { isFailed, runBench, type BenchResult, type ModeName, type RowId, type RowValues } from "../bench/index.js";

// On a machine busier than its cores, every process gets a share of a CPU; the floors shrink by
// that share, so other work on the machine does not fail the build but a stalled tunnel still does.
const cpuShare = Math.min(1, os.cpus().length / Math.max(os.loadavg()[0]!, 0.01));
const minMBps = 50 * cpuShare;
const maxEchoP50Ms = 20 / cpuShare;

function value<R extends RowId>(result: BenchResult, row: R, mode: ModeName): RowValues[R] {
  const v = result.rows[row]?.[mode];
  assert.ok(v !== undefined, `${row} ${mode} was not measured`);
  assert.ok(!isFailed(v), `${row} ${mode} failed: ${isFailed(v) ? v.error : ""}`);
  return v as RowValues[R];
}

test("the quick benchmark runs end to end and nothing has collapsed", { timeout: 90_000 }, async () => {
  const result = await runBench({ quick: true, rows: ["up1", "down1", "echo", "stalled", "slow"], modes: ["direct", "http-connect", "grpc"] });
  for (const mode of ["http-connect", "grpc"] as const) {
    for (const row of ["up1", "down1"] as const) {
      const t = value(result, row, mode);
      assert.ok(t.totalMBps > minMBps, `${mode} ${row}: ${t.totalMBps.toFixed(1)} MB/s, floor ${minMBps.toFixed(1)}`);
    }
    assert.equal(value(result, "down1", mode).orderingErrors, 0, `${mode}: the destination's first bytes arrived before the tunnel was established`);
    const echo = value(result, "echo", mode);
    assert.equal(echo.errors, 0, `${mode} echo: ${echo.firstError}`);
    assert.ok(echo.count >= 10, `${mode} echo: only ${echo.count} samples`);
    assert.ok(echo.p50Ms < maxEchoP50Ms, `${mode} echo p50 ${echo.p50Ms.toFixed(2)} ms, ceiling ${maxEchoP50Ms.toFixed(1)}`);
    const stalled = value(result, "stalled", mode);
    // The rates go into the message: a collapse is told from a burst of other work on the machine
    // by whether the rate alone, before and after, fell too.
    assert.ok(stalled.keptFraction > 0.1, `${mode}: with a stalled reader the bulk connection kept ${(stalled.keptFraction * 100).toFixed(0)} % ` +
      `(${stalled.withStallMBps.toFixed(1)} MB/s beside it; alone ${stalled.normalBeforeMBps.toFixed(1)} before and ${stalled.normalAfterMBps.toFixed(1)} after; ` +
      `load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}; slow consumer closed: ${stalled.stalledClosed})`);
    assert.equal(stalled.newConnections.errors, 0, `${mode}: new connections failed during the stall: ${stalled.newConnections.firstError}`);
    // A reader slower than the tunnel but steady is slowed down, never closed, and with credit
    // the bulk connection beside it is not held to its pace.
    const slow = value(result, "slow", mode);
    assert.equal(slow.readerClosed, false, `${mode}: the tunnel closed a reader that read at ${slow.readerTargetMBps} MB/s`);
    assert.ok(slow.readerMBps > slow.readerTargetMBps * 0.25 * cpuShare, `${mode}: the slow reader read ${slow.readerMBps.toFixed(1)} MB/s of ${slow.readerTargetMBps}`);
    // Against its own rate alone, measured seconds before under the same load: without credit it
    // falls to the reader's pace (7–8 % in the bench's no-credit runs); an absolute floor failed
    // once when another test file's burst, too recent for the load average, took the cores.
    assert.ok(slow.keptFraction > 0.25, `${mode}: beside a slow reader the bulk connection kept ${(slow.keptFraction * 100).toFixed(0)} % of its rate alone (${slow.withSlowMBps.toFixed(1)} of ${slow.normalMBps.toFixed(1)} MB/s)`);
  }
  // The reference itself must have worked, or the figures above mean nothing.
  assert.ok(value(result, "up1", "direct").totalMBps > minMBps);
  assert.ok(result.machine.cores >= 1 && result.code.commit.length > 0);
});
