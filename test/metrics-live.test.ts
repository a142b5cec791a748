// /metrics during a running stack (issue 7, "done when": upstream names with live values). A real
// server with both frontends, two agents over mTLS and a kubelet-like endpoint on loopback; one
// connection through each frontend and a dial to a node without an agent. The same values must
// show on the health port and the admin port, and the agent's own /metrics must show its stream.
import assert from "node:assert/strict";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import type { NodetunnelAgent } from "../src/agent/index.js";
import { startFakeKubelet, type FakeKubelet } from "../src/lab/index.js";
import { noIdentifiers } from "../src/protocol/index.js";
import type { NodetunnelServer } from "../src/server/index.js";
import type { Pki } from "../src/transport/index.js";
import { createChannelPair, dialThroughProxy } from "../src/tunnel/index.js";
import { httpConnect } from "./helpers/connect-client.js";
import { startStack } from "./helpers/stack.js";

const S = "konnectivity_network_proxy_server_";

/** The value of one sample in Prometheus text format, or undefined when it is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  return res.text();
}

/**
 * TLS to the kubelet inside a tunnel socket and an exec-like POST /echo whose body stays open, so
 * the connection lives however slow the machine is (an idle keep-alive socket closes after 5 s).
 */
async function kubeletRequest(socket: Duplex, pki: Pki): Promise<tls.TLSSocket> {
  const secure = tls.connect({ socket, ca: pki.ca, servername: "node-1" });
  await new Promise<void>((resolve, reject) => secure.once("secureConnect", resolve).once("error", reject));
  secure.write("POST /echo HTTP/1.1\r\nHost: node-1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  await new Promise<void>((resolve) => secure.once("data", () => resolve()));
  return secure;
}

/** A CONNECT through the frontend; `status` is the response's status line. */
async function connectVia(port: number, target: string): Promise<{ status: string; socket: net.Socket }> {
  const { head, socket, rest } = await httpConnect({ port }, target);
  if (rest.length > 0) socket.unshift(rest);
  socket.resume(); // the shared client pauses after the head; these tests read with once("data")
  return { status: head.split("\r\n")[0]!, socket };
}

describe("metrics during a running stack", () => {
  const cleanups: Array<() => unknown> = [];
  const hooks = { after: (fn: () => unknown) => void cleanups.push(fn) };
  let pki: Pki;
  let grpcPath = "";
  let kubelet: FakeKubelet;
  let server: NodetunnelServer;
  let agents: NodetunnelAgent[];
  let healthPort = 0;
  let adminPort = 0;

  before(async () => {
    const stack = await startStack(hooks, { serverId: "metrics-test", adminListen: { port: 0, host: "127.0.0.1" }, proxyStrategies: ["destHost"] });
    ({ pki, server, grpcPath } = stack);
    const leaf = await pki.issue("node-1", { dns: ["node-1"], ips: ["127.0.1.1"] });
    kubelet = await startFakeKubelet({ nodeName: "node-1", cert: leaf.cert, key: leaf.key, host: "127.0.1.1", port: 0 });
    cleanups.push(() => kubelet.close());
    healthPort = server.addresses.healthPort!;
    adminPort = server.addresses.adminPort!;
    agents = [];
    for (const [name, ip] of [["node-1", "127.0.1.1"], ["node-2", "127.0.1.2"]] as const) {
      const client = await pki.issue(name, { client: true });
      agents.push(await stack.startAgent(name, `ipv4=${ip}`, {
        tls: { ca: pki.ca, cert: client.cert, key: client.key, alpnProtocols: [] }, healthListen: { port: 0, host: "127.0.0.1" },
      }));
    }
    const target = `127.0.1.1:${kubelet.port}`;
    const viaConnect = await connectVia(server.addresses.frontends[0]!.port!, target);
    assert.match(viaConnect.status, /^HTTP\/1\.1 200/);
    const secure1 = await kubeletRequest(viaConnect.socket, pki);
    cleanups.push(() => secure1.destroy());
    const viaGrpc = await dialThroughProxy({ path: grpcPath }, target, { timeoutMs: 10_000 });
    const secure2 = await kubeletRequest(viaGrpc, pki);
    cleanups.push(() => secure2.destroy());
    const failed = await connectVia(server.addresses.frontends[0]!.port!, "127.0.1.9:10250");
    failed.socket.destroy();
    assert.match(failed.status, /^HTTP\/1\.1 5\d\d/);
  });

  after(async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // keep tearing down the rest
      }
    }
  });

  for (const port of ["health", "admin"] as const) {
    it(`shows upstream's server metrics with live values on the ${port} port`, async () => {
      const text = await scrape(port === "health" ? healthPort : adminPort);
      assert.equal(sample(text, S + "ready_backend_connections"), 2);
      assert.equal(sample(text, S + "ready_backends", { proxy_strategy: "destHost" }), 2);
      assert.equal(sample(text, S + "ready_backends", { proxy_strategy: "default" }), undefined, "no series for a strategy not in --proxy-strategies");
      assert.equal(sample(text, S + "ready_backends", { proxy_strategy: "defaultRoute" }), undefined);
      assert.equal(sample(text, S + "established_connections"), 2);
      assert.equal(sample(text, S + "pending_backend_dials"), 0);
      assert.equal(sample(text, S + "dial_failure_count", { reason: "no_agent" }), 1);
      assert.ok(sample(text, S + "stream_packets_total", { segment: "from_agent", packet_type: "DATA" })! > 0);
      assert.equal(sample(text, S + "stream_packets_total", { segment: "from_agent", packet_type: "DIAL_RSP" }), 2);
      assert.equal(sample(text, S + "stream_packets_total", { segment: "to_agent", packet_type: "DIAL_REQ" }), 2);
      assert.ok(sample(text, S + "stream_packets_total", { segment: "to_agent", packet_type: "DATA" })! > 0);
      assert.ok(sample(text, S + "stream_packets_total", { segment: "from_client", packet_type: "DIAL_REQ" })! >= 1, "the gRPC frontend's DIAL_REQ");
      assert.equal(sample(text, S + "grpc_connections", { service_method: "Connect" }), 2, "one agent stream per agent");
      assert.equal(sample(text, S + "grpc_connections", { service_method: "Proxy" }), 1);
      assert.equal(sample(text, S + "http_connections"), 1);
      assert.equal(sample(text, S + "dial_duration_seconds_count"), 2);
      assert.equal(sample(text, S + "dial_duration_seconds_bucket", { le: "+Inf" }), 2);
      // Upstream's bucket boundaries, so dashboards' le="…" series match.
      assert.equal(sample(text, S + "dial_duration_seconds_bucket", { le: "12.5" }), 2);
      assert.equal(sample(text, S + "dial_duration_seconds_bucket", { le: "0.0005" }), undefined);
      assert.ok(sample(text, S + "frontend_write_duration_seconds_count")! > 0, "the kubelet's answers were written to both frontends");
      assert.notEqual(sample(text, S + "frontend_write_duration_seconds_bucket", { le: "0.000001" }), undefined);
      assert.ok(sample(text, "nodetunnel_server_bytes_total", { direction: "to_agent" })! > 0);
      assert.ok(sample(text, "nodetunnel_server_bytes_total", { direction: "from_agent" })! > 0);
      assert.equal(sample(text, "nodetunnel_server_dial_duration_seconds_count", { outcome: "success", cause: "none" }), 2);
      assert.equal(sample(text, "nodetunnel_server_dial_duration_seconds_count", { outcome: "failure", cause: "no_agent" }), 1);
      assert.notEqual(sample(text, "nodetunnel_server_queued_bytes"), undefined);
    });
  }

  it("shows the agent's stream and its endpoint connection on the agent's /metrics", async () => {
    const text = await scrape(agents[0]!.healthPort!);
    assert.equal(sample(text, "konnectivity_network_proxy_agent_open_server_connections"), 1);
    assert.equal(sample(text, "konnectivity_network_proxy_agent_known_server_count"), 1);
    assert.equal(sample(text, "konnectivity_network_proxy_agent_open_endpoint_connections"), 2);
    assert.ok(sample(text, "konnectivity_network_proxy_agent_stream_packets_total", { segment: "from_server", packet_type: "DATA" })! > 0);
    assert.equal(sample(text, "konnectivity_network_proxy_agent_stream_packets_total", { segment: "from_server", packet_type: "DIAL_REQ" }), 2);
    assert.equal(sample(text, "konnectivity_network_proxy_agent_dial_duration_seconds_count"), 2);
    assert.equal(sample(text, "konnectivity_network_proxy_agent_dial_duration_seconds_bucket", { le: "10" }), 2, "upstream's agent buckets");
    assert.ok(sample(text, "nodetunnel_agent_bytes_total", { direction: "to_server" })! > 0);
    const idle = await scrape(agents[1]!.healthPort!);
    assert.equal(sample(idle, "konnectivity_network_proxy_agent_open_server_connections"), 1);
    assert.equal(sample(idle, "konnectivity_network_proxy_agent_open_endpoint_connections"), 0);
  });

  it("counts a dial waiting for an agent that does not answer, and the stream that carries it", async () => {
    // A third agent on an in-memory stream that never answers DIAL_REQ.
    const [serverSide, agentSide] = createChannelPair();
    agentSide.start({ packet: () => {}, drain: () => {}, close: () => {} });
    server.proxy.attachAgent(serverSide, { agentId: "silent", identifiers: { ...noIdentifiers, host: ["silent.node"] }, credit: false, peerAddress: "memory", authenticatedAs: "none" });
    const waiting = net.connect(server.addresses.frontends[0]!.port!, "127.0.0.1");
    try {
      waiting.write("CONNECT silent.node:10250 HTTP/1.1\r\nHost: silent.node\r\n\r\n");
      for (let i = 0; i < 100 && server.proxy.pendingDialCount === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const text = await scrape(healthPort);
      assert.equal(sample(text, S + "pending_backend_dials"), 1);
      assert.equal(sample(text, S + "ready_backend_connections"), 3);
      assert.equal(sample(text, S + "grpc_connections", { service_method: "Connect" }), 3);
    } finally {
      waiting.destroy();
      agentSide.destroy();
    }
    for (let i = 0; i < 100 && (server.proxy.pendingDialCount > 0 || server.proxy.registry.agentCount > 2); i++) await new Promise((r) => setTimeout(r, 20));
    const text = await scrape(healthPort);
    assert.equal(sample(text, S + "pending_backend_dials"), 0, "the dial is forgotten when its frontend goes");
    assert.equal(sample(text, S + "ready_backend_connections"), 2);
    assert.equal(sample(text, S + "grpc_connections", { service_method: "Connect" }), 2);
  });

  it("counts a frontend stream the client resets in stream_errors_total, spelled as grpc-go spells the code", async () => {
    const labels = { segment: "from_client", code: "Canceled", packet_type: "Unknown" };
    const before = sample(await scrape(healthPort), S + "stream_errors_total", labels) ?? 0;
    const stream = await dialThroughProxy({ path: grpcPath }, `127.0.1.1:${kubelet.port}`, { timeoutMs: 10_000 });
    stream.destroy(); // kube-apiserver giving up on a tunnel: RST_STREAM CANCEL
    let now = before;
    for (let i = 0; i < 100 && now === before; i++) {
      await new Promise((r) => setTimeout(r, 20));
      now = sample(await scrape(healthPort), S + "stream_errors_total", labels) ?? 0;
    }
    assert.equal(now, before + 1);
    assert.equal(sample(await scrape(healthPort), S + "stream_errors_total", { segment: "from_agent", code: "Canceled", packet_type: "Unknown" }), undefined, "the agents' streams are fine");
  });
  it("counts a gRPC frontend stream held back by its connection's full queue in full_receive_channels, until it goes", async () => {
    // A destination that accepts and never reads: the connection's queue toward it fills.
    const held: net.Socket[] = [];
    const stuck = net.createServer((s) => (held.push(s), s.pause()));
    await new Promise<void>((resolve) => stuck.listen(0, "127.0.1.1", resolve));
    const port = (stuck.address() as net.AddressInfo).port;
    const full = async () => sample(await scrape(healthPort), S + "full_receive_channels", { service_method: "Proxy" });
    try {
      assert.equal(await full(), 0);
      assert.equal(sample(await scrape(healthPort), S + "full_receive_channels", { service_method: "Connect" }), 0);
      const stream = await dialThroughProxy({ path: grpcPath }, `127.0.1.1:${port}`, { timeoutMs: 10_000 });
      stream.on("error", () => undefined);
      const chunk = Buffer.alloc(64 * 1024, 7);
      let value = await full();
      // Bounded: 64 MiB at most, far more than the socket buffers and the queue cap together.
      for (let i = 0; i < 1024 && value === 0; i++) {
        if (!stream.write(chunk)) await Promise.race([new Promise((r) => stream.once("drain", r)), new Promise((r) => setTimeout(r, 50))]);
        if (i % 16 === 15) value = await full();
      }
      assert.equal(value, 1, "the stream is counted once its connection's queue is full");
      stream.destroy();
      for (let i = 0; i < 100 && value !== 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        value = await full();
      }
      assert.equal(value, 0, "and no longer once it is gone");
    } finally {
      for (const s of held) s.destroy();
      stuck.close();
    }
  });
});

describe("the agent's stream_errors_total", () => {
  it("counts its stream to a server that went away, as grpc-go would see it", async (t) => {
    const stack = await startStack(t);
    const agent = await stack.startAgent("node-1", "ipv4=127.0.1.1", { healthListen: { port: 0, host: "127.0.0.1" }, syncIntervalMs: 60_000, syncIntervalCapMs: 60_000 });
    // The server's connection went with it: grpc-go's agent reads "Unavailable: transport is closing".
    const labels = { segment: "from_server", code: "Unavailable", packet_type: "Unknown" };
    assert.equal(sample(await scrape(agent.healthPort!), "konnectivity_network_proxy_agent_stream_errors_total", labels), undefined);
    stack.server.destroy();
    let counted: number | undefined;
    for (let i = 0; i < 100 && counted === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      counted = sample(await scrape(agent.healthPort!), "konnectivity_network_proxy_agent_stream_errors_total", labels);
    }
    assert.equal(counted, 1);
  });
});
