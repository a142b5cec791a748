// checkCluster's findings from injected inputs (the server's agents and one dial result per
// node), and readServerAgents against fake health/admin endpoints on loopback.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, describe, test } from "node:test";
import type { CheckResult } from "../report/check-result.js";
import { checkCluster } from "./check-cluster.js";
import type { ClusterInputs } from "./check-cluster.js";
import type { DialOutcome, DialResult } from "./dial-through-connect.js";
import { readServerAgents, readyBackendCount } from "./server-agents.js";
import type { ServerAgents } from "./server-agents.js";

const twoAgents: ServerAgents = {
  source: "snapshot", ready: true, count: 2, reason: null,
  agents: [{ agentId: "node-1", identifiers: { ipv4: ["10.224.0.4"] }, peerAddress: "10.226.0.1:1024" }, { agentId: "node-3", identifiers: {}, peerAddress: null }],
};
const noAgents: ServerAgents = { source: "metrics", ready: false, count: 0, agents: [], reason: null };

const messages: Record<DialOutcome, [number | null, string]> = {
  ok: [200, "connection established"],
  "no-agent": [500, "currently no tunnels available: No agent available"],
  timeout: [504, "dial tcp 10.224.0.5:10250: i/o timeout"],
  refused: [502, "dial tcp 10.224.0.5:10250: connect: connection refused"],
  "no-route": [502, "dial tcp 10.224.0.5:10250: connect: no route to host"],
  limit: [503, "Failed to tunnel dial request: too many pending dials"],
  "frontend-down": [null, "cannot reach the frontend: ECONNREFUSED"],
  error: [502, "Failed to tunnel dial request: \"odd\" answer"],
};
const dial = (n: number, outcome: DialOutcome): ClusterInputs["dials"][number] => {
  const [status, message] = messages[outcome];
  const result: DialResult = { target: `10.224.0.${3 + n}:10250`, outcome, status, message, elapsedMs: 10 * n };
  return { node: { name: `node-${n}`, ip: `10.224.0.${3 + n}` }, result };
};
const inputs = (agents: ServerAgents, outcomes: DialOutcome[], agentEndpoint: string | null = "10.225.0.4:8132"): ClusterInputs =>
  ({ agents, dials: outcomes.map((o, i) => dial(i + 1, o)), agentEndpoint });
const findings = (r: CheckResult) => r.findings as CheckResult[];
const dialFinding = (r: CheckResult, node: string) => findings(r).find((f) => f.id === "dial" && f.node === node)!;

