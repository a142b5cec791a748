// `nodetunnel server --enable-lease-controller` as a process against an API server that keeps
// Leases (the fake kube-apiserver on loopback): the lease upstream agents with
// --count-server-leases count appears under upstream's name and labels, and is renewed.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startFakeKubeApiserver, type FakeKubeApiserver } from "../src/server/agent-auth/fake-kube-apiserver.js";
import { createPki, type Pki } from "../src/transport/index.js";
import { freePort } from "./helpers/free-port.js";

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
