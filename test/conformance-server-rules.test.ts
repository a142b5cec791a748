// The server's side of the packet rules (shared/spec/konnectivity.md §1.3, §1.5, §2.2, §2.5),
// checked with raw-packet peers on real sockets: fake agents on /AgentService/Connect over
// mTLS, fake kube-apiservers on /ProxyService/Proxy over the Unix socket, and HTTP CONNECT
// clients. After each scenario the server's pending and established tables are empty again.
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import {
  closeDial, closeRequest, closeResponse, dataPacket, dialRequest, dialResponse, drain, encodePacket, type PacketOf,
} from "../src/protocol/index.js";
import { GrpcStatus, GrpcStatusError } from "../src/transport/index.js";
import { httpConnect, readToEnd } from "./helpers/connect-client.js";
import { attachRawAgent, connectRawAgent, openRawFrontend, type RawPeer } from "./helpers/raw-peers.js";
import { startStack, type Stack } from "./helpers/stack.js";
import { waitFor, within } from "./helpers/wait.js";

const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const text = (b: Uint8Array) => Buffer.from(b).toString();

/** A fake kube-apiserver stream that has sent DIAL_REQ for `address`. */
async function dialVia(stack: Stack, address: string, random: bigint): Promise<RawPeer> {
  const frontend = await openRawFrontend(stack.grpcPath);
  frontend.send(dialRequest(address, random));
  return frontend;
}

/** The agent takes the next DIAL_REQ and answers it with `connectID`. */
async function answerDial(agent: RawPeer, connectID: bigint): Promise<PacketOf<"DIAL_REQ">> {
  const req = await agent.packets.expect("DIAL_REQ");
  agent.send(dialResponse(req.random, connectID));
  return req;
}

