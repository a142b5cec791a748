import { test } from "node:test";
import assert from "node:assert/strict";
import type { Http2Session } from "node:http2";
import { startKeepalive } from "./keepalive.js";

// A session double: records pings and lets the test decide when (if ever) they are acked.
function fakeSession() {
  const pending: Array<(err: Error | null) => void> = [];
  const session = {
    destroyed: false,
    closed: false,
    ping(cb: (err: Error | null) => void) {
      pending.push(cb);
      return true;
    },
  };
  return { session: session as unknown as Http2Session, pending };
}

test("pings every timeMs and reports a dead peer when an ack is late", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const { session, pending } = fakeSession();
  const dead: number[] = [];
  const keepalive = startKeepalive(session, {
    timeMs: 1000,
    timeoutMs: 300,
    onDead: (ms, which) => {
      assert.equal(which, session, "onDead is told which session died");
      dead.push(ms);
    },
  });
  t.mock.timers.tick(999);
  assert.equal(pending.length, 0);
  t.mock.timers.tick(1);
  assert.equal(pending.length, 1);
  pending.shift()!(null); // acked in time
  t.mock.timers.tick(1000);
  assert.equal(pending.length, 1);
  t.mock.timers.tick(299);
  assert.deepEqual(dead, []);
  t.mock.timers.tick(1);
  assert.equal(dead.length, 1);
  keepalive.stop();
});

test("only one ping is outstanding at a time, and stop() cancels everything", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const { session, pending } = fakeSession();
  const dead: number[] = [];
  const keepalive = startKeepalive(session, { timeMs: 100, timeoutMs: 1000, onDead: (ms) => dead.push(ms) });
  t.mock.timers.tick(500);
  assert.equal(pending.length, 1);
  keepalive.stop();
  keepalive.stop();
  t.mock.timers.tick(5000);
  assert.deepEqual(dead, []);
  assert.equal(pending.length, 1);
});

test("timeMs 0 disables keepalive", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const { session, pending } = fakeSession();
  startKeepalive(session, { timeMs: 0, timeoutMs: 10, onDead: () => assert.fail("no keepalive expected") }).stop();
  t.mock.timers.tick(10_000);
  assert.equal(pending.length, 0);
});

test("sessions with the same interval share one timer; a late starter's first ping still waits a whole interval", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const first = fakeSession();
  const second = fakeSession();
  const firstKeepalive = startKeepalive(first.session, { timeMs: 1000, timeoutMs: 10_000, onDead: () => {} });
  t.mock.timers.tick(600);
  const secondKeepalive = startKeepalive(second.session, { timeMs: 1000, timeoutMs: 10_000, onDead: () => {} });
  t.mock.timers.tick(400); // t = 1000: the first is due, the second has waited 400 ms
  assert.equal(first.pending.length, 1);
  assert.equal(second.pending.length, 0);
  t.mock.timers.tick(600); // t = 1600: one interval for the second
  assert.equal(second.pending.length, 0, "not before a whole interval");
  t.mock.timers.tick(250); // t = 1850, within 1.25 intervals
  assert.equal(second.pending.length, 1);
  second.pending.shift()!(null);
  firstKeepalive.stop();
  t.mock.timers.tick(1000);
  assert.equal(second.pending.length, 1, "the shared timer keeps running for the remaining session");
  secondKeepalive.stop();
});