describe("checkCluster", () => {
  test("every node answers: ok, the agents named, one dial finding per node and a table", () => {
    const r = checkCluster(inputs(twoAgents, ["ok", "ok", "ok"]));
    assert.equal(r.status, "ok");
    assert.equal(r.summary, "All 3 nodes answered through the tunnel.");
    assert.deepEqual(findings(r).map((f) => `${String(f.id)}:${f.status}`), ["agents:ok", "dial:ok", "dial:ok", "dial:ok"]);
    assert.equal(findings(r)[0]!.summary, "The server has 2 connected agents: node-1, node-3.");
    assert.deepEqual(r.fixes, []);
    assert.deepEqual(r.details!.slice(0, 2), ["NODE    TARGET            OUTCOME  HTTP  ELAPSED  RESPONSE", "------  ----------------  -------  ----  -------  ----------------------"]);
    assert.equal(r.details![2], "node-1  10.224.0.4:10250  ok       200   10 ms    connection established");
  });

  test("the failing nodes are grouped by outcome in the summary; each gets the fix for its cause", () => {
    const r = checkCluster(inputs(twoAgents, ["ok", "timeout", "refused", "timeout", "no-route"]));
    assert.equal(r.status, "problem");
    assert.equal(r.summary, "1 of 5 nodes answer through the tunnel; timeout: node-2, node-4; refused: node-3; no-route: node-5.");
    const t = dialFinding(r, "node-2");
    assert.deepEqual([t.outcome, t.httpStatus, t.target, t.elapsedMs], ["timeout", 504, "10.224.0.5:10250", 20]);
    assert.match(t.summary, /^node-2 \(10\.224\.0\.5:10250\): the agent's dial timed out: .*: dial tcp 10\.224\.0\.5:10250: i\/o timeout\.$/);
    // A firewall or a stopped kubelet on that node: run doctor node there.
    assert.equal(t.fixes[0]!.command, "nodetunnel doctor node --server 10.225.0.4:8132 --node-ip 10.224.0.5");
    assert.equal(dialFinding(r, "node-3").fixes[0]!.command, "nodetunnel doctor node --server 10.225.0.4:8132 --node-ip 10.224.0.6");
    assert.deepEqual(dialFinding(r, "node-1").fixes, []);
    assert.equal(r.fixes.length, 4, "one fix per failing node");
  });

  test("no agent: the agents finding is a problem, the dials are no-agent, and the fix checks egress to the agent endpoint", () => {
    const r = checkCluster(inputs(noAgents, ["no-agent", "no-agent"]));
    assert.equal(r.status, "problem");
    const agents = findings(r)[0]!;
    assert.deepEqual([agents.status, agents.summary], ["problem", "The server has no connected agent: every dial fails with No agent available."]);
    assert.match(agents.assumptions[0]!, /counted from \/metrics/);
    assert.equal(dialFinding(r, "node-1").fixes[0]!.command, "nodetunnel doctor egress --server 10.225.0.4:8132 --alpn h2");
    // Without the agent endpoint the fix looks at the agents' pods instead.
    const bare = checkCluster(inputs(noAgents, ["no-agent"], null));
    assert.match(bare.fixes[0]!.command, /^kubectl -n kube-system get pods -l k8s-app=konnectivity-agent/);
    assert.equal(dialFinding(bare, "node-1").fixes.length, 1);
  });

  test("a ready server counted by metrics only, and a server whose health port cannot be read", () => {
    const counted = checkCluster(inputs({ source: "metrics", ready: true, count: 1, agents: [], reason: null }, ["ok"]));
    assert.equal(findings(counted)[0]!.summary, "The server has 1 connected agent.");
    assert.equal(counted.status, "ok");
    const unknown = checkCluster(inputs({ source: "unreachable", ready: null, count: null, agents: [], reason: "connect ECONNREFUSED 127.0.0.1:8092" }, []));
    assert.equal(unknown.status, "indeterminate", "agents unknown and nothing dialled");
    assert.equal(unknown.summary, "Could not read the server's health port (connect ECONNREFUSED 127.0.0.1:8092): the agents are unknown.");
    assert.deepEqual(unknown.details, []);
    // A failed dial outranks unknown agents.
    assert.equal(checkCluster(inputs({ source: "unreachable", ready: null, count: null, agents: [], reason: "x" }, ["timeout"])).status, "problem");
  });

  test("frontend down, limits and other errors each get their own explanation and fix", () => {
    const r = checkCluster(inputs(twoAgents, ["frontend-down", "limit", "error"]));
    assert.match(dialFinding(r, "node-1").summary, /HTTP CONNECT frontend did not answer/);
    assert.match(dialFinding(r, "node-1").fixes[0]!.command, /^ss -ltnp/);
    assert.equal(dialFinding(r, "node-1").httpStatus, null);
    assert.match(dialFinding(r, "node-2").summary, /a limit was reached\) → HTTP 503/);
    // The explain fix quotes the message safely (double quotes become single).
    assert.equal(dialFinding(r, "node-3").fixes[0]!.command, "nodetunnel doctor explain \"Failed to tunnel dial request: 'odd' answer\"");
    assert.match(r.details![2]!, /^node-1 .* - +\d+ ms/, "no HTTP status is shown as -");
  });
});

