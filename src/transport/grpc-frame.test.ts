import { test } from "node:test";
import assert from "node:assert/strict";
import { GrpcMessageReader, encodeGrpcMessage } from "./grpc-frame.js";
import { isTunnelError } from "../protocol/tunnel-error.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

test("encodeGrpcMessage writes flag 0, a big-endian length and the message in one buffer", () => {
  assert.deepEqual(encodeGrpcMessage(hex("0a0b0c")), hex("00 00000003 0a0b0c"));
  assert.deepEqual(encodeGrpcMessage(new Uint8Array(0)), hex("00 00000000"));
  assert.deepEqual(encodeGrpcMessage(Buffer.alloc(0x0304, 7)).subarray(0, 5), hex("00 00000304"));
});

test("several messages in one chunk come back as zero-copy views of it", () => {
  const chunk = Buffer.concat([encodeGrpcMessage(hex("01")), encodeGrpcMessage(hex("")), encodeGrpcMessage(hex("0203"))]);
  const reader = new GrpcMessageReader(100);
  const messages = reader.push(chunk);
  assert.deepEqual(messages.map((m) => Buffer.from(m).toString("hex")), ["01", "", "0203"]);
  assert.equal(messages[0]!.buffer, chunk.buffer);
  assert.equal(reader.bufferedBytes, 0);
});

test("a message split at every possible byte boundary is reassembled", () => {
  const wire = Buffer.concat([encodeGrpcMessage(hex("aabbccddeeff")), encodeGrpcMessage(hex("11"))]);
  for (let cut = 1; cut < wire.length; cut++) {
    const reader = new GrpcMessageReader(100);
    const first = reader.push(wire.subarray(0, cut));
    assert.equal(reader.bufferedBytes, cut < 11 ? cut : cut - 11);
    const all = [...first, ...reader.push(wire.subarray(cut))].map((m) => Buffer.from(m).toString("hex"));
    assert.deepEqual(all, ["aabbccddeeff", "11"], `cut at ${cut}`);
    assert.equal(reader.bufferedBytes, 0);
  }
});

test("one byte at a time works too", () => {
  const reader = new GrpcMessageReader(100);
  const out: string[] = [];
  for (const byte of encodeGrpcMessage(hex("c0ffee"))) out.push(...reader.push(Uint8Array.of(byte)).map((m) => Buffer.from(m).toString("hex")));
  assert.deepEqual(out, ["c0ffee"]);
});

test("a length prefix above the maximum fails with MESSAGE_TOO_LARGE before the body arrives", () => {
  const reader = new GrpcMessageReader(16);
  assert.deepEqual(reader.push(encodeGrpcMessage(Buffer.alloc(16))), [Buffer.alloc(16)]);
  assert.throws(() => reader.push(hex("00 00000011")), (e) => isTunnelError(e, "MESSAGE_TOO_LARGE") && /17 vs\. 16/.test(e.message));
  assert.throws(() => reader.push(hex("00")), (e) => isTunnelError(e, "MESSAGE_TOO_LARGE"));
});

test("the compressed flag and unknown flags are protocol errors", () => {
  assert.throws(() => new GrpcMessageReader(16).push(hex("01 00000001 00")), (e) => isTunnelError(e, "PROTOCOL") && /compressed/.test(e.message));
  assert.throws(() => new GrpcMessageReader(16).push(hex("02 00000001 00")), (e) => isTunnelError(e, "PROTOCOL") && /flag byte 2/.test(e.message));
  const split = new GrpcMessageReader(16);
  assert.deepEqual(split.push(hex("0100")), []);
  assert.throws(() => split.push(hex("000001 00")), (e) => isTunnelError(e, "PROTOCOL"));
});

test("messages completed before a framing error in the same chunk are still returned; the next push throws", () => {
  const reader = new GrpcMessageReader(4);
  const out = reader.push(Buffer.concat([encodeGrpcMessage(hex("01")), hex("00 00000005")]));
  assert.deepEqual(out.map((m) => Buffer.from(m).toString("hex")), ["01"]);
  assert.ok(isTunnelError(reader.failure, "MESSAGE_TOO_LARGE"));
  assert.throws(() => reader.push(hex("00")), (e) => e === reader.failure);
});

test("with reuseBuffer, split messages are assembled in one buffer kept across messages", () => {
  // Over 4 KiB, so that a fresh buffer is not a slice of Node's shared pool.
  const messages = [Buffer.alloc(6000, 1), Buffer.alloc(5000, 2), Buffer.alloc(7000, 3)];
  const assemble = (reader: GrpcMessageReader) => messages.map((message) => {
    const wire = encodeGrpcMessage(message);
    const out = [...reader.push(wire.subarray(0, 100)), ...reader.push(wire.subarray(100))];
    assert.equal(out.length, 1);
    assert.ok(Buffer.from(out[0]!).equals(message)); // read before the next push, as the option requires
    return out[0]!;
  });
  const reused = assemble(new GrpcMessageReader(10_000, { reuseBuffer: true }));
  // The second (shorter) message reused the first one's buffer; the third, longer, needed a new one.
  assert.equal(reused[1]!.buffer, reused[0]!.buffer);
  assert.notEqual(reused[2]!.buffer, reused[0]!.buffer);
  // Without the option every split message has a buffer of its own.
  const fresh = assemble(new GrpcMessageReader(10_000));
  assert.notEqual(fresh[1]!.buffer, fresh[0]!.buffer);
});
