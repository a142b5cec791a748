import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dataPacketLength, decodePacket, encodePacket } from "./packet-codec.js";
import {
  closeDial, closeRequest, closeResponse, dataPacket, dialRequest, dialResponse, drain, windowUpdate, type Packet,
} from "./packet.js";
import { TunnelError } from "./tunnel-error.js";
import { PbPacket, encodeWithProtobufjs } from "../../test/helpers/protobufjs-reference.js";

/** The reference encoding: protobufjs from proto/konnectivity.proto. */
const reference = (p: Packet): Uint8Array => new Uint8Array(encodeWithProtobufjs(p));

const MAX_INT64 = (1n << 63n) - 1n;
const MIN_INT64 = -(1n << 63n);
const vectors: Array<[string, Packet]> = [
  ["DIAL_REQ", dialRequest("10.224.0.5:10250", 6129484611666145821n)],
  ["DIAL_REQ with zero random", dialRequest("node-1:10250", 0n)],
  ["DIAL_REQ with max int64 random", dialRequest("[fd00::5]:10250", MAX_INT64)],
  ["DIAL_RSP success", dialResponse(42n, 1n)],
  ["DIAL_RSP error", dialResponse(-5n, 0n, "dial tcp 10.224.0.5:10250: i/o timeout")],
  ["DIAL_RSP negative ids", dialResponse(MIN_INT64, -1n)],
  ["CLOSE_REQ", closeRequest(7n)],
  ["CLOSE_REQ zero", closeRequest(0n)],
  ["CLOSE_RSP", closeResponse(7n)],
  ["CLOSE_RSP error", closeResponse(99n, "unrecognized connectID")],
  ["DATA", dataPacket(3n, new Uint8Array([1, 2, 3, 0, 255]))],
  ["DATA empty", dataPacket(3n, new Uint8Array(0))],
  ["DATA large", dataPacket(1n << 40n, new Uint8Array(1 << 20).fill(0xab))],
  ["DATA with error", dataPacket(8n, new Uint8Array([9]), "boom")],
  ["DATA on connection 0", dataPacket(0n, new Uint8Array([7]))],
  ["DATA negative connection", dataPacket(-3n, new Uint8Array([7]))],
  ["DATA max int64 connection", dataPacket(MAX_INT64, new Uint8Array(1))],
  ["DATA 127 bytes", dataPacket(127n, new Uint8Array(127).fill(1))],
  ["DATA 128 bytes", dataPacket(128n, new Uint8Array(128).fill(2))],
  ["DATA 16383 bytes", dataPacket(16383n, new Uint8Array(16383).fill(3))],
  ["DATA 16384 bytes", dataPacket(1n << 53n, new Uint8Array(16384).fill(4))],
  ["DATA 64 KiB", dataPacket(2n ** 31n, new Uint8Array(65536).fill(5))],
  ["DIAL_CLS", closeDial(123456789012345n)],
  ["DIAL_CLS negative", closeDial(-2n)],
  ["DRAIN", drain()],
  ["DIAL_REQ non-ascii address", dialRequest("nœud-ü:10250", 1n)],
];

