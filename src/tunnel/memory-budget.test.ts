// The memory budget: over the limit it pauses the shared streams; a pause that lasts is ended by
// closing the connections whose readers took nothing, the largest first, never one that drains.
import assert from "node:assert/strict";
import { it } from "node:test";
import { pino } from "pino";
import { closeResponse } from "../protocol/index.js";
import type { Endpoint, EndpointHandlers } from "./endpoint.js";
import { defaultFlowOptions } from "./flow-options.js";
import { MemoryBudget, type BudgetMember } from "./memory-budget.js";
import { createChannelPair } from "./packet-channel.js";
import { SendScheduler } from "./send-scheduler.js";
import { TunnelConnection } from "./tunnel-connection.js";

class FakeMember implements BudgetMember {
  deliveredBytes = 0;
  shedWith: string | undefined;
  constructor(readonly budget: MemoryBudget, public heldBytes: number) {
    budget.join(this);
    budget.adjust(heldBytes);
  }
  shed(error: string): void {
    this.shedWith = error;
    this.budget.leave(this);
    this.budget.adjust(-this.heldBytes);
    this.heldBytes = 0;
  }
  drain(n: number): void {
    this.deliveredBytes += n;
    this.heldBytes -= n;
    this.budget.adjust(-n);
  }
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("pauses over the limit, then closes stalled readers, largest first, until under the resume mark; a draining reader is kept", async () => {
  const budget = new MemoryBudget(100, 20);
  const states: boolean[] = [];
  budget.addSource({ pause: () => states.push(true), resume: () => states.push(false) });
  const shedEvents: Array<[number, number]> = [];
  budget.onShed((n, freed) => shedEvents.push([n, freed]));
  const small = new FakeMember(budget, 20);
  const draining = new FakeMember(budget, 45);
  const large = new FakeMember(budget, 40);
  assert.deepEqual(states, [true], "over 100: the streams pause at once");
  draining.drain(5); // progress: it is not stalled
  await tick(60);
  assert.match(large.shedWith ?? "", /^closed to free memory: the process holds 100 bytes for its local readers, over its budget of 100, and this connection's reader took none of its 40 bytes for 20 ms$/);
  assert.equal(draining.shedWith, undefined, "a reader that drains is never closed");
  // 100 → 60 after the largest; still above the resume mark (50), so the next stalled one goes too.
  assert.match(small.shedWith ?? "", /took none of its 20 bytes/);
  assert.deepEqual(states, [true, false], "under half the limit: the streams resume");
  assert.deepEqual(shedEvents, [[2, 60]]);
});

it("a pause that drains by itself closes nothing, and a member that left is never asked", async () => {
  const budget = new MemoryBudget(100, 20);
  const a = new FakeMember(budget, 60);
  const b = new FakeMember(budget, 60);
  assert.equal(budget.isPaused, true);
  b.shed("gone for another reason"); // closed before the check: it leaves the budget
  b.shedWith = undefined;
  a.drain(15); // 45 left: under the resume mark
  assert.equal(budget.isPaused, false);
  await tick(60);
  assert.equal(a.shedWith, undefined);
  assert.equal(b.shedWith, undefined);
});

it("a connection that finished is never counted again, even when its endpoint drains later (a gRPC frontend writing out its tail)", async () => {
  // Like FrontendStreamEndpoint: end() queues the close behind the data, which stays buffered.
  class TailEndpoint implements Endpoint {
    buffered = 0;
    handlers: EndpointHandlers | undefined;
    start(h: EndpointHandlers) { this.handlers = h; }
    write(c: Uint8Array) { this.buffered += c.length; return this.buffered < 64 * 1024; }
    get writableLength() { return this.buffered; }
    pause() {}
    resume() {}
    end() {}
    destroy() {}
  }
  const [ours, theirs] = createChannelPair();
  theirs.start({ packet: () => {}, drain: () => {}, close: () => {} });
  ours.start({ packet: () => {}, drain: () => {}, close: () => {} });
  const budget = new MemoryBudget(100 << 20, 20);
  const endpoint = new TailEndpoint();
  const conn = new TunnelConnection({
    connectID: 7n, endpoint, scheduler: new SendScheduler(ours, 64 * 1024), flow: defaultFlowOptions, credit: true, budget,
    side: { localClose: (id, e) => closeResponse(id, e), peerCloseReply: () => null, awaitPeerCloseMs: 0 },
    log: pino({ level: "silent" }), onFinished: () => {},
  });
  conn.start();
  conn.peerData(new Uint8Array(200 * 1024));
  assert.equal(budget.usedBytes, 200 * 1024);
  conn.peerClose("");
  assert.equal(budget.usedBytes, 0, "settled when it finished");
  endpoint.buffered = 40 * 1024;
  endpoint.handlers!.localDrain();
  assert.equal(budget.usedBytes, 0, "a late drain does not count the finished connection again");
  assert.equal(conn.heldBytes, 0);
  ours.destroy();
  theirs.destroy();
});
