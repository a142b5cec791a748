// The binaries as users run them: `nodetunnel server` and `nodetunnel agent` as processes with
// upstream's flags and certificate files, curl as the HTTP CONNECT client, signals for shutdown.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startFakeKubelet, type FakeKubelet } from "../src/lab/index.js";
import { createPki, type Pki } from "../src/transport/index.js";
import { writeTlsFiles } from "./helpers/cli-process.js";
import { freePort } from "./helpers/free-port.js";

const bin = new URL("../bin/nodetunnel.js", import.meta.url).pathname;
const hasCurl = spawnSync("curl", ["--version"]).status === 0;

function run(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODETUNNEL_LOG_FORMAT: "json" } });
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  (child as ChildProcess & { stderrText: () => string }).stderrText = () => err;
  return child;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const get = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
};

describe("nodetunnel server and agent as processes", () => {
  const dir = mkdtempSync(join(tmpdir(), "nt-cli-"));
  const f = (name: string) => join(dir, name);
  const children: ChildProcess[] = [];
  let pki: Pki;
  let kubelet: FakeKubelet;
  let ports: Record<string, number>;

  before(async () => {
    pki = await createPki();
    const kubeletCert = await pki.issue("node-1", { ips: ["127.0.0.1"] });
    const agentCert = await pki.issue("node-1", { client: true });
    writeTlsFiles(f, pki, agentCert);
    kubelet = await startFakeKubelet({ nodeName: "node-1", cert: kubeletCert.cert, key: kubeletCert.key, host: "127.0.0.1", port: 0 });
    ports = { agent: await freePort(), health: await freePort(), admin: await freePort(), connect: await freePort(), agentHealth: await freePort(), agentAdmin: await freePort() };
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await kubelet.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses an invalid flag combination with exit 2 and a message naming the flags", () => {
    const r = spawnSync(process.execPath, [bin, "server", "--uds-name", f("x.sock"), "--server-port", "8090"], { encoding: "utf8" });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--uds-name requires --server-port=0/);
    const a = spawnSync(process.execPath, [bin, "agent", "--agent-identifiers", "ipv4=not-an-ip"], { encoding: "utf8" });
    assert.equal(a.status, 2);
    assert.match(a.stderr, /--agent-identifiers: "not-an-ip" is not an IPv4 address/);
    const v = spawnSync(process.execPath, [bin, "--version"], { encoding: "utf8" });
    assert.equal(v.status, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  });

  it("carries curl --proxytunnel to a kubelet through server and agent, then drains on SIGTERM", async (t) => {
    const server = run([
      "server", "--mode=http-connect", `--server-port=0`, `--frontend=http-connect=tcp:127.0.0.1:${ports.connect}`,
      `--frontend=grpc=unix:${f("grpc.sock")}`,
      `--agent-port=${ports.agent}`, "--agent-bind-address=127.0.0.1", `--cluster-cert=${f("server.crt")}`, `--cluster-key=${f("server.key")}`,
      `--cluster-ca-cert=${f("ca.crt")}`, `--health-port=${ports.health}`, "--health-bind-address=127.0.0.1", `--admin-port=${ports.admin}`,
      "--proxy-strategies=destHost", "--server-count=1", "--enable-profiling",
    ]);
    children.push(server);
    await until("server health", async () => (await get(`http://127.0.0.1:${ports.health}/healthz`)).status === 200);
    assert.deepEqual(await get(`http://127.0.0.1:${ports.health}/readyz`), { status: 500, body: "no connection to any proxy agent" });
    const agent = run([
      "agent", "--proxy-server-host=127.0.0.1", `--proxy-server-port=${ports.agent}`, `--ca-cert=${f("ca.crt")}`,
      `--agent-cert=${f("agent.crt")}`, `--agent-key=${f("agent.key")}`, "--agent-id=node-1", "--agent-identifiers=ipv4=127.0.0.1&host=node-1",
      `--health-server-port=${ports.agentHealth}`, "--health-server-host=127.0.0.1", `--admin-server-port=${ports.agentAdmin}`, "--sync-interval=200ms",
      "--probe-interval=1s",
    ]);
    children.push(agent);
    await until("agent ready", async () => (await get(`http://127.0.0.1:${ports.agentHealth}/readyz`)).status === 200);
    // Upstream's bodies once ready: "ok", and the checks with "check passed" when verbose.
    assert.deepEqual(await get(`http://127.0.0.1:${ports.agentHealth}/readyz`), { status: 200, body: "ok" });
    assert.deepEqual(await get(`http://127.0.0.1:${ports.agentHealth}/readyz?verbose`), { status: 200, body: "[+]ping ok\n[+]server-connected ok\ncheck passed\n" });
    await until("server ready", async () => (await get(`http://127.0.0.1:${ports.health}/readyz`)).status === 200);
    const metrics = (await get(`http://127.0.0.1:${ports.health}/metrics`)).body;
    assert.match(metrics, /konnectivity_network_proxy_server_ready_backend_connections 1/);
    if (!hasCurl) {
      t.diagnostic("curl is not installed: skipping the curl leg (CI installs it)");
    } else {
      const url = `https://127.0.0.1:${kubelet.port}/containerLogs/default/web/app`;
      const curl = spawn("curl", ["-sS", "--max-time", "10", "--proxytunnel", "-x", `http://127.0.0.1:${ports.connect}`, "--cacert", f("ca.crt"), url]);
      let out = "";
      curl.stdout.on("data", (c: Buffer) => (out += c.toString()));
      const [code] = await once(curl, "exit");
      assert.equal(code, 0);
      assert.match(out, /default\/web\/app on node-1: request 1 served/);
      // A node without an agent (loopback, so nothing leaves the machine even if routed): the proxy answers 500.
      const bad = spawnSync("curl", ["-sS", "--max-time", "10", "--proxytunnel", "-x", `http://127.0.0.1:${ports.connect}`, "https://127.0.9.9:10250/"], { encoding: "utf8" });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /500/);
    }
    // Upstream flags that are accepted and ignored are named, by both commands.
    const stderrOf = (c: ChildProcess) => (c as ChildProcess & { stderrText: () => string }).stderrText();
    assert.match(stderrOf(server), /nodetunnel server: --enable-profiling is accepted for compatibility and ignored/);
    assert.match(stderrOf(agent), /nodetunnel agent: --probe-interval is accepted for compatibility and ignored/);
    // Started as plain `node bin/nodetunnel.js`: both say what the missing #! flag costs.
    for (const c of [server, agent]) assert.match(stderrOf(c), /Node runs without --max-semi-space-size=1/);
    agent.kill("SIGTERM");
    const [agentCode] = await once(agent, "exit");
    assert.equal(agentCode, 0, (agent as ChildProcess & { stderrText: () => string }).stderrText());
    await until("server sees the agent go", async () => (await get(`http://127.0.0.1:${ports.health}/readyz`)).status === 500);
    server.kill("SIGTERM");
    const [serverCode] = await once(server, "exit");
    assert.equal(serverCode, 0);
  });
});
