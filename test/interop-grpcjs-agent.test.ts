// Our agent against @grpc/grpc-js as a Konnectivity-like server (AgentService/Connect over TLS,
// serverid/servercount response headers, protobufjs-encoded packets): the agent's connect
// metadata, that it waits for the headers, the agent's packet rules of
// shared/spec/konnectivity.md §1.5 driven with raw packets, DRAIN, and reconnect with backoff.
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions, type AgentOptionsInput } from "../src/agent/index.js";
import { http2Implementations } from "../src/transport/index.js";
import { closeDial, closeRequest, closeResponse, dataPacket, dialRequest, dialResponse, type Packet } from "../src/protocol/index.js";
import { startGrpcJsAgentServer, type GrpcJsAgentCall, type GrpcJsAgentServer } from "./helpers/grpcjs-peers.js";
import { Cleanup, closedPort, sharedPki, silentLog, startDestination, tempDir, type Destination } from "./helpers/stack.js";
import { sleep, waitFor } from "./helpers/wait.js";

const text = (b: Uint8Array) => Buffer.from(b).toString();

async function startAgent(hooks: Pick<TestContext, "after">, input: AgentOptionsInput, registry = new Registry()): Promise<NodetunnelAgent> {
  const agent = await NodetunnelAgent.start(resolveAgentOptions(input), { log: silentLog, registry });
  hooks.after(() => agent.destroy());
  return agent;
}

/**
 * A loopback listener that never accepts and whose accept queue is full, so a connect to it
 * hangs in SYN-SENT: a pending dial on loopback. Node accepts on its own, so Python holds it.
 */
async function startHangingListener(hooks: Pick<TestContext, "after">): Promise<number | undefined> {
  const script = [
    "import socket, sys, time",
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    "fill = socket.create_connection(s.getsockname())  # listen(0) queues one: now it is full",
    "print(s.getsockname()[1], flush=True)",
    "sys.stdin.read()",
  ].join("\n");
  const child = spawn("python3", ["-c", script], { stdio: ["pipe", "pipe", "ignore"] });
  child.on("error", () => {});
  hooks.after(() => child.kill());
  const [line] = (await Promise.race([once(child.stdout, "data"), once(child, "exit").then(() => [undefined]), sleep(3000).then(() => [undefined])])) as [Buffer | undefined];
  return line ? Number(line.toString().trim()) : undefined;
}

/** Sockets of ours in SYN-SENT towards `port` (ss from iproute2), or undefined without ss. */
const synSentTo = (port: number): Promise<number | undefined> =>
  new Promise((resolve) => {
    execFile("ss", ["-Htn", "state", "syn-sent", "dst", `127.0.0.1:${port}`], (err, stdout) =>
      resolve(err ? undefined : stdout.split("\n").filter((l) => l.trim() !== "").length));
  });

const metricValue = async (registry: Registry, name: string): Promise<number> =>
  (await registry.getSingleMetric(name)?.get())?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;

