// @grpc/grpc-js as kube-apiserver against our gRPC frontend over its Unix socket: a generic bidi
// /ProxyService/Proxy stream with protobufjs-encoded Packets, one stream per dial, as the
// konnectivity-client drives it (shared/spec/konnectivity.md §1.5). A real agent serves
// 127.0.0.1; a raw-packet agent that never answers serves 127.0.0.3 (for pending dials).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { closeDial, closeRequest, closeResponse, dataPacket, dialRequest } from "../src/protocol/index.js";
import { GrpcJsFrontend } from "./helpers/grpcjs-peers.js";
import { attachRawAgent, type RawPeer } from "./helpers/raw-peers.js";
import { Cleanup, startDestination, startStack, type Destination, type Stack } from "./helpers/stack.js";
import { waitFor, within } from "./helpers/wait.js";

const text = (b: Uint8Array) => Buffer.from(b).toString();

describe("grpc-js client against the gRPC frontend (Unix socket)", () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());
  let stack: Stack;
  let echo: Destination;
  let mute: RawPeer;

  const open = (): GrpcJsFrontend => {
    const f = GrpcJsFrontend.open(stack.grpcPath);
    cleanup.after(() => f.close());
    return f;
  };

  before(async () => {
    stack = await startStack(cleanup, { proxyStrategies: ["destHost"], dialTimeoutMs: 10_000 });
    await stack.startAgent("node-1", "ipv4=127.0.0.1");
    mute = await attachRawAgent(stack.agentPort, stack.pki, "node-3", "ipv4=127.0.0.3");
    cleanup.after(() => mute.destroy());
    echo = await startDestination(cleanup);
  });

  it("DIAL_REQ → DIAL_RSP, DATA both ways, CLOSE_REQ → CLOSE_RSP, then the stream ends OK", async () => {
    const f = open();
    f.send(dialRequest(echo.address, 6129484611666145821n));
    const rsp = await f.packets.expect("DIAL_RSP");
    assert.equal(rsp.random, 6129484611666145821n);
    assert.equal(rsp.error, "");
    assert.ok(rsp.connectID > 0n);
    const c = rsp.connectID;
    await waitFor(() => echo.open === 1, "the destination socket");
    // A payload larger than one 64 KiB chunk, sent as one message: it comes back in pieces.
    const payload = Buffer.alloc(300_000, 0);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    f.send(dataPacket(c, payload));
    const received: Buffer[] = [];
    let total = 0;
    while (total < payload.length) {
      const d = await f.packets.expect("DATA");
      assert.equal(d.connectID, c);
      received.push(Buffer.from(d.data));
      total += d.data.length;
    }
    assert.ok(Buffer.concat(received).equals(payload), "the echo came back intact");
    f.send(closeRequest(c));
    assert.deepEqual(await f.packets.next(), closeResponse(c));
    const status = await within(f.status, "the stream to end");
    assert.equal(status.code, grpc.status.OK);
    await waitFor(() => echo.open === 0, "the destination socket to close");
    await stack.settled();
  });

  it("DIAL_CLS while the dial is pending: the agent gets DIAL_CLS, no DIAL_RSP comes, the stream ends", async () => {
    const f = open();
    f.send(dialRequest("127.0.0.3:10250", 4242n));
    const req = await mute.packets.expect("DIAL_REQ");
    assert.deepEqual(req, dialRequest("127.0.0.3:10250", 4242n));
    f.send(closeDial(4242n));
    assert.deepEqual(await mute.packets.next(), closeDial(4242n));
    const status = await within(f.status, "the stream to end");
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(f.packets.all, [], "no DIAL_RSP for a cancelled dial");
    await stack.settled();
  });

  it("answers DIAL_RSP \"No agent available\" at once for a node without an agent", async () => {
    const f = open();
    const started = performance.now();
    f.send(dialRequest("127.0.0.9:10250", 77n));
    const rsp = await f.packets.expect("DIAL_RSP", 1000);
    assert.ok(performance.now() - started < 1000);
    assert.equal(rsp.random, 77n);
    assert.equal(rsp.connectID, 0n);
    assert.match(rsp.error, /^No agent available/);
    await within(f.status, "the stream to end after the failed dial");
    await stack.settled();
  });

  it("refuses a second DIAL_REQ on one stream and keeps the first connection working", async () => {
    const f = open();
    f.send(dialRequest(echo.address, 1n));
    const { connectID } = await f.packets.expect("DIAL_RSP");
    f.send(dialRequest(echo.address, 2n));
    const second = await f.packets.expect("DIAL_RSP");
    assert.equal(second.random, 2n);
    assert.equal(second.connectID, 0n);
    assert.notEqual(second.error, "");
    f.send(dataPacket(connectID, Buffer.from("still here")));
    assert.equal(text((await f.packets.expect("DATA")).data), "still here");
    assert.equal(echo.accepted, 2, "only the first DIAL_REQ dialed (one earlier test connection)");
    f.send(closeRequest(connectID));
    await f.packets.expect("CLOSE_RSP");
    await within(f.status, "the stream to end");
    await waitFor(() => echo.open === 0, "the destination socket to close");
    await stack.settled();
  });

  it("DATA before DIAL_REQ gets CLOSE_RSP \"backend not initialized\"", async () => {
    const f = open();
    f.send(dataPacket(12n, Buffer.from("early")));
    assert.deepEqual(await f.packets.next(), closeResponse(12n, "backend not initialized"));
    f.end();
    await within(f.status, "the stream to end");
    await stack.settled();
  });

  it("cancelling the stream after DIAL_RSP closes the destination connection", async () => {
    const f = open();
    f.send(dialRequest(echo.address, 9n));
    await f.packets.expect("DIAL_RSP");
    await waitFor(() => echo.open === 1, "the destination socket");
    f.cancel();
    await waitFor(() => echo.open === 0, "the destination socket to close after the frontend cancelled");
    await stack.settled();
  });
});
