// A node whose only way out is an HTTP proxy: `nodetunnel agent` with HTTPS_PROXY reaches its
// server through an HTTP CONNECT, as upstream's agent (grpc-go) does, with TLS end to end. The
// proxy here is a real one on loopback that demands Basic credentials and knows the server by a
// name the agent itself cannot resolve (the proxy resolves names, the node may not). The server
// reaches kube-apiserver (TokenReview) through HTTPS_PROXY the same way, as upstream's client-go.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { test } from "node:test";
import { startFakeKubeApiserver } from "../src/server/agent-auth/fake-kube-apiserver.js";
import { createPki } from "../src/transport/index.js";
import { httpConnect, readUntil } from "./helpers/connect-client.js";
import { nodetunnelBin, startProcessBed, until, writeTlsFiles } from "./helpers/cli-process.js";
import { startConnectProxy } from "./helpers/connect-proxy.js";
import { freePort } from "./helpers/free-port.js";

const serverName = "nodetunnel-server.test";

test("the agent reaches its server through HTTPS_PROXY with Basic credentials, by name, and tunnels through it", { timeout: 60_000 }, async (t) => {
  const bed = await startProcessBed(t, "nt-proxy-");
  const f = bed.file;
  const credentials = `Basic ${Buffer.from("node-egress:pa ss").toString("base64")}`;
  const agentPort = await freePort();
  // CONNECT for the server's name goes to the server on loopback; anything else, or no credentials, is refused.
  const authorized = (head: string) => head.includes(`\r\nProxy-Authorization: ${credentials}\r\n`);
  const proxy = await startConnectProxy(t, (target, head) => {
    if (!authorized(head)) return "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n";
    return target === `${serverName}:${agentPort}` ? agentPort : "HTTP/1.1 403 Forbidden\r\n\r\n";
  });
  const connects = () => proxy.requests.map((r) => ({ target: r.target, authorized: authorized(r.head) }));
  const proxyUrl = proxy.url("node-egress:pa%20ss@").href;

  const pki = await createPki({ serverNames: ["localhost", serverName] });
  const agentCert = await pki.issue("node-1", { client: true });
  writeTlsFiles(f, pki, agentCert);
  const health = await freePort();
  bed.run([
    "server", "--mode=http-connect", "--server-port=0", `--uds-name=${f("connect.sock")}`,
    `--agent-port=${agentPort}`, "--agent-bind-address=127.0.0.1",
    `--cluster-cert=${f("server.crt")}`, `--cluster-key=${f("server.key")}`, `--cluster-ca-cert=${f("ca.crt")}`,
    `--health-port=${health}`, "--health-bind-address=127.0.0.1", "--admin-port=0",
  ]);
  const agentArgs = [
    "agent", `--proxy-server-host=${serverName}`, `--proxy-server-port=${agentPort}`, `--ca-cert=${f("ca.crt")}`,
    `--agent-cert=${f("agent.crt")}`, `--agent-key=${f("agent.key")}`, "--agent-id=node-1", "--agent-identifiers=ipv4=127.0.0.1",
    "--health-server-port=0", "--admin-server-port=0", "--sync-interval=200ms", "--sync-interval-cap=1s",
  ];

  // Without credentials the proxy says 407, and the agent says so.
  const refused = bed.run(agentArgs, { HTTPS_PROXY: proxy.url().href });
  await until("the agent reports the proxy's 407", () => /refused the tunnel to nodetunnel-server\.test:\d+: 407 Proxy Authentication Required/.test(refused.stderrText()));
  refused.kill("SIGKILL");
  await once(refused, "exit");

  const agent = bed.run(agentArgs, { https_proxy: proxyUrl, NO_PROXY: "10.0.0.0/8,.cluster.local" });
  await until("the agent connected through the proxy", async () => (await fetch(`http://127.0.0.1:${health}/readyz`)).status === 200);
  assert.deepEqual(connects().at(-1), { target: `${serverName}:${agentPort}`, authorized: true }, "CONNECT by name, with the credentials");
  assert.match(agent.stderrText(), /"proxy":"http:\/\/node-egress:\*\*\*@127\.0\.0\.1:\d+"[^\n]*"proxied":\["nodetunnel-server\.test:\d+"\][^\n]*servers are reached through an HTTP CONNECT/);
  assert.doesNotMatch(agent.stderrText(), /pa ss|pa%20ss/, "the password is never logged");

  const { socket, head, rest } = await httpConnect({ path: f("connect.sock") }, `127.0.0.1:${bed.echoPort}`);
  t.after(() => socket.destroy());
  assert.match(head, /^HTTP\/1\.1 200/);
  socket.write("through the proxy");
  assert.equal((await readUntil(socket, rest, (b) => b.length >= 17)).toString(), "through the proxy");
});

