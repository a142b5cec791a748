import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
