// Certificates rotated under running processes, as cert-manager or a CA rotation does it: the
// kubelet swaps a mounted Secret's files, and `nodetunnel server` and `nodetunnel agent` must pick
// them up without a restart. Real processes, real files renamed over, real mTLS handshakes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import tls from "node:tls";
import { createPki, type PemPair, type Pki } from "../src/transport/index.js";
import { httpConnect, readUntil } from "./helpers/connect-client.js";
import { nodetunnelBin, startProcessBed, until } from "./helpers/cli-process.js";
import { freePort } from "./helpers/free-port.js";

/** The certificate a TLS port presents (SHA-256 fingerprint), whether or not it then accepts ours. */
async function presented(port: number, client: PemPair): Promise<string> {
  const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, cert: client.cert, key: client.key, ALPNProtocols: ["h2", "http/1.1"] });
  socket.on("error", () => {});
  try {
    await once(socket, "secureConnect");
    return socket.getPeerCertificate().fingerprint256;
  } finally {
    socket.destroy();
  }
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** One byte there and back through the server's mTLS CONNECT frontend and the agent. */
async function echoThrough(port: number, pki: Pki, client: PemPair, echoPort: number): Promise<void> {
  const { socket, head, rest } = await httpConnect({ port, tls: { ca: pki.ca, cert: client.cert, key: client.key, servername: "localhost" } }, `127.0.0.1:${echoPort}`);
  try {
    assert.match(head, /^HTTP\/1\.1 200/);
    socket.write("x");
    assert.equal((await readUntil(socket, rest, (b) => b.length >= 1)).toString(), "x");
  } finally {
    socket.destroy();
  }
}

test("server and agent take rotated certificates, keys and CAs from their files without a restart", { timeout: 90_000 }, async (t) => {
  const bed = await startProcessBed(t, "nt-rotation-");
  const { echoPort, file: f } = bed;
  // As the kubelet updates a Secret volume: written aside, then renamed over.
  const put = (name: string, text: string) => {
    writeFileSync(f(`.${name}.tmp`), text);
    renameSync(f(`.${name}.tmp`), f(name));
  };
  const [a, b, c] = await Promise.all([createPki(), createPki(), createPki()]);
  const agentA = await a.issue("node-1", { client: true });
  const agentB = await b.issue("node-1", { client: true });
  const writeServerSide = (pki: Pki) => {
    put("server.crt", pki.server.cert);
    put("server.key", pki.server.key);
    put("ca.crt", pki.ca);
  };
  const writeAgentSide = (pki: Pki, pair: PemPair) => {
    put("agent-ca.crt", pki.ca);
    put("agent.crt", pair.cert);
    put("agent.key", pair.key);
  };
  writeServerSide(a);
  writeAgentSide(a, agentA);
  const ports = { agent: await freePort(), frontend: await freePort(), health: await freePort(), agentHealth: await freePort() };
  const startServer = () => bed.run([
    "server", "--mode=http-connect", "--server-port=0", `--frontend=http-connect=tcp:127.0.0.1:${ports.frontend}`,
    `--server-cert=${f("server.crt")}`, `--server-key=${f("server.key")}`, `--server-ca-cert=${f("ca.crt")}`,
    `--agent-port=${ports.agent}`, "--agent-bind-address=127.0.0.1",
    `--cluster-cert=${f("server.crt")}`, `--cluster-key=${f("server.key")}`, `--cluster-ca-cert=${f("ca.crt")}`,
    `--health-port=${ports.health}`, "--health-bind-address=127.0.0.1", "--admin-port=0", "--tls-reload-interval=200ms",
  ]);
  const serverReady = async () => (await fetch(`http://127.0.0.1:${ports.health}/readyz`)).status === 200;

  let server = startServer();
  const agent = bed.run([
    "agent", "--proxy-server-host=127.0.0.1", `--proxy-server-port=${ports.agent}`, `--ca-cert=${f("agent-ca.crt")}`,
    `--agent-cert=${f("agent.crt")}`, `--agent-key=${f("agent.key")}`, "--agent-id=node-1", "--agent-identifiers=ipv4=127.0.0.1",
    `--health-server-port=${ports.agentHealth}`, "--health-server-host=127.0.0.1", "--admin-server-port=0",
    "--sync-interval=200ms", "--sync-interval-cap=1s", "--tls-reload-interval=200ms",
  ]);
  await until("the agent connected", serverReady);
  await echoThrough(ports.frontend, a, a.client, echoPort);
  assert.equal(await presented(ports.agent, agentA), fingerprint(a.server.cert));

  // The whole cluster moves to CA B: the server's files first, then the agent's.
  writeServerSide(b);
  await until("the agent port presents B's certificate", async () => (await presented(ports.agent, agentB)) === fingerprint(b.server.cert));
  await until("the frontend presents B's certificate", async () => (await presented(ports.frontend, b.client)) === fingerprint(b.server.cert));
  // The agent's stream, opened under A, stays: a kube-apiserver with B's client certificate tunnels through it.
  assert.ok(await serverReady(), "the agent stream opened under A is still up");
  await echoThrough(ports.frontend, b, b.client, echoPort);
  // A's client certificate is no longer trusted at the frontend.
  await assert.rejects(echoThrough(ports.frontend, b, a.client, echoPort));
  assert.match(server.stderrText(), /"tls":"agent-port"[^\n]*TLS files changed/);
  assert.match(server.stderrText(), /"tls":"frontends"[^\n]*TLS files changed/);
  const metrics = await (await fetch(`http://127.0.0.1:${ports.health}/metrics`)).text();
  const bExpiry = Math.floor(Date.parse(new X509Certificate(b.server.cert).validTo) / 1000);
  assert.match(metrics, new RegExp(`nodetunnel_tls_certificate_not_after_timestamp_seconds\\{flag="--cluster-cert"\\} ${bExpiry}\n`));
  assert.match(metrics, /nodetunnel_tls_reloads_total\{tls="frontends",result="applied"\} 1\n/);

  writeAgentSide(b, agentB);
  await until("the agent read B's files", () => /"tls":"agent"[^\n]*TLS files changed/.test(agent.stderrText()));
  // A new server process under B: the agent reconnects with what it reloaded (CA A alone would refuse it).
  server.kill("SIGKILL");
  await once(server, "exit");
  await until("the agent noticed the server went", async () => (await fetch(`http://127.0.0.1:${ports.agentHealth}/readyz`)).status !== 200);
  server = startServer();
  await until("the agent reconnected to the server under B", serverReady);
  await echoThrough(ports.frontend, b, b.client, echoPort);

  // Half a rotation: C's certificate without its key. The server keeps B's and says why, once.
  put("server.crt", c.server.cert);
  await until("a warning about the mismatched files", () => /do not make a usable TLS context/.test(server.stderrText()));
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(await presented(ports.agent, agentB), fingerprint(b.server.cert), "B's certificate stays in use");
  assert.equal(server.stderrText().match(/do not make a usable TLS context/g)!.length, 2, "one warning per listener (agent port, frontends)");
  put("server.key", c.server.key);
  await until("C's certificate once its key followed", async () => (await presented(ports.agent, agentB)) === fingerprint(c.server.cert));
});

