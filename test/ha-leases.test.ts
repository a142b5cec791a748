// Lease-based server counting (upstream's --enable-lease-controller and --count-server-leases)
// against an API server that keeps Leases (the fake kube-apiserver on loopback): `nodetunnel
// server` as a process holds its lease under upstream's name and labels, and an agent behind one
// load-balanced address counts the servers' leases, so it holds every server even when the
// servers' own `servercount` says 1, as lease-mode manifests leave it.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions, type ServerCountSource } from "../src/agent/index.js";
import { NodetunnelServer, resolveServerOptions } from "../src/server/index.js";
import { serverCountFromFlags, type AgentFlags } from "../src/cli/agent-command.js";
import { startFakeKubeApiserver, type FakeKubeApiserver } from "../src/server/agent-auth/fake-kube-apiserver.js";
import type { KubeClientConfig } from "../src/server/agent-auth/index.js";
import { LeaseController, ServerLeaseCounter } from "../src/server/leases/index.js";
import { createPki, type Pki } from "../src/transport/index.js";
import { freePort } from "./helpers/free-port.js";
import { startLoadBalancer } from "./helpers/load-balancer.js";
import { Cleanup, silentLog } from "./helpers/stack.js";
import { waitFor } from "./helpers/wait.js";

const bin = new URL("../bin/nodetunnel.js", import.meta.url).pathname;

describe("the server's lease controller, as a process", () => {
  const dir = mkdtempSync(join(tmpdir(), "nt-leases-"));
  const f = (name: string) => join(dir, name);
  let pki: Pki;
  let api: FakeKubeApiserver;
  const children: ChildProcess[] = [];

  before(async () => {
    pki = await createPki({ serverIps: ["127.0.0.1"] });
    api = await startFakeKubeApiserver({ cert: pki.server.cert, key: pki.server.key, clientToken: "server-token", tokens: {} });
    writeFileSync(f("server.crt"), pki.server.cert);
    writeFileSync(f("server.key"), pki.server.key);
    writeFileSync(f("ca.crt"), pki.ca);
    writeFileSync(f("kubeconfig"), [
      "apiVersion: v1", "kind: Config",
      "clusters:", "- name: test", "  cluster:", `    server: ${api.url}`, `    certificate-authority-data: ${Buffer.from(pki.ca).toString("base64")}`,
      "contexts:", "- name: ctx", "  context:", "    cluster: test", "    user: konnectivity-server",
      "current-context: ctx",
      "users:", "- name: konnectivity-server", "  user:", "    token: server-token", "",
    ].join("\n"));
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("holds konnectivity-proxy-server-<server-id> with the --lease-label labels in --lease-namespace (renewal: lease-controller.test.ts)", async () => {
    const server = spawn(process.execPath, [
      bin, "server", `--uds-name=${f("s.sock")}`, "--server-port=0", `--agent-port=${await freePort()}`, "--agent-bind-address=127.0.0.1",
      `--cluster-cert=${f("server.crt")}`, `--cluster-key=${f("server.key")}`, `--cluster-ca-cert=${f("ca.crt")}`,
      `--health-port=${await freePort()}`, "--health-bind-address=127.0.0.1", `--admin-port=${await freePort()}`,
      "--server-id=cp-1", "--enable-lease-controller", "--lease-namespace=konnectivity", "--lease-label=k8s-app=konnectivity-server,tier=cp",
      `--kubeconfig=${f("kubeconfig")}`,
    ], { stdio: ["ignore", "ignore", "pipe"] });
    children.push(server);
    let stderr = "";
    server.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const key = "konnectivity/konnectivity-proxy-server-cp-1";
    for (let i = 0; i < 200 && !api.leases.has(key); i++) await new Promise((r) => setTimeout(r, 50));
    const lease = api.leases.get(key);
    assert.ok(lease, `no lease after 10 s; server stderr: ${stderr.slice(-500)}`);
    assert.deepEqual(lease.metadata.labels, { "k8s-app": "konnectivity-server", tier: "cp" });
    assert.equal(lease.spec?.holderIdentity, "cp-1");
    assert.equal(lease.spec?.leaseDurationSeconds, 30);
    assert.ok(Math.abs(Date.parse(String(lease.spec?.renewTime)) - Date.now()) < 10_000, "renewed just now");
    assert.doesNotMatch(stderr, /lease.* is accepted for compatibility and ignored/);
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
  });

  it("refuses a malformed --lease-label with exit 2, naming the flag", () => {
    const r = spawnSync(process.execPath, [bin, "server", `--uds-name=${f("x.sock")}`, "--server-port=0", "--insecure-allow-any-agent",
      "--agent-bind-address=127.0.0.1", "--enable-lease-controller", "--lease-label=k8s-app"], { encoding: "utf8", timeout: 20_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--lease-label: "k8s-app" is not key=value/);
  });
});

describe("an agent that counts the servers' leases", () => {
  const cleanup = new Cleanup();
  let pki: Pki;
  let api: FakeKubeApiserver;
  let config: KubeClientConfig;
  const labels = { "k8s-app": "konnectivity-server" };

  before(async () => {
    pki = await createPki({ serverIps: ["127.0.0.1"] });
    api = await startFakeKubeApiserver({ cert: pki.server.cert, key: pki.server.key, clientToken: "token", tokens: {} });
    config = { server: api.url, ca: pki.ca, token: "token", insecureSkipTlsVerify: false, source: "test" };
    cleanup.after(() => api.close());
  });
  after(() => cleanup.run());

  /** Three servers with --server-count=1 behind a round-robin balancer, each holding its lease. */
  async function threeServers(prefix: string) {
    const servers: NodetunnelServer[] = [];
    for (const i of [1, 2, 3]) {
      const server = await NodetunnelServer.start(resolveServerOptions({
        serverId: `${prefix}-s${i}`, serverCount: 1,
        frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }],
        agentListen: { port: 0, host: "127.0.0.1" }, agentTls: { ...pki.server, ca: pki.ca },
      }), { log: silentLog, registry: new Registry() });
      cleanup.after(() => server.destroy());
      const leases = new LeaseController(config, { serverId: `${prefix}-s${i}`, namespace: prefix, labels }, silentLog, new Registry());
      await leases.renew();
      servers.push(server);
    }
    const lb = await startLoadBalancer(cleanup, () => servers.map((s) => s.addresses.agentPort));
    return { servers, lb };
  }

  async function agentBehind(prefix: string, port: number, source: ServerCountSource): Promise<NodetunnelAgent> {
    const counter = new ServerLeaseCounter(config, { namespace: prefix, selector: "k8s-app=konnectivity-server" }, new Registry());
    const agent = await NodetunnelAgent.start(resolveAgentOptions({
      agentId: `${prefix}-${source}`, identifiers: "ipv4=127.0.3.1", proxyServerHost: `127.0.0.1:${port}`,
      tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] },
      syncIntervalMs: 100, syncIntervalCapMs: 400, serverCountSource: source, leaseCountIntervalMs: 200,
    }), { log: silentLog, registry: new Registry(), countServerLeases: source === "header" ? undefined : () => counter.count() });
    cleanup.after(() => agent.destroy());
    return agent;
  }

  it("holds all three servers with the leases as its count (default) or the larger count (max); with the header alone, one", async () => {
    const { lb } = await threeServers("count");
    const byLeases = await agentBehind("count", lb.port, "leases");
    const byMax = await agentBehind("count", lb.port, "max");
    const byHeader = await agentBehind("count", lb.port, "header");
    await byLeases.waitForServers(3, 8000);
    await byMax.waitForServers(3, 8000);
    assert.equal(byLeases.status().knownServerCount, 3);
    assert.equal(byMax.status().knownServerCount, 3);
    await byHeader.waitForServers(1, 8000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(byHeader.status().servers.length, 1, "the servers say servercount 1, and that is all a header-counting agent holds");
  });

  it("follows the count when a server's lease appears later, and keeps the last count while the API fails", async () => {
    const { lb } = await threeServers("grow");
    // Only two leases at first.
    api.leases.delete("grow/konnectivity-proxy-server-grow-s3");
    const agent = await agentBehind("grow", lb.port, "leases");
    await agent.waitForServers(2, 8000);
    assert.equal(agent.status().knownServerCount, 2);
    await new LeaseController(config, { serverId: "grow-s3", namespace: "grow", labels }, silentLog, new Registry()).renew();
    await agent.waitForServers(3, 8000);
    assert.equal(agent.status().knownServerCount, 3);
    api.behaviour = { kind: "status", code: 500 };
    try {
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(agent.status().knownServerCount, 3, "a failing list keeps the last count");
      assert.equal(agent.status().servers.length, 3);
    } finally {
      api.behaviour = { kind: "normal" };
    }
    await waitFor(() => agent.status().servers.length === 3, "still three");
  });
});

