// The server's limits (docs/operations.md "Limits") against a frontend that opens dials faster than
// agents answer them: a limit checked only when a dial starts must count the dials still pending.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { dialRequest, dialResponse, type PacketOf } from "../src/protocol/index.js";
import { attachRawAgent, openRawFrontend, type RawPeer } from "./helpers/raw-peers.js";
import { startStack } from "./helpers/stack.js";
import { waitFor } from "./helpers/wait.js";

describe("--max-connections", () => {
  it("holds when dials are opened at once: pending dials count against it", async (t) => {
    const stack = await startStack(t, { maxConnections: 2 });
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const frontends: RawPeer[] = [];
    t.after(() => frontends.forEach((f) => f.destroy()));
    // Six dials before the agent answers any: the server must not send more than two to it.
    for (let i = 0; i < 6; i++) {
      const frontend = await openRawFrontend(stack.grpcPath);
      frontends.push(frontend);
      frontend.send(dialRequest("10.0.0.1:10250", BigInt(100 + i)));
    }
    const answered = () => frontends.filter((f) => f.packets.all.length > 0).length;
    await waitFor(() => stack.server.proxy.pendingDialCount + answered() === 6, "every dial is pending or answered");
    const sent = agent.packets.all.filter((p): p is PacketOf<"DIAL_REQ"> => p.type === "DIAL_REQ");
    let connectID = 1n;
    for (const req of sent) agent.send(dialResponse(req.random, connectID++));
    await waitFor(() => frontends.every((f) => f.packets.all.some((p) => p.type === "DIAL_RSP")), "every frontend got an answer");
    assert.equal(stack.server.proxy.establishedCount, 2, "established connections with --max-connections=2");
    const refused = frontends.map((f) => f.packets.all.find((p): p is PacketOf<"DIAL_RSP"> => p.type === "DIAL_RSP")!).filter((p) => p.error !== "");
    assert.equal(refused.length, 4);
    assert.ok(refused.every((p) => p.error.startsWith("too many open connections")), refused[0]?.error);
  });
});