// Both HTTP/2 clients the agent can run its server links on (--server-http2).
for (const serverHttp2 of http2Implementations) describe(`our agent (${serverHttp2} HTTP/2 client) against a grpc-js Konnectivity-like server`, () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());
  let server: GrpcJsAgentServer;
  let agent: NodetunnelAgent;
  let call: GrpcJsAgentCall;
  let echo: Destination;
  let tokenPath: string;

  const dial = async (address: string, random: bigint): Promise<Packet> => {
    call.send(dialRequest(address, random));
    return await call.packets.next();
  };

  before(async () => {
    const pki = await sharedPki();
    server = await startGrpcJsAgentServer({ ca: pki.ca, cert: pki.server.cert, key: pki.server.key });
    cleanup.after(() => server.kill());
    echo = await startDestination(cleanup);
    tokenPath = join(tempDir(cleanup), "token");
    writeFileSync(tokenPath, "token-1\n");
    agent = await startAgent(cleanup, {
      agentId: "node-1",
      identifiers: "ipv4=127.0.0.1&host=node-1",
      proxyServerHost: "127.0.0.1",
      proxyServerPort: server.port,
      tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] },
      serviceAccountTokenPath: tokenPath,
      dialTimeoutMs: 1500,
      drainTimeoutMs: 5000,
      serverHttp2,
    });
    call = await server.nextCall();
  });

  it("sends agentid, agentidentifiers, authorization and nodetunnel-features, then waits for the headers", async () => {
    assert.deepEqual(call.metadata.agentid, ["node-1"]);
    assert.deepEqual(call.metadata.agentidentifiers, ["ipv4=127.0.0.1&host=node-1"], "the flag's text, verbatim, as upstream's agent sends it");
    assert.deepEqual(call.metadata.authorization, ["Bearer token-1"]);
    assert.deepEqual(call.metadata["nodetunnel-features"], ["credit-v1"]);
    await sleep(300);
    assert.equal(agent.isReady, false, "not connected before serverid/servercount arrive");
    assert.deepEqual(agent.status().servers, []);
    call.sendHeaders("grpcjs-server-1", 1);
    await agent.waitForServers(1, 3000);
    assert.equal(agent.status().servers[0]?.serverId, "grpcjs-server-1");
    assert.equal(agent.status().knownServerCount, 1);
    await call.packets.expectNothing(100);
  });

  it("DIAL_REQ → DIAL_RSP{connectID 1}, DATA both ways, CLOSE_REQ → CLOSE_RSP", async () => {
    assert.deepEqual(await dial(echo.address, 1001n), dialResponse(1001n, 1n));
    await waitFor(() => echo.open === 1, "the destination socket");
    call.send(dataPacket(1n, Buffer.from("hello kubelet")));
    const back = await call.packets.expect("DATA");
    assert.equal(back.connectID, 1n);
    assert.equal(text(back.data), "hello kubelet");
    call.send(closeRequest(1n));
    assert.deepEqual(await call.packets.next(), closeResponse(1n));
    await waitFor(() => echo.open === 0, "the destination socket to close");
  });

  it("answers DATA for an unknown connectID with CLOSE_RSP \"unrecognized connectID\"", async () => {
    call.send(dataPacket(99n, Buffer.from("stray")));
    assert.deepEqual(await call.packets.next(), closeResponse(99n, "unrecognized connectID"));
  });

  it("answers CLOSE_REQ for an unknown connectID with CLOSE_RSP \"Unknown connectID\"", async () => {
    call.send(closeRequest(98n));
    assert.deepEqual(await call.packets.next(), closeResponse(98n, "Unknown connectID"));
  });

  it("answers a refused dial with Go's error text and burns its connectID", async () => {
    const port = await closedPort();
    assert.deepEqual(await dial(`127.0.0.1:${port}`, 1002n), dialResponse(1002n, 0n, `dial tcp 127.0.0.1:${port}: connect: connection refused`));
    const next = await dial(echo.address, 1003n);
    assert.deepEqual(next, dialResponse(1003n, 3n), "connectID 2 went to the failed dial");
    call.send(closeRequest(3n));
    assert.deepEqual(await call.packets.next(), closeResponse(3n));
    await waitFor(() => echo.open === 0, "the destination socket to close");
  });

  it("honours DIAL_CLS during a pending dial: no DIAL_RSP and no socket left", async (t) => {
    const port = await startHangingListener(t);
    if (port === undefined) return t.skip("needs python3 to hold a listener whose accept queue is full");
    call.send(dialRequest(`127.0.0.1:${port}`, 1004n));
    await waitFor(() => agent.status().servers.length === 1, "the session");
    await sleep(200);
    const before = await synSentTo(port);
    call.send(closeDial(1004n));
    // Past the agent's 1.5 s dial timeout: an ignored DIAL_CLS (upstream #404) would answer by now.
    await call.packets.expectNothing(1900);
    const left = await synSentTo(port);
    if (before !== undefined) {
      assert.equal(before, 1, "the dial was pending (one SYN-SENT socket)");
      assert.equal(left, 0, "the cancelled dial's socket is gone");
    }
  });

  it("sends DRAIN on drain(), still serves a dial the server sends anyway (as upstream), then ends the stream once connections finish", async () => {
    const open = await dial(echo.address, 1005n);
    assert.equal(open.type, "DIAL_RSP");
    const connectID = (open as Extract<Packet, { type: "DIAL_RSP" }>).connectID;
    const drained = agent.drain();
    assert.deepEqual(await call.packets.next(), { type: "DRAIN" });
    // A server with no other agent for the address falls back to a draining one (§1.5).
    const late = await dial(echo.address, 1006n) as Extract<Packet, { type: "DIAL_RSP" }>;
    assert.equal(late.type, "DIAL_RSP");
    assert.equal(late.error, "", "the dial is served");
    for (const id of [connectID, late.connectID]) {
      call.send(dataPacket(id, Buffer.from(`still served ${id}`)));
      assert.equal(text((await call.packets.expect("DATA")).data), `still served ${id}`);
      call.send(closeRequest(id));
      assert.deepEqual(await call.packets.next(), closeResponse(id));
    }
    await drained;
    await waitFor(() => call.packets.ended, "the agent to end its stream");
    await waitFor(() => echo.open === 0, "the destination socket to close");
  });
});

describe("agent reconnect against grpc-js servers", () => {
  it("reconnects with backoff when the server goes away, re-reading its token", async (t) => {
    const pki = await sharedPki();
    const first = await startGrpcJsAgentServer({ ca: pki.ca, cert: pki.server.cert, key: pki.server.key, autoHeaders: { serverId: "s-1", serverCount: 1 } });
    t.after(() => first.kill());
    const tokenPath = join(tempDir(t), "token");
    writeFileSync(tokenPath, "token-1");
    const registry = new Registry();
    const agent = await startAgent(t, {
      agentId: "node-2",
      proxyServerHost: "127.0.0.1",
      proxyServerPort: first.port,
      tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] },
      serviceAccountTokenPath: tokenPath,
      syncIntervalMs: 100,
      syncIntervalCapMs: 400,
    }, registry);
    await agent.waitForServers(1, 3000);
    assert.deepEqual((await first.nextCall()).metadata.authorization, ["Bearer token-1"]);

    writeFileSync(tokenPath, "token-2");
    first.kill();
    await waitFor(() => !agent.isReady, "the agent to notice the server is gone");
    await sleep(1200);
    const failures = await metricValue(registry, "konnectivity_network_proxy_agent_server_connection_failure_count");
    // 100 ms ×1.5 capped at 400 ms, ±10 %: about 4 attempts in 1.2 s, not a hot loop and not stalled.
    assert.ok(failures >= 2 && failures <= 8, `${failures} failed attempts in 1.2 s`);

    const second = await startGrpcJsAgentServer({ ca: pki.ca, cert: pki.server.cert, key: pki.server.key, port: first.port, autoHeaders: { serverId: "s-2", serverCount: 1 } });
    t.after(() => second.kill());
    const started = performance.now();
    await agent.waitForServers(1, 3000);
    assert.ok(performance.now() - started < 1500, "back within the backoff cap and a handshake");
    assert.equal(agent.status().servers[0]?.serverId, "s-2");
    assert.deepEqual((await second.nextCall()).metadata.authorization, ["Bearer token-2"], "the token file is read again at reconnect");
  });
});