test("an HTTPS_PROXY the agent cannot use stops it at start with exit 2, naming the variable", () => {
  const r = spawnSync(process.execPath, [nodetunnelBin, "agent", "--proxy-server-host=konnectivity.example"], {
    encoding: "utf8", timeout: 20_000, env: { ...process.env, HTTPS_PROXY: "socks5://user:s3cret@proxy:1080" },
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /nodetunnel agent: HTTPS_PROXY: socks5 proxies are not supported, only HTTP CONNECT proxies/);
  assert.doesNotMatch(r.stderr, /s3cret/);
});

test("the server reaches kube-apiserver for TokenReview through HTTPS_PROXY, by the kubeconfig's name", { timeout: 60_000 }, async (t) => {
  const bed = await startProcessBed(t, "nt-proxy-api-");
  const f = bed.file;
  const apiPki = await createPki({ serverNames: ["kube.test"] });
  const audience = "system:konnectivity-server";
  const api = await startFakeKubeApiserver({
    cert: apiPki.server.cert, key: apiPki.server.key, clientToken: "server-identity-token",
    tokens: { "agent-token": { username: "system:serviceaccount:kube-system:konnectivity-agent", audiences: [audience] } },
  });
  t.after(() => api.close());
  const apiPort = Number(new URL(api.url).port);
  // kube.test resolves nowhere: only the proxy knows where the API server is.
  const proxy = await startConnectProxy(t, (target) => (target === `kube.test:${apiPort}` ? apiPort : "HTTP/1.1 403 Forbidden\r\n\r\n"));
  writeFileSync(f("kubeconfig"), [
    "apiVersion: v1", "kind: Config", "current-context: ctx",
    "clusters:", "- name: c", "  cluster:", `    server: https://kube.test:${apiPort}`, `    certificate-authority-data: ${Buffer.from(apiPki.ca).toString("base64")}`,
    "contexts:", "- name: ctx", "  context:", "    cluster: c", "    user: u",
    "users:", "- name: u", "  user:", "    token: server-identity-token", "",
  ].join("\n"));
  const pki = await createPki({ serverNames: ["localhost"] });
  writeTlsFiles(f, pki, await pki.issue("node-1", { client: true }));
  writeFileSync(f("agent-token"), "agent-token\n");
  const agentPort = await freePort();
  const health = await freePort();
  const server = bed.run([
    "server", "--mode=http-connect", "--server-port=0", `--uds-name=${f("connect.sock")}`,
    `--agent-port=${agentPort}`, "--agent-bind-address=127.0.0.1", `--cluster-cert=${f("server.crt")}`, `--cluster-key=${f("server.key")}`,
    "--agent-namespace=kube-system", "--agent-service-account=konnectivity-agent", `--authentication-audience=${audience}`,
    `--kubeconfig=${f("kubeconfig")}`, "--health-port=0", "--admin-port=0",
  ], { HTTPS_PROXY: proxy.url("svc:pw@").href, NO_PROXY: ".cluster.local" });
  await until("the server logs that the API server goes through the proxy", () => /"apiServer":"https:\/\/kube\.test:\d+"[^\n]*kube-apiserver is reached through an HTTP CONNECT/.test(server.stderrText()));
  assert.doesNotMatch(server.stderrText(), /"pw"|svc:pw/, "the password is never logged");
  bed.run([
    "agent", "--proxy-server-host=localhost", `--proxy-server-port=${agentPort}`, `--ca-cert=${f("ca.crt")}`,
    `--service-account-token-path=${f("agent-token")}`, "--agent-id=node-1", "--agent-identifiers=ipv4=127.0.0.1",
    `--health-server-port=${health}`, "--admin-server-port=0", "--sync-interval=200ms", "--sync-interval-cap=1s",
  ]);
  await until("the agent's token was accepted", async () => (await fetch(`http://127.0.0.1:${health}/readyz`)).status === 200);
  assert.deepEqual(api.requests.map((r) => r.token), ["agent-token"], "one TokenReview, of the agent's token");
  assert.deepEqual(proxy.requests.map((r) => r.target), [`kube.test:${apiPort}`]);
  assert.match(proxy.requests[0]!.head, /\r\nProxy-Authorization: Basic c3ZjOnB3\r\n/);
});