test("a bad --tls-reload-interval or an unreadable CA file stops either command before it starts, with exit 2 naming the flag", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "nt-rotation-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await createPki();
  const f = (name: string) => join(dir, name);
  writeFileSync(f("server.crt"), pki.server.cert);
  writeFileSync(f("server.key"), pki.server.key);
  writeFileSync(f("ca.crt"), pki.ca);
  writeFileSync(f("empty.crt"), "");
  const server = (extra: string[]) => spawnSync(process.execPath, [nodetunnelBin, "server", `--uds-name=${f("s.sock")}`, "--server-port=0", "--agent-port=0",
    "--agent-bind-address=127.0.0.1", `--cluster-cert=${f("server.crt")}`, `--cluster-key=${f("server.key")}`, "--health-port=0", "--admin-port=0", ...extra],
  { encoding: "utf8", timeout: 20_000 });
  const agent = (extra: string[]) => spawnSync(process.execPath, [nodetunnelBin, "agent", "--proxy-server-host=127.0.0.1", "--health-server-port=0", "--admin-server-port=0", ...extra],
    { encoding: "utf8", timeout: 20_000 });
  for (const [r, pattern] of [
    [server(["--tls-reload-interval=5x", `--cluster-ca-cert=${f("ca.crt")}`]), /nodetunnel server: --tls-reload-interval: "5x" is not a duration/],
    [server([`--cluster-ca-cert=${f("empty.crt")}`]), /nodetunnel server: --cluster-ca-cert \S+empty\.crt: no PEM certificate in it \(the file is empty\)/],
    [agent(["--tls-reload-interval=bogus", `--ca-cert=${f("ca.crt")}`]), /nodetunnel agent: --tls-reload-interval: "bogus" is not a duration/],
    [agent([`--ca-cert=${f("empty.crt")}`]), /nodetunnel agent: --ca-cert \S+empty\.crt: no PEM certificate in it/],
  ] as const) {
    assert.equal(r.status, 2, `${r.stderr} (signal ${r.signal})`);
    assert.match(r.stderr, pattern);
  }
});
