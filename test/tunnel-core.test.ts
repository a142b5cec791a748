// The server core and an agent session joined by an in-memory packet channel, with the HTTP
// CONNECT frontend on a real Unix socket and real TCP destinations on loopback.
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Registry } from "prom-client";
import { AgentMetrics, AgentSession, DestinationPolicy } from "../src/agent/index.js";
import { noIdentifiers, type Packet } from "../src/protocol/index.js";
import { ProxyServer, ServerMetrics, createHttpConnectFrontend, resolveServerOptions } from "../src/server/index.js";
import { createChannelPair, defaultFlowOptions, type PacketChannel } from "../src/tunnel/index.js";
import { httpConnect, readToEnd } from "./helpers/connect-client.js";

const log = pino({ level: "silent" });

describe("tunnel core over an in-memory agent stream", () => {
  const dir = mkdtempSync(join(tmpdir(), "nt-core-"));
  const udsPath = join(dir, "connect.sock");
  let server: ProxyServer;
  let frontend: ReturnType<typeof createHttpConnectFrontend>;
  let echo: net.Server;
  let echoPort = 0;
  let closedPort = 0;

  before(async () => {
    const options = resolveServerOptions({
      frontends: [{ mode: "http-connect", listen: { path: udsPath } }],
      proxyStrategies: ["destHost"],
      dialTimeoutMs: 300,
    });
    const metrics = new ServerMetrics(new Registry());
    server = new ProxyServer(options, log, metrics, () => "127.0.0.1:8091");
    frontend = createHttpConnectFrontend(server, metrics, log);
    frontend.listen(udsPath);
    await once(frontend, "listening");
    echo = net.createServer((s) => s.on("error", () => {}).pipe(s));
    echo.listen(0, "127.0.0.1");
    await once(echo, "listening");
    echoPort = (echo.address() as net.AddressInfo).port;
    const probe = net.createServer().listen(0, "127.0.0.1");
    await once(probe, "listening");
    closedPort = (probe.address() as net.AddressInfo).port;
    probe.close();

    const [serverSide, agentSide] = createChannelPair();
    server.attachAgent(serverSide, {
      agentId: "node-1", identifiers: { ...noIdentifiers, ipv4: ["127.0.0.1"] }, credit: true, peerAddress: "memory", authenticatedAs: "none",
    });
    new AgentSession(agentSide, {
      agentId: "node-1", serverId: "s1", credit: true, dialTimeoutMs: 2000, flow: defaultFlowOptions,
      policy: DestinationPolicy.allowAll(), metrics: new AgentMetrics(new Registry()), log,
    });
  });

  after(() => {
    server.destroy();
    frontend.close();
    echo.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 200 only after the agent connected, then relays bytes both ways", async () => {
    const { head, socket } = await httpConnect({ path: udsPath }, `127.0.0.1:${echoPort}`);
    assert.equal(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    socket.resume();
    socket.write("ping");
    const [data] = (await once(socket, "data")) as [Buffer];
    assert.equal(data.toString(), "ping");
    socket.end();
    await once(socket, "close");
  });

  it("answers 500 No agent available at once for a node without an agent, with the next step", async () => {
    const started = Date.now();
    const { head, socket, rest } = await httpConnect({ path: udsPath }, "10.224.0.6:10250");
    const body = await readToEnd(socket, rest);
    assert.match(head, /^HTTP\/1\.1 500 Internal Server Error\r\nContent-Type: text\/plain\r\n\r\n/);
    assert.match(body, /^currently no tunnels available: No agent available — no connected agent serves 10\.224\.0\.6/);
    assert.match(body, /nodetunnel doctor egress/);
    assert.ok(Date.now() - started < 1000);
  });

  it("maps the agent's refused dial to 502 with Go's error text", async () => {
    const { head, socket, rest } = await httpConnect({ path: udsPath }, `127.0.0.1:${closedPort}`);
    const body = await readToEnd(socket, rest);
    assert.equal(head, `HTTP/1.1 502 Bad Gateway\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`);
    assert.match(body, new RegExp(`^dial tcp 127\\.0\\.0\\.1:${closedPort}: connect: connection refused — `));
  });

  it("relays 8 MiB in each direction intact", async () => {
    const { socket } = await httpConnect({ path: udsPath }, `127.0.0.1:${echoPort}`);
    socket.resume();
    const payload = Buffer.alloc(8 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const received: Buffer[] = [];
    let total = 0;
    const done = new Promise<void>((resolve) => socket.on("data", (c: Buffer) => {
      received.push(c);
      total += c.length;
      if (total >= payload.length) resolve();
    }));
    socket.write(payload);
    await done;
    assert.ok(Buffer.concat(received).equals(payload));
    socket.destroy();
  });
});

describe("pending dials", () => {
  /** A fake agent that records packets and never answers. */
  function silentAgent(server: ProxyServer): { channel: PacketChannel; seen: Packet[] } {
    const [serverSide, agentSide] = createChannelPair();
    const seen: Packet[] = [];
    agentSide.start({ packet: (p) => seen.push(p), drain: () => {}, close: () => {} });
    server.attachAgent(serverSide, {
      agentId: "mute", identifiers: { ...noIdentifiers, ipv4: ["10.224.0.5"] }, credit: false, peerAddress: "memory", authenticatedAs: "none",
    });
    return { channel: agentSide, seen };
  }

  async function setup(dialTimeoutMs: number) {
    const dir = mkdtempSync(join(tmpdir(), "nt-pending-"));
    const path = join(dir, "c.sock");
    const options = resolveServerOptions({ frontends: [{ mode: "http-connect", listen: { path } }], proxyStrategies: ["destHost"], dialTimeoutMs });
    const metrics = new ServerMetrics(new Registry());
    const server = new ProxyServer(options, log, metrics, () => "127.0.0.1:8091");
    const frontend = createHttpConnectFrontend(server, metrics, log);
    frontend.listen(path);
    await once(frontend, "listening");
    return { server, path, cleanup: () => { server.destroy(); frontend.close(); rmSync(dir, { recursive: true, force: true }); } };
  }

  it("fail within a second when their agent goes away (upstream #126)", async () => {
    const { server, path, cleanup } = await setup(30_000);
    try {
      const agent = silentAgent(server);
      const pending = httpConnect({ path }, "10.224.0.5:10250");
      while (server.pendingDialCount === 0) await new Promise((r) => setTimeout(r, 5));
      assert.equal(agent.seen[0]?.type, "DIAL_REQ");
      const started = Date.now();
      agent.channel.destroy();
      const { head, socket, rest } = await pending;
      const body = await readToEnd(socket, rest);
      assert.ok(Date.now() - started < 1000, "the pending dial failed at once");
      assert.match(head, /^HTTP\/1\.1 502 Bad Gateway/);
      assert.match(body, /^Backend context error: agent disconnected — agent mute disconnected/);
      assert.equal(server.pendingDialCount, 0);
    } finally {
      cleanup();
    }
  });

  it("time out by default with 504 and tell the agent with DIAL_CLS", async () => {
    const { server, path, cleanup } = await setup(200);
    try {
      const agent = silentAgent(server);
      const { head, socket, rest } = await httpConnect({ path }, "10.224.0.5:10250");
      const body = await readToEnd(socket, rest);
      assert.match(head, /^HTTP\/1\.1 504 Gateway Timeout/);
      assert.match(body, /^Backend dial timeout: timed out waiting for backend dial/);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(agent.seen.map((p) => p.type), ["DIAL_REQ", "DIAL_CLS"]);
    } finally {
      cleanup();
    }
  });

  it("wait for the agent's answer with --backend-dial-timeout=0 (upstream's default), and still end when the client gives up", async () => {
    const { server, path, cleanup } = await setup(0);
    try {
      const agent = silentAgent(server);
      const socket = net.connect(path);
      socket.write("CONNECT 10.224.0.5:10250 HTTP/1.1\r\nHost: 10.224.0.5:10250\r\n\r\n");
      let answer = "";
      socket.on("data", (c: Buffer) => (answer += c.toString("latin1")));
      while (server.pendingDialCount === 0) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(server.pendingDialCount, 1, "still pending: no timer ended it");
      assert.equal(answer, "", "nothing answered yet");
      socket.destroy();
      while (server.pendingDialCount > 0) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(agent.seen.map((p) => p.type), ["DIAL_REQ", "DIAL_CLS"]);
    } finally {
      cleanup();
    }
  });
});

describe("dial floods", () => {
  it("are refused beyond --max-dial-rate with 503, and the tunnel keeps serving within the rate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nt-flood-"));
    const path = join(dir, "c.sock");
    const options = resolveServerOptions({
      frontends: [{ mode: "http-connect", listen: { path } }], proxyStrategies: ["destHost"], maxDialsPerSecond: 1, dialBurst: 3,
    });
    const metrics = new ServerMetrics(new Registry());
    const server = new ProxyServer(options, log, metrics, () => "127.0.0.1:8091");
    const frontend = createHttpConnectFrontend(server, metrics, log);
    frontend.listen(path);
    await once(frontend, "listening");
    const [serverSide, agentSide] = createChannelPair();
    agentSide.start({ packet: () => {}, drain: () => {}, close: () => {} }); // a mute agent: dials stay pending
    server.attachAgent(serverSide, { agentId: "n", identifiers: { ...noIdentifiers, ipv4: ["10.224.0.5"] }, credit: false, peerAddress: "memory", authenticatedAs: "none" });
    try {
      const heads: string[] = [];
      const sockets: net.Socket[] = [];
      for (let i = 0; i < 6; i++) {
        const socket = net.connect(path);
        sockets.push(socket);
        await once(socket, "connect");
        socket.write("CONNECT 10.224.0.5:10250 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      }
      await new Promise((r) => setTimeout(r, 200));
      for (const s of sockets) {
        const chunk = s.read() as Buffer | null;
        heads.push(chunk ? chunk.toString().split("\r\n")[0]! : "pending");
        s.destroy();
      }
      assert.deepEqual(heads.filter((h) => h === "pending").length, 3, heads.join(" | "));
      assert.equal(heads.filter((h) => h === "HTTP/1.1 503 Service Unavailable").length, 3, heads.join(" | "));
    } finally {
      server.destroy();
      frontend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
