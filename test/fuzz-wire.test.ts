// Fuzzing the wire decoders (issue 6 item 5): the Packet decoder with random and mutated valid
// packets, and the gRPC message framing with random chunking and corrupt length prefixes. The
// only acceptable failure is TunnelError (PROTOCOL / MESSAGE_TOO_LARGE); a decoded packet must
// re-encode and decode to the same value; memory held by the reader stays bounded.
// Seeded (FUZZ_SEED) and bounded (FUZZ_ITERATIONS); see test/fuzz-support.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  TunnelError, closeDial, closeRequest, closeResponse, dataPacket, decodePacket, dialRequest, dialResponse, drain, encodePacket,
  windowUpdate, type Packet,
} from "../src/protocol/index.js";
import { GrpcMessageReader, encodeGrpcMessage } from "../src/transport/index.js";
import { fuzzIterations, fuzzSeed, mutateBytes, randInt, randomBytes, seededRandom } from "./fuzz-support.js";

const valid: Packet[] = [
  dialRequest("10.224.0.5:10250", 0x7fffffffffffffffn),
  dialRequest("[fd00::5]:10250", 1n, "udp"),
  dialResponse(42n, 7n),
  dialResponse(-1n, 0n, "dial tcp 10.0.0.1:10250: connect: connection refused"),
  closeRequest(9n),
  closeResponse(9n, "boom"),
  dataPacket(3n, Buffer.from("GET /containerLogs HTTP/1.1\r\n\r\n")),
  dataPacket(1n, Buffer.alloc(3000, 0xab), "eof"),
  closeDial(-5n),
  drain(),
  windowUpdate(3n, 65536),
];
const seeds = valid.map((p) => encodePacket(p));

/** Decodes as a stream with the credit extension would (WINDOW_UPDATE known) and as one without; the first outcome counts. */
function decodeChecked(bytes: Uint8Array): "ok" | "rejected" {
  const outcomes = [true, false].map((windowUpdates) => {
    let packet: Packet;
    try {
      packet = decodePacket(bytes, { windowUpdates });
    } catch (err) {
      assert.ok(err instanceof TunnelError && err.code === "PROTOCOL", `decodePacket threw ${String(err)} for ${Buffer.from(bytes).toString("hex")}`);
      return "rejected";
    }
    // Whatever decodes must survive a round trip unchanged (no half-valid values).
    if (packet.type !== "UNKNOWN") assert.deepEqual(decodePacket(encodePacket(packet), { windowUpdates }), packet, Buffer.from(bytes).toString("hex"));
    return "ok";
  });
  return outcomes[0]!;
}

test(`Packet decoder: random and mutated packets never throw anything but PROTOCOL (seed ${fuzzSeed})`, () => {
  const rand = seededRandom(fuzzSeed);
  const iterations = fuzzIterations(20_000);
  const outcomes = { ok: 0, rejected: 0 };
  const started = Date.now();
  for (let i = 0; i < iterations; i++) {
    const input = i % 5 === 0
      ? randomBytes(rand, 64)
      : mutateBytes(rand, seeds[randInt(rand, seeds.length)]!, seeds[randInt(rand, seeds.length)]);
    outcomes[decodeChecked(input)]++;
  }
  // Both branches must be exercised, or the fuzzer is not reaching the decoder's logic.
  assert.ok(outcomes.ok > iterations / 20 && outcomes.rejected > iterations / 20, JSON.stringify(outcomes));
  assert.ok(Date.now() - started < 60_000 * Math.max(1, iterations / 20_000));
});

test("Packet decoder: hostile lengths and varints are refused without allocating them", () => {
  for (const hex of [
    "", "08", "08ffffffffffffffffffff01", "1affffffff0f", "12ffffffffffffffffff01", "1a05", "a206", "0800a2060400", "00",
    "08031a0a08011203", "3a8080808010",
  ]) decodeChecked(Buffer.from(hex, "hex"));
});

test(`gRPC framing: random chunking delivers exactly the messages sent (seed ${fuzzSeed})`, () => {
  const rand = seededRandom(fuzzSeed + 1);
  const iterations = fuzzIterations(2_000);
  for (let i = 0; i < iterations; i++) {
    const messages = Array.from({ length: 1 + randInt(rand, 8) }, () => (rand() < 0.2 ? Buffer.alloc(0) : randomBytes(rand, 300)));
    const stream = Buffer.concat(messages.map((m) => encodeGrpcMessage(m)));
    const reader = new GrpcMessageReader(1024);
    const got: Buffer[] = [];
    for (let at = 0; at < stream.length;) {
      const n = 1 + randInt(rand, rand() < 0.5 ? 7 : 400);
      for (const m of reader.push(stream.subarray(at, at + n))) got.push(Buffer.from(m));
      at += n;
    }
    assert.deepEqual(got, messages);
    assert.equal(reader.bufferedBytes, 0);
  }
});

test(`gRPC framing: corrupt prefixes fail with a TunnelError and never buffer past the limit (seed ${fuzzSeed})`, () => {
  const rand = seededRandom(fuzzSeed + 2);
  const iterations = fuzzIterations(5_000);
  const maxMessageBytes = 4096;
  let failures = 0;
  for (let i = 0; i < iterations; i++) {
    const valid = Buffer.concat(Array.from({ length: 1 + randInt(rand, 4) }, () => encodeGrpcMessage(randomBytes(rand, 200))));
    const input = i % 4 === 0 ? randomBytes(rand, 64) : mutateBytes(rand, valid);
    const reader = new GrpcMessageReader(maxMessageBytes);
    try {
      for (let at = 0; at < input.length;) {
        const n = 1 + randInt(rand, 50);
        reader.push(input.subarray(at, at + n));
        at += n;
        assert.ok(reader.bufferedBytes <= maxMessageBytes + 5, `buffered ${reader.bufferedBytes}`);
      }
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      assert.ok(err instanceof TunnelError && ["PROTOCOL", "MESSAGE_TOO_LARGE"].includes(err.code), String(err));
      assert.equal(reader.failure, err, "the reader remembers why it failed");
      assert.throws(() => reader.push(Buffer.from([0])), (e) => e === err, "and keeps failing");
      failures++;
    }
  }
  assert.ok(failures > 0, "some corrupt prefixes were seen");
});
