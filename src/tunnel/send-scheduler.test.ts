import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { closeResponse, dialResponse, drain, type Packet } from "../protocol/index.js";
import type { ChannelHandlers, PacketChannel } from "./packet-channel.js";
import { OutboundQueue, SendScheduler } from "./send-scheduler.js";

/** A channel that records packets and reports backpressure after `capacity` sends until drained. */
function recordingChannel(capacity = Infinity) {
  const sent: Packet[] = [];
  let buffered = 0;
  const channel: PacketChannel & { sent: Packet[]; drainAll(): void } = {
    sent,
    start(_h: ChannelHandlers) {},
    send(p) {
      sent.push(p);
      buffered++;
      return buffered < capacity;
    },
    get writableLength() {
      return buffered * 64 * 1024;
    },
    pause() {},
    resume() {},
    end() {},
    destroy() {},
    drainAll() {
      buffered = 0;
    },
  };
  return channel;
}

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);
const dataOf = (p: Packet) => (p.type === "DATA" ? { id: p.connectID, n: p.data.length } : { type: p.type });

describe("SendScheduler", () => {
  it("sends control packets before any connection's data", () => {
    const ch = recordingChannel();
    const s = new SendScheduler(ch, 64 * 1024);
    const q = new OutboundQueue(1n, Infinity, 1 << 20, { queueLowWater: () => {} });
    q.push(bytes(10, 1));
    s.sendControl(dialResponse(7n, 1n));
    s.schedule(q);
    assert.deepEqual(ch.sent.map(dataOf), [{ type: "DIAL_RSP" }, { id: 1n, n: 10 }]);
  });

  it("gives connections turns of at most one chunk each (round robin)", () => {
    const ch = recordingChannel(1); // every send asks to wait, so turns are observable one by one
    const s = new SendScheduler(ch, 1000, 1);
    const a = new OutboundQueue(1n, Infinity, 1 << 20, { queueLowWater: () => {} });
    const b = new OutboundQueue(2n, Infinity, 1 << 20, { queueLowWater: () => {} });
    s.sendControl(drain()); // the channel is now full: both queues wait their turn
    a.push(bytes(3000, 1));
    b.push(bytes(1500, 2));
    s.schedule(a);
    s.schedule(b);
    for (let i = 0; i < 6; i++) {
      ch.drainAll();
      s.onDrain();
    }
    assert.deepEqual(ch.sent.map(dataOf), [
      { type: "DRAIN" }, { id: 1n, n: 1000 }, { id: 2n, n: 1000 }, { id: 1n, n: 1000 }, { id: 2n, n: 500 }, { id: 1n, n: 1000 },
    ]);
  });

  it("sends a connection's close after its queued data, never before", () => {
    const ch = recordingChannel();
    const s = new SendScheduler(ch, 1000);
    const q = new OutboundQueue(5n, Infinity, 1 << 20, { queueLowWater: () => {} });
    q.push(bytes(2500, 1));
    q.setClosePacket(closeResponse(5n));
    s.schedule(q);
    assert.deepEqual(ch.sent.map(dataOf), [{ id: 5n, n: 1000 }, { id: 5n, n: 1000 }, { id: 5n, n: 500 }, { type: "CLOSE_RSP" }]);
  });

  it("sends no more than the connection's credit and resumes when credit comes", () => {
    const ch = recordingChannel();
    const s = new SendScheduler(ch, 1000);
    const q = new OutboundQueue(3n, 1500, 1 << 20, { queueLowWater: () => {} });
    q.push(bytes(4000, 1));
    s.schedule(q);
    assert.deepEqual(ch.sent.map(dataOf), [{ id: 3n, n: 1000 }, { id: 3n, n: 500 }]);
    q.credit += 2000;
    s.schedule(q);
    assert.deepEqual(ch.sent.slice(2).map(dataOf), [{ id: 3n, n: 1000 }, { id: 3n, n: 1000 }]);
    assert.equal(q.bytes, 500);
  });

  it("gathers small chunks into one payload in order", () => {
    const ch = recordingChannel();
    const s = new SendScheduler(ch, 1000);
    const q = new OutboundQueue(1n, Infinity, 1 << 20, { queueLowWater: () => {} });
    for (let i = 0; i < 5; i++) q.push(bytes(300, i));
    s.schedule(q);
    const first = ch.sent[0]!;
    assert.equal(first.type, "DATA");
    if (first.type === "DATA") assert.deepEqual([...first.data.subarray(295, 305)], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    assert.deepEqual(ch.sent.map(dataOf), [{ id: 1n, n: 1000 }, { id: 1n, n: 500 }]);
  });

  it("tells the reader to resume once the queue falls below its low-water mark", () => {
    const ch = recordingChannel(1);
    const s = new SendScheduler(ch, 1000, 1);
    let resumed = 0;
    const q = new OutboundQueue(1n, Infinity, 1500, { queueLowWater: () => resumed++ });
    q.push(bytes(3000, 1));
    s.schedule(q);
    assert.equal(resumed, 0);
    ch.drainAll();
    s.onDrain();
    assert.equal(q.bytes, 1000);
    assert.equal(resumed, 1);
  });
});