async function health(stack: Stack, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${stack.healthPort}${path}`);
  return { status: res.status, body: await res.text() };
}

describe("agent connect (§1.3)", () => {
  it("answers serverid and servercount in the response headers before any packet", async (t) => {
    const stack = await startStack(t, { serverCount: 3 });
    const agent = await connectRawAgent(stack.agentPort, stack.pki, { agentid: "node-1", agentidentifiers: "ipv4=127.0.0.1" });
    t.after(() => agent.destroy());
    const headers = await within(agent.headers, "response headers");
    assert.deepEqual(headers.get("serverid"), ["conformance-server"]);
    assert.deepEqual(headers.get("servercount"), ["3"]);
    assert.equal(agent.packetsBeforeHeaders, 0, "no packet before the headers");
    await agent.packets.expectNothing(100);
    // And the agent is now routable: a dial reaches it.
    const frontend = await dialVia(stack, "127.0.0.1:10250", 5n);
    const req = await agent.packets.expect("DIAL_REQ");
    assert.deepEqual(req, dialRequest("127.0.0.1:10250", 5n));
    frontend.destroy();
    await stack.settled();
  });

  for (const [name, metadata] of [
    ["two agentid values", { agentid: ["node-1", "node-2"], agentidentifiers: "" }],
    ["no agentid", { agentidentifiers: "ipv4=127.0.0.1" }],
    ["two agentidentifiers values", { agentid: "node-1", agentidentifiers: ["ipv4=127.0.0.1", "host=n1"] }],
    // §1.3 "reject if bad": what Go's url.ParseQuery refuses.
    ["agentidentifiers Go cannot parse (a bad escape)", { agentid: "node-1", agentidentifiers: "ipv4=127.0.0.1&host=n%zz" }],
    ["agentidentifiers Go cannot parse (a semicolon)", { agentid: "node-1", agentidentifiers: "ipv4=127.0.0.1;host=n1" }],
  ] as const) {
    it(`refuses an agent with ${name}, before sending headers`, async (t) => {
      const stack = await startStack(t);
      const agent = await connectRawAgent(stack.agentPort, stack.pki, metadata);
      t.after(() => agent.destroy());
      const status = await within(agent.status, "the refusal");
      assert.equal(status.code, GrpcStatus.INVALID_ARGUMENT);
      await assert.rejects(agent.headers, (err: unknown) => err instanceof GrpcStatusError && err.grpcStatus === GrpcStatus.INVALID_ARGUMENT);
      assert.equal(stack.server.proxy.registry.agentCount, 0);
      assert.equal((await health(stack, "/readyz")).status, 500);
    });
  }
});

describe("health endpoints (§2.5)", () => {
  it("/healthz is 200 always; /readyz is 500 until an agent connects, 200 while one is, 500 after", async (t) => {
    const stack = await startStack(t);
    assert.deepEqual(await health(stack, "/healthz"), { status: 200, body: "ok" });
    assert.deepEqual(await health(stack, "/readyz"), { status: 500, body: "no connection to any proxy agent" });
    assert.deepEqual(await health(stack, "/ready"), { status: 500, body: "no connection to any proxy agent" });
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1", "ipv4=127.0.0.1");
    assert.deepEqual(await health(stack, "/readyz"), { status: 200, body: "ok" });
    assert.deepEqual(await health(stack, "/healthz"), { status: 200, body: "ok" });
    agent.destroy();
    await waitFor(() => stack.server.proxy.registry.agentCount === 0, "the agent to be removed");
    assert.deepEqual(await health(stack, "/readyz"), { status: 500, body: "no connection to any proxy agent" });
    assert.deepEqual(await health(stack, "/healthz"), { status: 200, body: "ok" });
  });
});

describe("packets from the agent (§1.5)", () => {
  it("a DIAL_RSP for an unknown dial with a connectID gets CLOSE_REQ; with connectID 0 nothing", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    agent.send(dialResponse(987654321n, 7n));
    assert.deepEqual(await agent.packets.next(), closeRequest(7n));
    agent.send(dialResponse(987654322n, 0n, "dial tcp 10.0.0.1:10250: connect: connection refused"));
    await agent.packets.expectNothing(150);
    await stack.settled();
  });

  it("a DIAL_RSP without error but with connectID 0 fails the dial (such a connection could carry nothing)", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const connecting = httpConnect({ path: stack.connectPath }, "127.0.0.1:10250");
    const req = await agent.packets.expect("DIAL_REQ");
    agent.send(dialResponse(req.random, 0n));
    const { socket, head, rest } = await connecting;
    const answer = head + (await readToEnd(socket, rest));
    assert.match(answer, /^HTTP\/1\.1 502 Bad Gateway\r\n[\s\S]*agent answered the dial with connection id 0/);
    await stack.settled();
  });

  it("DATA for an unknown connectID gets CLOSE_REQ; DATA with connectID 0 is dropped", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    agent.send(dataPacket(42n, bytes("stray")));
    assert.deepEqual(await agent.packets.next(), closeRequest(42n));
    agent.send(dataPacket(0n, bytes("nobody")));
    await agent.packets.expectNothing(150);
  });

  it("relays DATA both ways, then CLOSE_REQ from the frontend reaches the agent and its CLOSE_RSP the frontend", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const frontend = await dialVia(stack, "127.0.0.1:10250", 77n);
    t.after(() => frontend.destroy());
    // The DIAL_REQ is forwarded verbatim (§1.5 step 3).
    assert.deepEqual(await answerDial(agent, 3n), dialRequest("127.0.0.1:10250", 77n));
    assert.deepEqual(await frontend.packets.next(), dialResponse(77n, 3n));
    assert.equal(stack.server.proxy.establishedCount, 1);
    frontend.send(dataPacket(3n, bytes("to the kubelet")));
    const up = await agent.packets.expect("DATA");
    assert.equal(up.connectID, 3n);
    assert.equal(text(up.data), "to the kubelet");
    agent.send(dataPacket(3n, bytes("from the kubelet")));
    const down = await frontend.packets.expect("DATA");
    assert.equal(down.connectID, 3n);
    assert.equal(text(down.data), "from the kubelet");
    frontend.send(closeRequest(3n));
    assert.deepEqual(await agent.packets.next(), closeRequest(3n));
    agent.send(closeResponse(3n));
    assert.deepEqual(await frontend.packets.next(), closeResponse(3n));
    const status = await within(frontend.status, "the frontend stream to end");
    assert.equal(status.code, GrpcStatus.OK);
    await stack.settled();
  });

  it("an unsolicited CLOSE_RSP from the agent (destination closed) ends the frontend's connection", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const frontend = await dialVia(stack, "127.0.0.1:10250", 78n);
    t.after(() => frontend.destroy());
    await answerDial(agent, 1n);
    await frontend.packets.expect("DIAL_RSP");
    agent.send(dataPacket(1n, bytes("last words")));
    agent.send(closeResponse(1n));
    assert.equal(text((await frontend.packets.expect("DATA")).data), "last words", "data before the close is delivered");
    assert.deepEqual(await frontend.packets.next(), closeResponse(1n));
    await within(frontend.status, "the frontend stream to end");
    await agent.packets.expectNothing(100);
    await stack.settled();
  });

  it("forwards the error text of the agent's CLOSE_RSP to the frontend (§1.5 step 7)", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const frontend = await dialVia(stack, "127.0.0.1:10250", 79n);
    t.after(() => frontend.destroy());
    await answerDial(agent, 7n);
    await frontend.packets.expect("DIAL_RSP");
    agent.send(closeResponse(7n, "read tcp 127.0.0.1:10250: connection reset by peer"));
    assert.deepEqual(await frontend.packets.next(), closeResponse(7n, "read tcp 127.0.0.1:10250: connection reset by peer"));
    await within(frontend.status, "the frontend stream to end");
    await stack.settled();
  });

  it("DIAL_CLS from the agent fails the pending dial at once", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const frontend = await dialVia(stack, "127.0.0.1:10250", 79n);
    t.after(() => frontend.destroy());
    await agent.packets.expect("DIAL_REQ");
    agent.send(closeDial(79n));
    // As upstream, the DIAL_CLS itself reaches the frontend (konnectivity-client: "dial closed").
    const cls = await frontend.packets.expect("DIAL_CLS", 1000);
    assert.equal(cls.random, 79n);
    await stack.settled();
  });
});

describe("when the agent stream dies (§1.5, upstream #126)", () => {
  it("established connections get CLOSE_RSP at their frontend and pending dials fail within a second", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["destHost"], dialTimeoutMs: 30_000 });
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-5", "ipv4=127.0.0.5");
    t.after(() => agent.destroy());
    const established = await dialVia(stack, "127.0.0.5:10250", 101n);
    t.after(() => established.destroy());
    await answerDial(agent, 1n);
    assert.deepEqual(await established.packets.next(), dialResponse(101n, 1n));
    const pendingGrpc = await dialVia(stack, "127.0.0.5:10250", 102n);
    t.after(() => pendingGrpc.destroy());
    await agent.packets.expect("DIAL_REQ");
    const pendingConnect = httpConnect({ path: stack.connectPath }, "127.0.0.5:10250");
    await agent.packets.expect("DIAL_REQ");
    assert.equal(stack.server.proxy.pendingDialCount, 2);

    const killedAt = performance.now();
    agent.destroy();
    // Upstream's server sends an empty CloseResponse{connectID} for each established connection.
    assert.deepEqual(await established.packets.expect("CLOSE_RSP", 1000), closeResponse(1n));
    const rsp = await pendingGrpc.packets.expect("DIAL_RSP", 1000);
    assert.equal(rsp.random, 102n);
    assert.match(rsp.error, /^agent disconnected — agent node-5 disconnected/);
    const { head, socket, rest } = await pendingConnect;
    const body = await readToEnd(socket, rest);
    const elapsedMs = performance.now() - killedAt;
    assert.ok(elapsedMs < 1000, `pending dials failed after ${elapsedMs.toFixed(0)} ms`);
    assert.match(head, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    assert.match(body, /^Backend context error: agent disconnected/);
    await stack.settled();
  });

  it("a frontend stream that dies sends DIAL_CLS for its pending dial and CLOSE_REQ for its connection", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const pending = await dialVia(stack, "127.0.0.1:10250", 201n);
    await agent.packets.expect("DIAL_REQ");
    pending.destroy();
    assert.deepEqual(await agent.packets.next(), closeDial(201n));
    const open = await dialVia(stack, "127.0.0.1:10250", 202n);
    await answerDial(agent, 9n);
    await open.packets.expect("DIAL_RSP");
    open.destroy();
    assert.deepEqual(await agent.packets.next(), closeRequest(9n));
    agent.send(closeResponse(9n));
    await stack.settled();
  });
});

describe("half-close (Konnectivity has none: EOF ends the stream, as upstream's handlers return on io.EOF)", () => {
  it("a frontend that half-closes during a pending dial gets its stream ended and the agent DIAL_CLS", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const frontend = await dialVia(stack, "127.0.0.1:10250", 601n);
    t.after(() => frontend.destroy());
    await agent.packets.expect("DIAL_REQ");
    frontend.end();
    assert.deepEqual(await agent.packets.next(), closeDial(601n));
    assert.equal((await within(frontend.status, "the frontend stream to end")).code, GrpcStatus.OK);
    await stack.settled();
  });

  it("an agent that half-closes its stream is removed, and its connections closed", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const frontend = await dialVia(stack, "127.0.0.1:10250", 602n);
    t.after(() => frontend.destroy());
    await answerDial(agent, 1n);
    await frontend.packets.expect("DIAL_RSP");
    agent.end();
    assert.equal((await frontend.packets.expect("CLOSE_RSP")).connectID, 1n);
    assert.equal((await within(agent.status, "the agent stream to end")).code, GrpcStatus.OK);
    await waitFor(() => stack.server.proxy.registry.agentCount === 0, "the agent to be removed");
    await stack.settled();
  });
});

describe("agent selection (§2.2)", () => {
  /** Which of `agents` received the next DIAL_REQ (the others must receive nothing). */
  async function receiverOf(agents: Record<string, RawPeer>): Promise<string> {
    await new Promise((r) => setTimeout(r, 100));
    const got = Object.entries(agents).filter(([, a]) => a.packets.all.some((p) => p.type === "DIAL_REQ"));
    assert.equal(got.length, 1, `exactly one agent got the dial: ${got.map(([n]) => n).join(", ")}`);
    const [name, agent] = got[0]!;
    await agent.packets.expect("DIAL_REQ");
    agent.packets.all.length = 0;
    return name;
  }

  async function threeAgents(stack: Stack, t: TestContext) {
    const agents = {
      host: await attachRawAgent(stack.agentPort, stack.pki, "host-agent", "ipv4=127.0.0.7&host=node-7"),
      route: await attachRawAgent(stack.agentPort, stack.pki, "route-agent", "default-route=true"),
      plain: await attachRawAgent(stack.agentPort, stack.pki, "plain-agent", ""),
    };
    t.after(() => Object.values(agents).forEach((a) => a.destroy()));
    return agents;
  }

  it("destHost, defaultRoute, default: tried in flag order, falling through when nothing matches", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["destHost", "defaultRoute", "default"] });
    const agents = await threeAgents(stack, t);
    const f1 = await dialVia(stack, "127.0.0.7:10250", 1n);
    assert.equal(await receiverOf(agents), "host");
    const f2 = await dialVia(stack, "NODE-7:10250", 2n);
    assert.equal(await receiverOf(agents), "host", "host identifiers match case-insensitively");
    const f3 = await dialVia(stack, "127.0.0.9:10250", 3n);
    assert.equal(await receiverOf(agents), "route");
    for (const f of [f1, f2, f3]) f.destroy();
    await stack.settled();
  });

  it("the flag order decides: defaultRoute before destHost wins even for a node's own IP", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["defaultRoute", "destHost"] });
    const agents = await threeAgents(stack, t);
    const f = await dialVia(stack, "127.0.0.7:10250", 1n);
    assert.equal(await receiverOf(agents), "route");
    f.destroy();
    await stack.settled();
  });

  it("default picks any agent; destHost alone answers No agent available at once for an unknown node", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["destHost", "default"] });
    const plain = await attachRawAgent(stack.agentPort, stack.pki, "plain-agent", "");
    t.after(() => plain.destroy());
    const f = await dialVia(stack, "127.0.0.9:10250", 1n);
    await plain.packets.expect("DIAL_REQ");
    f.destroy();
    await stack.settled();

    const only = await startStack(t, { proxyStrategies: ["destHost"] });
    const other = await attachRawAgent(only.agentPort, only.pki, "host-agent", "ipv4=127.0.0.7");
    t.after(() => other.destroy());
    const started = performance.now();
    const lonely = await dialVia(only, "127.0.0.9:10250", 11n);
    t.after(() => lonely.destroy());
    const rsp = await lonely.packets.expect("DIAL_RSP", 1000);
    assert.ok(performance.now() - started < 1000);
    assert.equal(rsp.random, 11n);
    assert.equal(rsp.connectID, 0n);
    assert.match(rsp.error, /^No agent available — /);
    await within(lonely.status, "the stream to end after the failed dial");
    await other.packets.expectNothing(50);
    await only.settled();
  });

  it("DRAIN: new dials go to another agent while one exists, else still to the draining one", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["default"] });
    const a = await attachRawAgent(stack.agentPort, stack.pki, "agent-a");
    const b = await attachRawAgent(stack.agentPort, stack.pki, "agent-b");
    t.after(() => [a, b].forEach((x) => x.destroy()));
    a.send(drain());
    await waitFor(() => stack.server.proxy.registry.streamsOf("agent-a")[0]?.isDraining === true, "agent-a draining");
    const frontends: RawPeer[] = [];
    for (let i = 0; i < 12; i++) frontends.push(await dialVia(stack, "127.0.0.1:10250", BigInt(300 + i)));
    await waitFor(() => b.packets.all.length === 12, "12 dials at agent-b");
    assert.equal(a.packets.all.length, 0, "the draining agent got no dial");
    b.destroy();
    // Agent b's pending dials fail; agent a is the only one left and gets the next dial although it drains.
    await waitFor(() => stack.server.proxy.registry.agentCount === 1, "agent-b removed");
    const last = await dialVia(stack, "127.0.0.1:10250", 400n);
    frontends.push(last);
    const req = await a.packets.expect("DIAL_REQ");
    assert.equal(req.random, 400n);
    for (const f of frontends) f.destroy();
    await stack.settled();
  });
});

describe("frontend stream rules (§1.5)", () => {
  it("CLOSE_REQ before any DIAL_REQ gets CLOSE_RSP \"backend uninitialized\" and the stream goes on; DATA gets \"backend not initialized\" and the stream ends", async (t) => {
    const stack = await startStack(t);
    const frontend = await openRawFrontend(stack.grpcPath);
    t.after(() => frontend.destroy());
    frontend.send(closeRequest(6n));
    assert.deepEqual(await frontend.packets.next(), closeResponse(6n, "backend uninitialized"));
    frontend.send(dataPacket(5n, bytes("too early")));
    assert.deepEqual(await frontend.packets.next(), closeResponse(5n, "backend not initialized"));
    await within(frontend.status, "the stream to end, as upstream's handler returns");
  });

  it("DATA with connectID 0 is dropped (§1.2): the connection goes on", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const frontend = await dialVia(stack, "127.0.0.1:10250", 502n);
    t.after(() => frontend.destroy());
    await answerDial(agent, 7n);
    await frontend.packets.expect("DIAL_RSP");
    frontend.send(dataPacket(0n, bytes("no id")));
    frontend.send(dataPacket(7n, bytes("with id")));
    const forwarded = await agent.packets.expect("DATA");
    assert.deepEqual([forwarded.connectID, Buffer.from(forwarded.data).toString()], [7n, "with id"], "only the DATA with the stream's connectID reaches the agent");
    agent.send(dataPacket(7n, bytes("back")));
    const back = await frontend.packets.expect("DATA");
    assert.deepEqual([back.connectID, Buffer.from(back.data).toString()], [7n, "back"]);
    frontend.send(closeRequest(7n));
    assert.deepEqual(await agent.packets.next(), closeRequest(7n));
    agent.send(closeResponse(7n));
    assert.deepEqual(await frontend.packets.expect("CLOSE_RSP"), closeResponse(7n));
    await stack.settled();
  });

  it("packets of unknown types, type 100 included, and an unknown field 100 are ignored on streams without the credit extension", async (t) => {
    // Type 100 and field 100 are nodetunnel's WINDOW_UPDATE only between peers that offered the
    // extension (docs/protocol.md); to upstream's proto, which these raw peers stand for, they are
    // an unknown type and an unknown field.
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const frontend = await dialVia(stack, "127.0.0.1:10250", 503n);
    t.after(() => frontend.destroy());
    await answerDial(agent, 8n);
    await frontend.packets.expect("DIAL_RSP");
    const unknownTypes = [Uint8Array.of(0x08, 0x07), Uint8Array.of(0x08, 0x64), Uint8Array.of(0x08, 0x64, 0xa2, 0x06, 0x02, 0x08, 0x01)];
    const withField100 = (p: Uint8Array) => Buffer.concat([p, Uint8Array.of(0xa2, 0x06, 0x00)]);
    for (const m of unknownTypes) frontend.sendBytes(m);
    frontend.sendBytes(withField100(encodePacket(dataPacket(8n, bytes("to the agent")))));
    const forwarded = await agent.packets.expect("DATA");
    assert.deepEqual([forwarded.connectID, text(forwarded.data)], [8n, "to the agent"], "the DATA's bytes survive the unknown field");
    for (const m of unknownTypes) agent.sendBytes(m);
    agent.sendBytes(withField100(encodePacket(dataPacket(8n, bytes("to the frontend")))));
    const back = await frontend.packets.expect("DATA");
    assert.deepEqual([back.connectID, text(back.data)], [8n, "to the frontend"]);
    frontend.send(closeRequest(8n));
    assert.deepEqual(await agent.packets.next(), closeRequest(8n));
    agent.send(closeResponse(8n));
    assert.deepEqual(await frontend.packets.expect("CLOSE_RSP"), closeResponse(8n));
    await stack.settled();
  });

  it("DATA for a second connectID on one stream closes both", async (t) => {
    const stack = await startStack(t);
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-1");
    t.after(() => agent.destroy());
    const frontend = await dialVia(stack, "127.0.0.1:10250", 501n);
    t.after(() => frontend.destroy());
    await answerDial(agent, 4n);
    await frontend.packets.expect("DIAL_RSP");
    frontend.send(dataPacket(99n, bytes("wrong id")));
    // As upstream: CLOSE_RSP for both IDs at once, then the stream ends.
    assert.deepEqual(await frontend.packets.next(), closeResponse(99n, "mismatched connection IDs"));
    assert.deepEqual(await frontend.packets.next(), closeResponse(4n, "mismatched connection IDs"));
    await within(frontend.status, "the stream to end");
    // The agent closes this stream's connection; connectID 99 is none of this stream's business.
    assert.deepEqual(await agent.packets.next(), closeRequest(4n));
    agent.send(closeResponse(4n));
    await agent.packets.expectNothing(200);
    await stack.settled();
  });
});
