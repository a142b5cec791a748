import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { closeRequest, dataPacket, encodePacket, type Packet } from "../protocol/index.js";
import { GrpcClient, GrpcServer, GrpcStatus, http2Implementations, type GrpcServerCall } from "../transport/index.js";
import { GrpcPacketChannel, receivedDataFrame, type CallEnds } from "./packet-channel.js";

const serverEnds: CallEnds<GrpcServerCall> = { finish: (call) => call.end(GrpcStatus.OK), abort: (call) => call.end(GrpcStatus.UNAVAILABLE) };

for (const impl of http2Implementations) {
  test(`on ${impl} HTTP/2: a received DATA message is handed on in place, prefix and all, only while its packet is dispatched`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "nt-channel-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const seen: Array<{ packet: Packet; frame: Buffer | undefined }> = [];
    let heldData: Uint8Array | undefined;
    const server = new GrpcServer({
      "/S/M": (call) => {
        new GrpcPacketChannel(call, serverEnds).start({
          packet: (packet) => {
            if (packet.type === "DATA") heldData ??= packet.data;
            seen.push({ packet, frame: packet.type === "DATA" ? receivedDataFrame(packet.data) : undefined });
          },
          drain: () => {},
          close: () => {},
        });
      },
    }, { http2: impl });
    t.after(() => server.destroy());
    const path = join(dir, "s.sock");
    await server.listen({ path });
    const client = await GrpcClient.connect({ path }, { http2: impl });
    t.after(() => client.destroy());
    const call = client.openStream("/S/M");
    const packets = [dataPacket(7n, new Uint8Array(4096).fill(1)), dataPacket(7n, new Uint8Array(3).fill(2)), dataPacket(7n, Uint8Array.of(9), "an agent's error"), closeRequest(7n)];
    for (const p of packets) call.write(encodePacket(p));
    for (let i = 0; i < 200 && seen.length < packets.length; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(seen.length, packets.length);
    for (const i of [0, 1]) {
      const { frame } = seen[i]!;
      const encoded = encodePacket(packets[i]!);
      assert.ok(frame, `packet ${i}: handed on in place`);
      assert.deepEqual([...frame.subarray(0, 5)], [0, ...[3, 2, 1, 0].map((s) => (encoded.length >>> (8 * s)) & 0xff)], "the gRPC prefix");
      assert.ok(frame.subarray(5).equals(encoded), "the message bytes as the agent encoded them");
      const data = (seen[i]!.packet as { data: Uint8Array }).data;
      assert.equal(frame.buffer, data.buffer, "no copy: the frame shares the received bytes");
    }
    assert.equal(seen[2]!.frame, undefined, "DATA with an error is encoded anew");
    assert.equal(receivedDataFrame(heldData!), undefined, "outside its dispatch a payload is not recognised");
    call.end();
  });
}

test("a DATA message with more than encodePacket writes, or in Node's shared pool, is not handed on in place", () => {
  const call = Object.assign(new EventEmitter(), {
    write: () => true, writeFramed: () => true, writableLength: 0, pause: () => {}, resume: () => {},
  });
  const frames: Array<Buffer | undefined> = [];
  new GrpcPacketChannel(call, { finish: () => {}, abort: () => {} }).start({
    packet: (p) => frames.push(p.type === "DATA" ? receivedDataFrame(p.data) : undefined),
    drain: () => {},
    close: () => {},
  });
  const framedInOwnBuffer = (message: Uint8Array) => {
    const b = Buffer.allocUnsafeSlow(message.length + 5);
    b[0] = 0;
    b.writeUInt32BE(message.length, 1);
    b.set(message, 5);
    return b.subarray(5);
  };
  const plain = encodePacket(dataPacket(3n, new Uint8Array(100).fill(7)));
  call.emit("message", framedInOwnBuffer(plain));
  // The same packet with an unknown field (number 9, varint 1) after its member: valid protobuf, not ours.
  call.emit("message", framedInOwnBuffer(Buffer.concat([plain, Uint8Array.of(9 << 3, 1)])));
  // In Node's pool: the bytes around belong to other allocations.
  const pooled = Buffer.allocUnsafe(plain.length + 5);
  assert.equal(pooled.buffer.byteLength, Buffer.poolSize);
  pooled[0] = 0;
  pooled.writeUInt32BE(plain.length, 1);
  pooled.set(plain, 5);
  call.emit("message", pooled.subarray(5));
  assert.ok(frames[0]?.subarray(5).equals(plain), "the canonical message in its own buffer is handed on");
  assert.equal(frames[1], undefined, "an extra field: encoded anew");
  assert.equal(frames[2], undefined, "in the shared pool: encoded anew");
});