describe("the agent's lease flags", () => {
  const base = {} as AgentFlags;
  it("map to a count source as upstream's: default counts leases, max takes the larger; --lease-label is the old spelling", () => {
    assert.deepEqual(serverCountFromFlags(base), { source: "header" });
    assert.deepEqual(serverCountFromFlags({ ...base, serverCountSource: "max" }), { source: "header" }, "without --count-server-leases the header decides");
    assert.deepEqual(serverCountFromFlags({ ...base, countServerLeases: true }), { source: "leases", leases: { namespace: "kube-system", selector: "k8s-app=konnectivity-server" } });
    assert.deepEqual(serverCountFromFlags({ ...base, countServerLeases: "true", serverCountSource: "max", leaseNamespace: "cp", leaseLabel: "app=a,tier=b" }),
      { source: "max", leases: { namespace: "cp", selector: "app=a,tier=b" } });
    assert.equal(serverCountFromFlags({ ...base, countServerLeases: true, leaseLabel: "old=x", leaseLabelSelector: "new=y" }).leases?.selector, "new=y");
  });
  it("refuse what upstream would not take, naming the flag", () => {
    assert.throws(() => serverCountFromFlags({ ...base, serverCountSource: "leases" }), /--server-count-source must be default or max, not "leases"/);
    assert.throws(() => serverCountFromFlags({ ...base, countServerLeases: true, leaseLabelSelector: "nolabel" }), /--lease-label-selector: "nolabel" is not key=value/);
    assert.throws(() => serverCountFromFlags({ ...base, countServerLeases: true, leaseNamespace: "Kube_System" }), /--lease-namespace: "Kube_System" is not a namespace name/);
    assert.throws(() => serverCountFromFlags({ ...base, countServerLeases: "maybe" }), /--count-server-leases/);
  });
});

