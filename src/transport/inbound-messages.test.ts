import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { setImmediate as tick } from "node:timers/promises";
import { encodeGrpcMessage } from "./grpc-frame.js";
import { InboundMessages } from "./inbound-messages.js";
import type { TunnelError } from "../protocol/tunnel-error.js";

function harness(maxMessageBytes = 100) {
  const stream = new PassThrough();
  const got: string[] = [];
  const events: string[] = [];
  const inbound = new InboundMessages(stream, maxMessageBytes, {
    message: (m) => got.push(Buffer.from(m).toString()),
    end: () => events.push("end"),
    error: (e: TunnelError) => events.push(`error:${e.code}`),
  });
  return { stream, got, events, inbound };
}
const frames = (...texts: string[]) => Buffer.concat(texts.map((t) => encodeGrpcMessage(Buffer.from(t))));

test("nothing is read before start(); then messages and end arrive in order", async () => {
  const { stream, got, events, inbound } = harness();
  stream.end(frames("a", "b"));
  await tick();
  assert.deepEqual(got, []);
  inbound.start();
  await tick();
  assert.deepEqual(got, ["a", "b"]);
  assert.deepEqual(events, ["end"]);
});

test("pause() inside a message handler holds the rest of the chunk until resume(), and end waits too", async () => {
  const stream = new PassThrough();
  const got: string[] = [];
  const events: string[] = [];
  const inbound: InboundMessages = new InboundMessages(stream, 100, {
    message: (m) => {
      got.push(Buffer.from(m).toString());
      if (got.length === 1) inbound.pause();
    },
    end: () => events.push("end"),
    error: () => events.push("error"),
  });
  inbound.start();
  stream.end(frames("1", "2", "3"));
  await tick();
  await tick();
  assert.deepEqual(got, ["1"]);
  assert.deepEqual(events, []);
  assert.equal(inbound.isPaused, true);
  inbound.resume();
  await tick();
  assert.deepEqual(got, ["1", "2", "3"]);
  assert.deepEqual(events, ["end"]);
});

test("a framing error stops delivery; a stream that ends inside a message is a PROTOCOL error", async () => {
  const big = harness(2);
  big.inbound.start();
  big.stream.end(Buffer.concat([frames("ok"), frames("too long")]));
  await tick();
  assert.deepEqual(big.got, ["ok"]);
  assert.deepEqual(big.events, ["error:MESSAGE_TOO_LARGE"]);

  const cut = harness();
  cut.inbound.start();
  cut.stream.end(frames("whole").subarray(0, 7));
  await tick();
  assert.deepEqual(cut.events, ["error:PROTOCOL"]);
});

test("stop() delivers nothing more", async () => {
  const { stream, got, events, inbound } = harness();
  inbound.start();
  inbound.stop();
  stream.end(frames("late"));
  await tick();
  assert.deepEqual(got, []);
  assert.deepEqual(events, []);
});

test("messages held for a reader that is paused or not started are copied out of the chunk they came in", async () => {
  const stream = new PassThrough();
  const held: Uint8Array[] = [];
  const reader = new InboundMessages(stream, 100, { message: (m) => held.push(m), end: () => {}, error: () => {} });
  reader.readAhead(1024);
  const chunk = Buffer.alloc(64 * 1024);
  frames("tiny").copy(chunk);
  stream.write(chunk.subarray(0, 9));
  await tick();
  reader.start();
  await tick();
  assert.deepEqual(held.map((m) => Buffer.from(m).toString()), ["tiny"]);
  assert.equal(held[0]!.buffer.byteLength, 4, "not a view of the 64 KiB chunk");
});

test("readAhead() reads at once and holds messages (and the end) until start()", async () => {
  const { stream, got, events, inbound } = harness();
  inbound.readAhead(1024);
  stream.end(frames("a", "b"));
  await tick();
  assert.deepEqual(got, []);
  assert.deepEqual(events, []);
  assert.equal(stream.readableLength, 0, "the stream was read: nothing left in its buffer");
  inbound.start();
  await tick();
  assert.deepEqual(got, ["a", "b"]);
  assert.deepEqual(events, ["end"]);
});

test("readAhead() fails with LIMIT once more than its limit arrived, a message still arriving included", async () => {
  const whole = harness();
  // Each held message counts its 5-byte prefix and 64 bytes of overhead besides its own bytes.
  whole.inbound.readAhead(2 * 69 + 10);
  whole.stream.write(frames("12345", "67890"));
  await tick();
  assert.deepEqual(whole.events, []);
  whole.stream.write(frames(""));
  await tick();
  assert.deepEqual(whole.events, ["error:LIMIT"]);
  whole.inbound.start();
  await tick();
  assert.deepEqual(whole.got, [], "nothing is delivered after the failure");

  const empty = harness();
  empty.inbound.readAhead(64 * 1024);
  // 16 KiB of zero-length messages: 5 bytes each on the wire, nothing of their own.
  empty.stream.write(Buffer.alloc(16_380));
  await tick();
  assert.deepEqual(empty.events, ["error:LIMIT"], "3276 empty messages are more than 64 KiB held");

  const partial = harness(100);
  partial.inbound.readAhead(10);
  partial.stream.write(frames("a".repeat(50)).subarray(0, 20));
  await tick();
  assert.deepEqual(partial.events, ["error:LIMIT"]);
});