describe("checkCluster: a frontend that does not speak HTTP CONNECT", () => {
  const grpcSocket = "/etc/kubernetes/konnectivity-server/konnectivity-server.socket";
  const frontendDown = (speaks: boolean): ClusterInputs["dials"][number] => ({
    node: { name: "node-1", ip: "10.224.0.4" },
    result: {
      target: "10.224.0.4:10250", outcome: "frontend-down", status: null, elapsedMs: 3,
      ...(speaks ? { message: "the frontend answered in HTTP/2 (a gRPC frontend), not HTTP CONNECT", frontendSpeaks: "http2" as const } : { message: "the frontend closed the connection without an answer" }),
    },
  });

  test("--frontend-uds at the gRPC socket: the fix is about the socket, not TCP ports", () => {
    for (const speaks of [true, false]) {
      const r = checkCluster({ agents: twoAgents, dials: [frontendDown(speaks)], agentEndpoint: null, frontend: { path: grpcSocket } });
      const fix = dialFinding(r, "node-1").fixes[0]!;
      assert.equal(fix.command, `ss -xlp | grep -F -- ${grpcSocket}`);
      assert.doesNotMatch(`${fix.description} ${fix.command}`, /8131|8090|ss -ltnp/);
      assert.match(fix.description, /Point --frontend-uds at the socket of the server's HTTP CONNECT frontend: its --uds-name where it runs with --mode http-connect/);
      assert.match(fix.description, speaks ? /answered in HTTP\/2: it is the server's gRPC frontend/ : /gave no HTTP CONNECT answer/);
      assert.deepEqual(r.fixes, [fix]);
    }
  });

  test("a socket path with spaces or quotes is quoted for the shell", () => {
    const r = checkCluster({ agents: twoAgents, dials: [frontendDown(true)], agentEndpoint: null, frontend: { path: "/run/my socket's" } });
    assert.equal(dialFinding(r, "node-1").fixes[0]!.command, "ss -xlp | grep -F -- '/run/my socket'\\''s'");
  });

  test("a TCP frontend that answered gRPC: point --frontend at the HTTP CONNECT frontend, check that port", () => {
    const r = checkCluster({ agents: twoAgents, dials: [frontendDown(true)], agentEndpoint: null, frontend: { host: "127.0.0.1", port: 8090 } });
    const fix = dialFinding(r, "node-1").fixes[0]!;
    assert.equal(fix.command, "ss -ltnp 'sport = :8090'");
    assert.match(fix.description, /Point --frontend at the server's HTTP CONNECT frontend/);
  });
});

describe("readServerAgents", () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));
  async function serve(routes: Record<string, [number, string]>): Promise<number> {
    const server = createServer((req, res) => {
      const [status, body] = routes[req.url ?? ""] ?? [404, "not found"];
      res.writeHead(status).end(body);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return (server.address() as { port: number }).port;
  }
  const metrics = "# HELP konnectivity_network_proxy_server_ready_backend_connections x\nkonnectivity_network_proxy_server_ready_backend_connections 2\n";

  test("the upstream gauge is read with or without labels", () => {
    assert.equal(readyBackendCount(metrics), 2);
    assert.equal(readyBackendCount('konnectivity_network_proxy_server_ready_backend_connections{server="a"} 3\n'), 3);
    assert.equal(readyBackendCount("other_metric 1\n"), null);
  });

  test("the admin snapshot names the agents; without it the health port's readyz and metrics count them", async () => {
    const health = await serve({ "/readyz": [200, "ok"], "/metrics": [200, metrics] });
    const snapshot = JSON.stringify({ isReady: true, agents: [{ agentId: "node-1", identifiers: { ipv4: ["10.224.0.4"] }, peerAddress: "10.226.0.1:1024" }] });
    const admin = await serve({ "/api/snapshot": [200, snapshot] });
    assert.deepEqual(await readServerAgents({ host: "127.0.0.1", port: health }, { host: "127.0.0.1", port: admin }, 2000), {
      source: "snapshot", ready: true, count: 1, reason: null, agents: [{ agentId: "node-1", identifiers: { ipv4: ["10.224.0.4"] }, peerAddress: "10.226.0.1:1024" }],
    });
    const noDashboard = await serve({});
    assert.deepEqual(await readServerAgents({ host: "127.0.0.1", port: health }, { host: "127.0.0.1", port: noDashboard }, 2000),
      { source: "metrics", ready: true, count: 2, agents: [], reason: null });
    const notReady = await serve({ "/readyz": [503, "no agents"] });
    assert.deepEqual(await readServerAgents({ host: "127.0.0.1", port: notReady }, null, 2000),
      { source: "metrics", ready: false, count: null, agents: [], reason: null });
  });

  test("a health port that does not answer is unreachable, with the reason", async () => {
    const closed = await serve({});
    await new Promise<void>((r) => servers.pop()!.close(() => r()));
    const r = await readServerAgents({ host: "127.0.0.1", port: closed }, null, 2000);
    assert.equal(r.source, "unreachable");
    assert.match(r.reason!, /ECONNREFUSED/);
  });

  // An endpoint that sends headers and then a byte every 50 ms, never finishing: an idle timeout
  // never fires, so only a deadline for the whole read ends it.
  async function drip(): Promise<number> {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-length": "100000" });
      const timer = setInterval(() => res.write("x"), 50);
      res.on("close", () => clearInterval(timer));
    });
    servers.push(server);
    after(() => server.closeAllConnections());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return (server.address() as { port: number }).port;
  }

  test("a dripping admin port ends at the deadline, is named, and the health port is read instead; progress names each address read", { timeout: 5000 }, async () => {
    const health = await serve({ "/readyz": [200, "ok"], "/metrics": [200, metrics] });
    const admin = await drip();
    const read: string[] = [];
    const started = Date.now();
    const r = await readServerAgents({ host: "127.0.0.1", port: health }, { host: "127.0.0.1", port: admin }, 300, (url) => read.push(url));
    assert.ok(Date.now() - started < 2000);
    assert.deepEqual(read, [`http://127.0.0.1:${admin}/api/snapshot`, `http://127.0.0.1:${health}/readyz and /metrics`]);
    assert.deepEqual({ ...r, adminReason: undefined }, { source: "metrics", ready: true, count: 2, agents: [], reason: null, adminReason: undefined });
    assert.equal(r.adminReason, `http://127.0.0.1:${admin}/api/snapshot: no complete answer within 300 ms (timeout)`);
    assert.match((checkCluster(inputs(r, [])).findings as CheckResult[])[0]!.assumptions.join(" "), /admin port could not be read: http:\/\/127\.0\.0\.1:\d+\/api\/snapshot: no complete answer within 300 ms/);
  });

  test("a dripping health port ends at the deadline: unreachable, the reason naming the endpoint", { timeout: 5000 }, async () => {
    const health = await drip();
    const r = await readServerAgents({ host: "127.0.0.1", port: health }, null, 300);
    assert.equal(r.source, "unreachable");
    assert.equal(r.reason, `http://127.0.0.1:${health}/readyz: no complete answer within 300 ms (timeout)`);
    assert.match(checkCluster(inputs(r, [])).summary, new RegExp(`Could not read the server's health port \\(http://127\\.0\\.0\\.1:${health}/readyz: no complete answer`));
  });
});