describe("Packet codec", () => {
  for (const [name, packet] of vectors) {
    it(`encodes ${name} byte for byte as protobufjs does, and decodes it back`, () => {
      const ours = encodePacket(packet);
      assert.deepEqual(new Uint8Array(ours), reference(packet));
      assert.deepEqual(normalise(decodePacket(ours)), normalise(packet));
    });
  }

  it("knows the length of DATA without an error as it encodes it", () => {
    for (const [name, p] of vectors) {
      if (p.type !== "DATA" || p.error !== "") continue;
      assert.equal(dataPacketLength(p.connectID, p.data.length), encodePacket(p).length, name);
    }
  });

  it("leaves headroom for a frame header without changing the packet bytes", () => {
    const p = dataPacket(5n, new Uint8Array([1, 2]));
    const withRoom = encodePacket(p, 5);
    assert.deepEqual(new Uint8Array(withRoom.subarray(5)), new Uint8Array(encodePacket(p)));
  });

  it("decodes protobufjs output including defaults it omits", () => {
    const bytes = PbPacket.encode(PbPacket.fromObject({ type: 0, dialRequest: { address: "a:1" } })).finish();
    assert.deepEqual(bytes[0], 0x12, "no type field on the wire for DIAL_REQ");
    assert.deepEqual(decodePacket(bytes), { type: "DIAL_REQ", protocol: "", address: "a:1", random: 0n });
  });

  it("treats a missing type as DIAL_REQ and a missing member as defaults", () => {
    assert.deepEqual(decodePacket(new Uint8Array(0)), { type: "DIAL_REQ", protocol: "", address: "", random: 0n });
    assert.deepEqual(decodePacket(Uint8Array.of(0x08, 0x04)), { type: "DATA", connectID: 0n, error: "", data: new Uint8Array(0) });
  });

  it("returns DATA as a view of the input, not a copy", () => {
    const bytes = encodePacket(dataPacket(1n, new Uint8Array([7, 7, 7])));
    const p = decodePacket(bytes);
    assert.equal(p.type, "DATA");
    if (p.type === "DATA") assert.equal(p.data.buffer, bytes.buffer);
  });

  it("skips unknown fields of every wire type, at both levels", () => {
    const pkt = encodePacket(closeRequest(9n));
    const unknownTop = Buffer.from([0x48, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 0x02, 0xaa, 0xbb, 0x65, 1, 2, 3, 4, 0x6b, 0x08, 0x01, 0x6c]);
    assert.deepEqual(decodePacket(Buffer.concat([unknownTop, pkt])), closeRequest(9n));
    // Unknown field 15 inside CloseRequest: [0x2a len 0x08 0x09 0x78 0x05]
    assert.deepEqual(decodePacket(Uint8Array.of(0x08, 0x02, 0x2a, 0x04, 0x08, 0x09, 0x78, 0x05)), closeRequest(9n));
  });

  it("skips a known field sent with another wire type, as protobuf-go does (an unknown field to it, not an error)", () => {
    // type as a length-delimited field, a member as a varint: both skipped; the packet is then an empty DIAL_REQ.
    assert.deepEqual(decodePacket(Uint8Array.of(0x0a, 0x00)), decodePacket(new Uint8Array(0)));
    assert.deepEqual(decodePacket(Uint8Array.of(0x28, 0x01)), decodePacket(new Uint8Array(0)));
    // CLOSE_REQ whose connectID comes length-delimited, then as a varint: the first is skipped.
    assert.deepEqual(decodePacket(Uint8Array.of(0x08, 0x02, 0x2a, 0x02, 0x0a, 0x00)), closeRequest(0n));
    assert.deepEqual(decodePacket(Uint8Array.of(0x08, 0x02, 0x2a, 0x04, 0x0a, 0x00, 0x08, 0x07)), closeRequest(7n));
  });

  it("reports unknown packet types without failing", () => {
    assert.deepEqual(decodePacket(Uint8Array.of(0x08, 0x2a)), { type: "UNKNOWN", typeValue: 42 });
  });

  it("merges repeated occurrences of the member and lets a later oneof member win", () => {
    // DATA with connectID in one occurrence and data in another.
    const bytes = Uint8Array.of(0x08, 0x04, 0x22, 0x02, 0x08, 0x03, 0x22, 0x03, 0x1a, 0x01, 0x61);
    assert.deepEqual(decodePacket(bytes), dataPacket(3n, Uint8Array.of(0x61)));
    // type DATA but closeRequest set after data: the data member is cleared.
    const cleared = Uint8Array.of(0x08, 0x04, 0x22, 0x02, 0x08, 0x03, 0x2a, 0x02, 0x08, 0x01);
    assert.deepEqual(decodePacket(cleared), dataPacket(0n, new Uint8Array(0)));
    // DATA{connectID 7}, CLOSE_REQ, DATA{data "a"}: the CLOSE_REQ replaced the first DATA, so the
    // last one starts afresh (protobuf-go: DATA{connectID 0, data "a"}).
    const replaced = Uint8Array.of(0x08, 0x04, 0x22, 0x02, 0x08, 0x07, 0x2a, 0x02, 0x08, 0x01, 0x22, 0x03, 0x1a, 0x01, 0x61);
    assert.deepEqual(decodePacket(replaced), dataPacket(0n, Uint8Array.of(0x61)));
  });

  it("round-trips the WINDOW_UPDATE extension on a stream that negotiated it", () => {
    const p = windowUpdate(12n, 1 << 20);
    assert.deepEqual(decodePacket(encodePacket(p), { windowUpdates: true }), p);
  });

  it("reads type 100 and field 100 as upstream's proto does on a stream that did not negotiate the extension", () => {
    // Unknown type 100, as any unknown type: reported, not an error (not even with a bad member).
    assert.deepEqual(decodePacket(Uint8Array.of(0x08, 0x64)), { type: "UNKNOWN", typeValue: 100 });
    assert.deepEqual(decodePacket(encodePacket(windowUpdate(12n, 1 << 20))), { type: "UNKNOWN", typeValue: 100 });
    assert.deepEqual(decodePacket(Uint8Array.of(0x08, 0x64, 0xa2, 0x06, 0x02, 0x08, 0x01)), { type: "UNKNOWN", typeValue: 100 });
    // DATA{5,"hello"} followed by an unknown field 100: skipped, the data kept (protobuf-go: DATA{5,"hello"}).
    const data = Buffer.concat([encodePacket(dataPacket(5n, Buffer.from("hello"))), Uint8Array.of(0xa2, 0x06, 0x00)]);
    assert.deepEqual(decodePacket(data), dataPacket(5n, Buffer.from("hello")));
    // With the extension negotiated, field 100 is a oneof member and the later member wins, as protobuf.
    assert.deepEqual(decodePacket(data, { windowUpdates: true }), dataPacket(0n, new Uint8Array(0)));
  });

  describe("rejects malformed bytes with a typed error", () => {
    const cases: Array<[string, number[]]> = [
      ["a truncated varint", [0x08, 0x84]],
      ["a varint longer than 10 bytes", [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
      ["a field number past 2^29-1 (a tag that would wrap to field 4)", [0xa2, 0x80, 0x80, 0x80, 0x10, 0x00]],
      ["a 10-byte varint over 64 bits", [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]],
      ["a 10-byte varint over 64 bits in a skipped field", [0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
      ["a length past the end", [0x2a, 0x05, 0x08]],
      ["a length past the end inside a member", [0x22, 0x03, 0x1a, 0x09, 0x01]],
      ["field number 0", [0x00, 0x01]],
      ["invalid wire type 7", [0x0f]],
      ["an unterminated group", [0x0b, 0x08, 0x01]],
      ["a truncated fixed64", [0x09, 0x01, 0x02]],
      ["a zero-credit window update (extension negotiated)", [0x08, 0x64, 0xa2, 0x06, 0x02, 0x08, 0x01]],
    ];
    for (const [name, bytes] of cases) {
      it(name, () => {
        assert.throws(() => decodePacket(Uint8Array.from(bytes), { windowUpdates: true }), (e: unknown) => e instanceof TunnelError && e.code === "PROTOCOL");
      });
    }
  });

  it("never throws anything but TunnelError on random input", () => {
    let seed = 0x5eed;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
    for (let i = 0; i < 5000; i++) {
      const base = encodePacket(vectors[i % vectors.length]![1]).subarray(0, 64);
      const bytes = Uint8Array.from(base);
      for (let k = 0; k < 3; k++) bytes[rand() % Math.max(1, bytes.length)] = rand();
      try {
        decodePacket(bytes.subarray(0, rand() % (bytes.length + 1)));
      } catch (e) {
        assert.ok(e instanceof TunnelError, `non-TunnelError for ${Buffer.from(bytes).toString("hex")}: ${String(e)}`);
      }
    }
  });
});

function normalise(p: Packet): unknown {
  return p.type === "DATA" ? { ...p, data: Buffer.from(p.data).toString("hex") } : p;
}
