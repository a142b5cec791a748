// curl as the HTTP CONNECT client (issue 2, "done when"): `curl --proxytunnel -x ...` reaches a
// kubelet-like HTTPS endpoint through the server and a real agent, with TLS to the kubelet inside
// the tunnel, over the cleartext loopback frontend and over the mTLS one; over the Unix socket
// frontend with a Node client, because curl cannot (see below).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import { logLines, startFakeKubelet, type FakeKubelet } from "../src/lab/index.js";
import { httpConnect } from "./helpers/connect-client.js";
import { Cleanup, startStack, type Stack } from "./helpers/stack.js";

interface CurlResult { code: number; stdout: string; stderr: string }

// Async on purpose: the server runs in this process, so a spawnSync would freeze it.
const curl = (args: string[]): Promise<CurlResult> =>
  new Promise((resolve) => {
    execFile("curl", ["-sS", "--max-time", "10", ...args], { encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });

const hasCurl = await curl(["--version"]).then((r) => r.code === 0);

// The kubelet sits on 127.0.0.2 and the agent advertises ipv4=127.0.0.2, so the dial is routed
// by destHost as a node's kubelet traffic is in a cluster.
const nodeIp = "127.0.0.2";

describe("curl --proxytunnel through server and agent to a kubelet", { timeout: 30_000, skip: hasCurl ? false : "needs curl (apt-get install curl)" }, () => {
  let stack: Stack;
  let kubelet: FakeKubelet;
  let files: { ca: string; cert: string; key: string };
  let url: string;
  const expected = logLines("node-1", "default", "web-1", "app");

  const cleanup = new Cleanup();
  after(() => cleanup.run());

  before(async () => {
    stack = await startStack(cleanup, { connectTls: true, proxyStrategies: ["destHost"] });
    const leaf = await stack.pki.issue("node-1", { ips: [nodeIp] });
    kubelet = await startFakeKubelet({ nodeName: "node-1", cert: leaf.cert, key: leaf.key, host: nodeIp, port: 0 });
    cleanup.after(() => kubelet.close());
    await stack.startAgent("node-1", `ipv4=${nodeIp}`);
    files = { ca: join(stack.dir, "ca.crt"), cert: join(stack.dir, "client.crt"), key: join(stack.dir, "client.key") };
    writeFileSync(files.ca, stack.pki.ca);
    writeFileSync(files.cert, stack.pki.client.cert);
    writeFileSync(files.key, stack.pki.client.key, { mode: 0o600 });
    url = `https://${nodeIp}:${kubelet.port}/containerLogs/default/web-1/app`;
  });

  it("over the cleartext loopback TCP frontend", async () => {
    const r = await curl(["--proxytunnel", "-x", `http://127.0.0.1:${stack.connectPort}`, "--cacert", files.ca, "-v", url]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, expected);
    assert.match(r.stderr, /< HTTP\/1\.1 200 Connection Established\r?\n/);
    await stack.settled();
  });

  it("over the mTLS TCP frontend (--proxy-cacert --proxy-cert --proxy-key)", async () => {
    const r = await curl([
      "--proxytunnel", "-x", `https://localhost:${stack.connectTlsPort}`,
      "--proxy-cacert", files.ca, "--proxy-cert", files.cert, "--proxy-key", files.key,
      "--cacert", files.ca, url,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, expected);
    await stack.settled();
  });

  it("is refused by the mTLS frontend without a client certificate", async () => {
    const before = kubelet.requests;
    const r = await curl(["--proxytunnel", "-x", `https://localhost:${stack.connectTlsPort}`, "--proxy-cacert", files.ca, "--cacert", files.ca, url]);
    assert.notEqual(r.code, 0, "curl must fail without a client certificate");
    assert.equal(r.stdout, "");
    assert.equal(kubelet.requests, before, "nothing reached the kubelet");
    await stack.settled();
  });

  // curl 7.88 has no HTTP proxy over a Unix socket: with --unix-socket it connects to the socket
  // as the origin and ignores -x (it starts TLS to the kubelet straight on the socket), and
  // socat is not installed. So the CONNECT is sent by a byte-exact Node client, and node's https
  // runs the kubelet request over the tunnelled socket, as kube-apiserver does.
  it("over the Unix socket frontend (Node client: curl cannot proxy over a Unix socket)", async () => {
    const { socket, head, rest } = await httpConnect({ path: stack.connectPath }, `${nodeIp}:${kubelet.port}`);
    assert.equal(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    assert.equal(rest.length, 0);
    const secure = tls.connect({ socket, ca: stack.pki.ca, host: nodeIp });
    after(() => secure.destroy());
    const body = await new Promise<string>((resolve, reject) => {
      // No agent: with one, node ignores createConnection and dials the kubelet directly.
      const req = https.request(url, { createConnection: () => secure }, (res) => {
        assert.equal(res.statusCode, 200);
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve(text));
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(body, expected);
    secure.destroy();
    await stack.settled();
  });
});
