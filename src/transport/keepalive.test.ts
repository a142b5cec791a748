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
  const stop = startKeepalive(session, { timeMs: 1000, timeoutMs: 300, onDead: (ms) => dead.push(ms) });
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
  stop();
});

test("only one ping is outstanding at a time, and stop() cancels everything", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const { session, pending } = fakeSession();
  const dead: number[] = [];
  const stop = startKeepalive(session, { timeMs: 100, timeoutMs: 1000, onDead: (ms) => dead.push(ms) });
  t.mock.timers.tick(500);
  assert.equal(pending.length, 1);
  stop();
  stop();
  t.mock.timers.tick(5000);
  assert.deepEqual(dead, []);
  assert.equal(pending.length, 1);
});

test("timeMs 0 disables keepalive", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const { session, pending } = fakeSession();
  startKeepalive(session, { timeMs: 0, timeoutMs: 10, onDead: () => assert.fail("no keepalive expected") })();
  t.mock.timers.tick(10_000);
  assert.equal(pending.length, 0);
});
