// A connection whose reader falls past the slow-consumer cap with a peer that has no credit: when
// it holds the shared stream, when it lets go, and which rule closes it. The endpoint is a fake
// whose buffer the test drains by hand; the packets go over an in-memory channel pair.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { closeResponse, type Packet } from "../protocol/index.js";
import type { Endpoint, EndpointHandlers } from "./endpoint.js";
import { defaultFlowOptions, type FlowOptions } from "./flow-options.js";
import { createChannelPair } from "./packet-channel.js";
import { SendScheduler } from "./send-scheduler.js";
import { TunnelConnection } from "./tunnel-connection.js";

const KiB = 1024;
const cap = 1024 * KiB;

/** A local writer that takes everything and flushes only when the test says so. */
class FakeEndpoint implements Endpoint {
  buffered = 0;
  destroyed = false;
  destroyedWith: Error | undefined;
  handlers: EndpointHandlers | undefined;
  start(h: EndpointHandlers): void {
    this.handlers = h;
  }
  write(chunk: Uint8Array): boolean {
    this.buffered += chunk.length;
    return false;
  }
  get writableLength(): number {
    return this.buffered;
  }
  /** The reader took `n` bytes. */
  flush(n: number): void {
    this.buffered -= n;
  }
  pause(): void {}
  resume(): void {}
  end(): void {}
  destroy(err?: Error): void {
    this.destroyed = true;
    this.destroyedWith = err;
  }
}

function setUp(flow: Partial<FlowOptions> = {}) {
  const [ours, theirs] = createChannelPair();
  const received: Packet[] = [];
  theirs.start({ packet: (p) => received.push(p), drain: () => {}, close: () => {} });
  ours.start({ packet: () => {}, drain: () => {}, close: () => {} });
  const endpoint = new FakeEndpoint();
  const holds = { taken: 0, released: 0 };
  const conn = new TunnelConnection({
    connectID: 7n,
    endpoint,
    scheduler: new SendScheduler(ours, 64 * KiB),
    flow: { ...defaultFlowOptions, creditWindowBytes: 256 * KiB, slowConsumerBytes: cap, slowConsumerGraceMs: 2000, ...flow },
    credit: false,
    side: { localClose: (id, error) => closeResponse(id, error), peerCloseReply: () => null, awaitPeerCloseMs: 0 },
    holdStream: () => {
      holds.taken++;
      return () => holds.released++;
    },
    log: pino({ level: "silent" }),
    onFinished: () => {},
  });
  conn.start();
  return { conn, endpoint, holds, received, close: () => conn.destroy() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const closeError = (received: Packet[]) => received.find((p): p is Extract<Packet, { type: "CLOSE_RSP" }> => p.type === "CLOSE_RSP")?.error;

describe("a reader past the slow-consumer cap, without credit", () => {
  it("holds the shared stream, once, and lets go when it has passed on half the cap since the hold began", async (t) => {
    const s = setUp();
    t.after(s.close);
    s.conn.peerData(new Uint8Array(cap + 64 * KiB));
    s.conn.peerData(new Uint8Array(64 * KiB));
    assert.deepEqual(s.holds, { taken: 1, released: 0 });
    assert.equal(s.conn.isHoldingStream, true);
    // Progress in one step of half the cap: still over half the cap buffered (the bytes that put
    // it over), but it has passed on half the cap since the hold began.
    s.endpoint.flush(cap / 2);
    assert.ok(s.endpoint.writableLength > cap / 2);
    s.conn.localDrain();
    assert.deepEqual(s.holds, { taken: 1, released: 1 });
    assert.equal(s.conn.isOpen, true);
    assert.equal(s.endpoint.destroyed, false);
  });

  it("is closed as stalled when it passes on nothing for a second", async (t) => {
    const s = setUp();
    t.after(s.close);
    s.conn.peerData(new Uint8Array(cap + 1));
    const started = performance.now();
    while (s.conn.isOpen && performance.now() - started < 3000) await sleep(20);
    const ms = performance.now() - started;
    assert.equal(s.endpoint.destroyed, true);
    assert.ok(ms >= 950 && ms < 1500, `closed after ${ms.toFixed(0)} ms`);
    assert.deepEqual(s.holds, { taken: 1, released: 1 });
    await sleep(10);
    assert.match(closeError(s.received) ?? "", /^slow consumer: the reader fell 1048577 bytes behind and read nothing for \d+ ms$/);
    // The local side hears the same reason (a gRPC frontend's CLOSE_RSP; a TCP socket is reset).
    assert.equal(s.endpoint.destroyedWith?.message, closeError(s.received));
  });

  it("is closed when it reads on but does not catch up within the grace period", async (t) => {
    const s = setUp({ slowConsumerGraceMs: 300 });
    t.after(s.close);
    s.conn.peerData(new Uint8Array(cap + 1));
    const started = performance.now();
    while (s.conn.isOpen && performance.now() - started < 2000) {
      s.endpoint.flush(8 * KiB); // far too slow to pass on half the cap in 300 ms
      await sleep(20);
    }
    assert.equal(s.endpoint.destroyed, true);
    assert.deepEqual(s.holds, { taken: 1, released: 1 });
    await sleep(10);
    assert.match(closeError(s.received) ?? "", /and did not catch up within 300 ms$/);
  });

  it("is closed at once, without holding the stream, when it has already read nothing for a second (stalled readers cost a second together, not one each)", async (t) => {
    const s = setUp();
    t.after(s.close);
    s.conn.peerData(new Uint8Array(cap / 2));
    await sleep(1100); // it takes nothing meanwhile (another stalled reader held the stream, say)
    s.conn.peerData(new Uint8Array(cap / 2 + 1));
    assert.equal(s.endpoint.destroyed, true);
    assert.equal(s.holds.taken, 0);
    await sleep(10);
    assert.match(closeError(s.received) ?? "", /^slow consumer: the reader fell \d+ bytes behind and read nothing for 1\d{3} ms$/);
  });

  it("is held as before when it took something within the last second", async (t) => {
    const s = setUp();
    t.after(s.close);
    s.conn.peerData(new Uint8Array(cap / 2));
    await sleep(600);
    s.endpoint.flush(64 * KiB);
    await sleep(600);
    s.conn.peerData(new Uint8Array(cap / 2 + 64 * KiB + 1));
    assert.equal(s.endpoint.destroyed, false);
    assert.equal(s.holds.taken, 1);
  });

  it("is closed at once when holding is off (grace 0)", (t) => {
    const s = setUp({ slowConsumerGraceMs: 0 });
    t.after(s.close);
    s.conn.peerData(new Uint8Array(cap + 1));
    assert.equal(s.endpoint.destroyed, true);
    assert.equal(s.holds.taken, 0);
  });
});
