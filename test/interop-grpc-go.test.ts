// grpc-go, the gRPC implementation upstream Konnectivity and kube-apiserver are built on, against
// nodetunnel in the roles Go plays upstream: kube-apiserver on the gRPC frontend and on the HTTP
// CONNECT frontend (Go's net/http), an agent on the agent port, and the server our agent connects
// to, also while it shuts down as upstream's does. The peer is test/go-peer/main.go, built
// from Debian's golang-go and golang-google-grpc-dev (grpc-go 1.33); its packets are encoded by
// hand with protowire, so neither our codec nor protobufjs is on its side. Loopback only.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { http2Implementations, type Http2Implementation } from "../src/transport/index.js";
import { closedPort, sharedPki, startAgentAgainst, startDestination, startStack, tempDir, type Stack } from "./helpers/stack.js";
import { httpConnect, readUntil } from "./helpers/connect-client.js";
import { buildGoPeer, goPeerMissing } from "./go-peer/build-peer.js";
import { spawnJsonLines } from "./helpers/json-lines-child.js";
import { readSlowly, streamBytes } from "./helpers/bulk-peers.js";
import { sleep, waitFor } from "./helpers/wait.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const skip = goPeerMissing() ?? false;

const buildDir = mkdtempSync(join(tmpdir(), "nt-go-peer-"));
const peer = join(buildDir, "go-peer");
after(() => rmSync(buildDir, { recursive: true, force: true }));

function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: "utf8", timeout: timeoutMs, env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout, stderr }));
  });
}

/** A long-running peer that reports as JSON lines on stdout; killed by its PID after the test. */
const spawnPeer = (t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}) => spawnJsonLines(t, peer, args, env);

/** The PKI as files: the CA and the server's or the client's pair. */
function pkiFiles(dir: string, ca: string, cert: string, key: string): string[] {
  return [["ca.crt", ca], ["peer.crt", cert], ["peer.key", key]].map(([name, pem]) => {
    const file = join(dir, name!);
    writeFileSync(file, pem!, { mode: 0o600 });
    return file;
  });
}

describe("grpc-go against nodetunnel", { skip }, () => {
  before(() => buildGoPeer(peer), { timeout: 240_000 });

  for (const frontendHttp2 of http2Implementations) {
    it(`as kube-apiserver on the gRPC frontend (${frontendHttp2}): 4 tunnels of 8 MiB echoed at once, CLOSE_REQ → CLOSE_RSP, then the ClientConn closed (as konnectivity-client) or status OK`, { timeout: 90_000 }, async (t) => {
      const stack = await startStack(t, { frontendHttp2 });
      await stack.startAgent("node-1", "ipv4=127.0.0.1");
      const echo = await startDestination(t);
      const size = 8 * 1024 * 1024;
      const r = await run(peer, ["frontend", stack.grpcPath, echo.address, "3", String(size)], process.env, 60_000);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      const out = JSON.parse(r.stdout) as { tunnels: Array<Record<string, unknown>> };
      assert.equal(out.tunnels.length, 4);
      const ids = new Set<unknown>();
      for (const tunnel of out.tunnels) {
        assert.equal(tunnel.error, undefined, JSON.stringify(tunnel));
        assert.deepEqual({ sent: tunnel.sent, echoed: tunnel.echoed, same: tunnel.same }, { sent: size, echoed: size, same: true });
        ids.add(tunnel.connectID);
      }
      assert.equal(ids.size, 4, "each tunnel has its own connectID");
      await waitFor(() => echo.open === 0, "the destination sockets to close after CLOSE_REQ", 10_000);
      await stack.settled();
    });
  }

  it("as kube-apiserver on the gRPC frontend, a burst: 200 tunnels at once, each on its own ClientConn, 64 KiB echoed on each", { timeout: 90_000 }, async (t) => {
    const stack = await startStack(t);
    await stack.startAgent("node-1", "ipv4=127.0.0.1");
    const echo = await startDestination(t);
    const r = await run(peer, ["frontend", stack.grpcPath, echo.address, "200", String(64 * 1024)], process.env, 60_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(r.stdout) as { tunnels: Array<Record<string, unknown>> };
    assert.equal(out.tunnels.length, 201);
    const failed = out.tunnels.filter((x) => x.error !== undefined || x.same !== true);
    assert.deepEqual(failed, [], `${failed.length} of 201 tunnels failed`);
    assert.equal(new Set(out.tunnels.map((x) => x.connectID)).size, 201, "each tunnel has its own connectID");
    await waitFor(() => echo.open === 0, "the destination sockets to close", 10_000);
    await stack.settled();
  });

  it("as kube-apiserver on the HTTP CONNECT frontend, over the Unix socket and over mTLS: Go's http.ReadResponse takes our 200 with no tunnel byte behind it, then 4 MiB echo", { timeout: 60_000 }, async (t) => {
    const stack = await startStack(t, { connectTls: true });
    await stack.startAgent("node-1", "ipv4=127.0.0.1");
    const echo = await startDestination(t);
    const size = 4 * 1024 * 1024;
    const tlsFiles = pkiFiles(stack.dir, stack.pki.ca, stack.pki.client.cert, stack.pki.client.key);
    for (const [name, proxy, extra] of [["Unix socket", stack.connectPath, []], ["mTLS", `127.0.0.1:${stack.connectTlsPort!}`, tlsFiles]] as const) {
      const r = await run(peer, ["connect", proxy, echo.address, String(size), ...extra], process.env, 40_000);
      assert.equal(r.code, 0, `${name}: ${r.stdout}\n${r.stderr}`);
      assert.deepEqual(JSON.parse(r.stdout), { status: "200 Connection Established", proto: "HTTP/1.1", buffered: 0, echoed: size, same: true }, name);
    }
    await waitFor(() => echo.open === 0, "the destination sockets to close");
    await stack.settled();
  });

  it("as kube-apiserver on the HTTP CONNECT frontend: a refused dial is a 502 that Go reads, with the agent's error as a text/plain body", { timeout: 30_000 }, async (t) => {
    const stack = await startStack(t);
    await stack.startAgent("node-1", "ipv4=127.0.0.1");
    const port = await closedPort();
    const r = await run(peer, ["connect", stack.connectPath, `127.0.0.1:${port}`, "1"], process.env, 20_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    assert.equal(out.status, "502 Bad Gateway");
    assert.equal(out.contentType, "text/plain; charset=utf-8");
    assert.match(out.body!, new RegExp(`^dial tcp 127\\.0\\.0\\.1:${port}: connect: connection refused`));
    await stack.settled();
  });

  /** A grpc-go agent on the agent port, registered as ipv4=127.0.0.1, and the server knowing it. */
  async function goAgent(t: TestContext, stack: Stack, env: NodeJS.ProcessEnv = {}): Promise<Array<Record<string, unknown>>> {
    const files = pkiFiles(stack.dir, stack.pki.ca, stack.pki.client.cert, stack.pki.client.key);
    const agent = spawnPeer(t, ["agent", ...files, `127.0.0.1:${stack.agentPort}`, "go-agent", "ipv4=127.0.0.1"], env);
    await waitFor(() => agent.lines.some((e) => e.event === "connected" || e.error !== undefined), `the grpc-go agent to connect (${agent.stderr()})`, 15_000);
    assert.deepEqual(agent.lines[0], { event: "connected", serverid: ["conformance-server"], servercount: ["1"] });
    await waitFor(() => stack.server.proxy.registry.streamsOf("go-agent").length === 1, "the server to register go-agent");
    return agent.lines;
  }

  for (const agentHttp2 of http2Implementations) {
    it(`as an agent on the agent port (${agentHttp2}): HTTP CONNECT through it, 8 MiB both ways at once, then CLOSE_REQ → CLOSE_RSP`, { timeout: 60_000 }, async (t) => {
      const stack = await startStack(t, { agentHttp2 });
      const events = await goAgent(t, stack);
      const echo = await startDestination(t);
      const { head, socket, rest } = await httpConnect({ port: stack.connectPort }, echo.address);
      assert.match(head, /^HTTP\/1\.1 200 /);
      const payload = randomBytes(8 * 1024 * 1024);
      const echoed = readUntil(socket, rest, (b) => b.length >= payload.length, 30_000);
      socket.write(payload);
      assert.equal(sha(await echoed), sha(payload));
      socket.destroy();
      await waitFor(() => events.some((e) => e.event === "closed"), "CLOSE_REQ to reach the grpc-go agent", 10_000);
      await waitFor(() => echo.open === 0, "the grpc-go agent to close the destination socket");
      await stack.settled();
      assert.equal(events.filter((e) => e.event === "send failed").length, 0, JSON.stringify(events));
    });
  }

  it("as an agent, which has no per-connection credit: a frontend reading slower than the node gets every byte (the agent is slowed down), and a stalled one is closed while the agent keeps serving", { timeout: 60_000 }, async (t) => {
    const MiB = 1024 * 1024;
    const stack = await startStack(t, { flow: { slowConsumerBytes: 8 * MiB, creditWindowBytes: 2 * MiB } });
    await goAgent(t, stack);
    // A destination that streams as fast as its connection takes it (at most 256 MiB).
    const sources: net.Socket[] = [];
    const source = net.createServer((s) => {
      sources.push(s);
      s.on("error", () => {});
      streamBytes(s, 256 * MiB);
    });
    await new Promise<void>((resolve) => source.listen(0, "127.0.0.1", resolve));
    t.after(() => {
      source.close();
      for (const s of sources) s.destroy();
    });
    const address = `127.0.0.1:${(source.address() as net.AddressInfo).port}`;
    const metric = async (name: string) => {
      const text = await (await fetch(`http://127.0.0.1:${stack.healthPort}/metrics`)).text();
      return Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? Number.NaN);
    };

    const slow = await httpConnect({ port: stack.connectPort }, address);
    assert.match(slow.head, /^HTTP\/1\.1 200 /);
    if (slow.rest.length > 0) slow.socket.unshift(slow.rest);
    assert.ok(await readSlowly(slow.socket, 12 * MiB, 8 * MiB, 30_000) >= 12 * MiB);
    assert.equal(await metric("nodetunnel_server_slow_consumer_closes_total"), 0);
    assert.ok(await metric("nodetunnel_server_slow_reader_stream_pauses_total") > 0, "the reader paused the grpc-go agent's stream");

    const stalled = await httpConnect({ port: stack.connectPort }, address);
    assert.match(stalled.head, /^HTTP\/1\.1 200 /);
    stalled.socket.on("error", () => {});
    const until = Date.now() + 10_000;
    while (await metric("nodetunnel_server_slow_consumer_closes_total") !== 1) {
      assert.ok(Date.now() < until, "the stalled reader was closed as a slow consumer within 10 s");
      await sleep(50);
    }
    const echo = await startDestination(t);
    const after = await httpConnect({ port: stack.connectPort }, echo.address);
    assert.match(after.head, /^HTTP\/1\.1 200 /);
    after.socket.write("still here");
    assert.equal((await readUntil(after.socket, after.rest, (b) => b.length >= 10)).toString(), "still here");
    after.socket.destroy();
    stalled.socket.destroy();
  });

  it("as an agent: a destination that closes first ends the tunnel (the agent's CLOSE_RSP), and a refused dial is a 502 with its error", { timeout: 60_000 }, async (t) => {
    const stack = await startStack(t);
    const events = await goAgent(t, stack);
    const banner = await startDestination(t, { banner: "hello and goodbye", echo: false });
    const { head, socket, rest } = await httpConnect({ port: stack.connectPort }, banner.address);
    assert.match(head, /^HTTP\/1\.1 200 /);
    const got = await readUntil(socket, rest, (b) => b.length >= "hello and goodbye".length);
    assert.equal(got.toString(), "hello and goodbye");
    for (const s of banner.sockets) s.end();
    await waitFor(() => socket.readableEnded || socket.destroyed, "the frontend connection to end after the agent's CLOSE_RSP", 10_000);
    assert.ok(events.some((e) => e.event === "closed"));

    const port = await closedPort();
    const refused = await httpConnect({ port: stack.connectPort }, `127.0.0.1:${port}`);
    assert.match(refused.head, /^HTTP\/1\.1 502 /);
    assert.match(refused.head + refused.rest.toString(), new RegExp(`dial tcp 127\\.0\\.0\\.1:${port}: connect: connection refused`));
    refused.socket.destroy();
    await stack.settled();
  });

  it("as an agent that answers after the dial timed out: the DIAL_CLS is ignored, as upstream's agent does, and the late DIAL_RSP gets CLOSE_REQ (no leak, #404)", { timeout: 60_000 }, async (t) => {
    const stack = await startStack(t, { dialTimeoutMs: 300 });
    const events = await goAgent(t, stack, { GO_PEER_DIAL_DELAY_MS: "1500" });
    const echo = await startDestination(t);
    const { head, socket } = await httpConnect({ port: stack.connectPort }, echo.address);
    assert.match(head, /^HTTP\/1\.1 504 /, "our dial timeout answers first");
    socket.destroy();
    await waitFor(() => events.some((e) => e.event === "dialed"), "the grpc-go agent's late dial", 10_000);
    await waitFor(() => events.some((e) => e.event === "closed"), "CLOSE_REQ for the late DIAL_RSP to reach the agent", 10_000);
    assert.ok(events.some((e) => e.event === "ignored" && e.type === 5), `the agent saw our DIAL_CLS: ${JSON.stringify(events)}`);
    await waitFor(() => echo.accepted === 1 && echo.open === 0, "the agent to close the destination socket it opened too late");
    await stack.settled();
  });

  /**
   * A grpc-go server peer in `mode` (server, restart) on loopback, our agent (on `serverHttp2`)
   * connected to it, and the peer's lines once it printed `lineCount` of them.
   */
  async function goServerWithOurAgent(t: TestContext, mode: string, destination: string, size: number, serverHttp2: Http2Implementation, lineCount: number): Promise<Array<Record<string, unknown>>> {
    const pki = await sharedPki();
    const files = pkiFiles(tempDir(t), pki.ca, pki.server.cert, pki.server.key);
    const server = spawnPeer(t, [mode, ...files, destination, String(size)]);
    const lines = server.lines;
    await waitFor(() => lines.length >= 1, `the grpc-go server to listen (${server.stderr()})`, 15_000);
    assert.equal(lines[0]!.error, undefined, JSON.stringify(lines[0]));
    await startAgentAgainst(t, lines[0]!.port as number, { agentId: "node-go", identifiers: "ipv4=127.0.0.1", serverHttp2 });
    await waitFor(() => lines.length >= lineCount, `the grpc-go server's result (${JSON.stringify(lines)} ${server.stderr()})`, 45_000);
    return lines;
  }

  for (const serverHttp2 of http2Implementations) {
    it(`as the server our agent connects to (agent on ${serverHttp2}): DIAL_REQ, 8 MiB echoed both ways at once, CLOSE_REQ → CLOSE_RSP`, { timeout: 60_000 }, async (t) => {
      const echo = await startDestination(t);
      const size = 8 * 1024 * 1024;
      const lines = await goServerWithOurAgent(t, "server", echo.address, size, serverHttp2, 2);
      const result = lines[1]!;
      assert.equal(result.timeout, undefined, `the exchange finished: ${JSON.stringify(result)}`);
      assert.equal(result.error, undefined, JSON.stringify(result));
      assert.deepEqual(result.agentid, ["node-go"]);
      assert.deepEqual(result.agentidentifiers, ["ipv4=127.0.0.1"]);
      assert.deepEqual(result.dial, { connectID: 1, random: 777, error: "" });
      assert.deepEqual(result.echo, { sent: size, echoed: size, same: true });
      assert.deepEqual(result.close, { type: 3, connectID: 1, error: "" });
      await waitFor(() => echo.open === 0, "the destination socket to close");
    });
  }

  for (const serverHttp2 of http2Implementations) {
    it(`a grpc-go server going away as upstream's does (GracefulStop): our agent (on ${serverHttp2}) keeps its tunnel and reaches the next server before the old one stops`, { timeout: 60_000 }, async (t) => {
      const echo = await startDestination(t);
      const lines = await goServerWithOurAgent(t, "restart", echo.address, 1024 * 1024, serverHttp2, 3);
      assert.deepEqual(lines[1], { event: "first connected" });
      const result = lines[2]!;
      assert.equal(result.timeout, undefined, `the agent came back and the exchange finished: ${JSON.stringify(result)}`);
      assert.equal(result.error, undefined, JSON.stringify(result));
      assert.equal(result.firstError, undefined, JSON.stringify(result));
      assert.equal(result.firstEchoAfterGoaway, true, "the going-away server's tunnel still carried data and closed cleanly");
      assert.equal(result.firstEndedByAgent, true, "once its tunnel closed, the agent ended the going-away server's stream, so its GracefulStop could finish");
      t.diagnostic(`on the second server ${String(result.reconnectedAfterMs)} ms after the first sent GOAWAY`);
      // The first server stops 10 s after its GOAWAY; an agent that waits for its stream to end
      // would only come then.
      assert.equal(result.beforeFirstStopped, true, `the agent replaced the server while it was going away (${String(result.reconnectedAfterMs)} ms)`);
      assert.deepEqual(result.echo, { sent: 1024 * 1024, echoed: 1024 * 1024, same: true });
      assert.deepEqual(result.close, { type: 3, connectID: (result.dial as { connectID: number }).connectID, error: "" });
      await waitFor(() => echo.open === 0, "the destination socket to close");
    });
  }
});
