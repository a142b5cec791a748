// What a first-time user sees when something is wrong, from `nodetunnel server`, `agent` and
// `demo` run as processes: each mistake named by its flag, with exit code 2 for bad input and
// the fix in the message; an agent's repeated connect failures said in terms of its flags.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import { describe, it, type TestContext } from "node:test";
import { startFakeKubeApiserver } from "../src/server/agent-auth/fake-kube-apiserver.js";
import { createPki, type Pki } from "../src/transport/index.js";
import { type CliChild, nodetunnelBin, startProcessBed, until, type ProcessBed } from "./helpers/cli-process.js";
import { httpConnect } from "./helpers/connect-client.js";
import { freePort } from "./helpers/free-port.js";

interface Finished {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `nodetunnel ARGS` to its end without blocking the test's event loop; killed (by its PID) after `timeoutMs`. */
async function finish(args: readonly string[], timeoutMs = 30_000): Promise<Finished> {
  const child = spawn(process.execPath, [nodetunnelBin, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODETUNNEL_LOG_FORMAT: "json" } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [status] = (await once(child, "close")) as [number | null];
  clearTimeout(timer);
  return { status, stdout, stderr };
}

/** Log lines of a JSON-logging process, parsed (other stderr lines are skipped). */
function records(child: CliChild): Array<{ level: number; msg: string }> {
  return child.stderrText().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { level: number; msg: string });
}

/** A TCP port on 127.0.0.1 held by this test until it ends. */
async function holdPort(t: TestContext): Promise<number> {
  const holder = net.createServer().listen(0, "127.0.0.1");
  await once(holder, "listening");
  t.after(() => holder.close());
  return (holder.address() as net.AddressInfo).port;
}

interface Bed extends ProcessBed {
  readonly pki: Pki;
  /** server.crt/server.key (SANs 127.0.0.1, localhost), ca.crt, agent.crt/agent.key, other.key and other-ca.crt (another PKI). */
  readonly f: (name: string) => string;
}

async function bed(t: TestContext): Promise<Bed> {
  const b = await startProcessBed(t, "nt-cli-errors-");
  const [pki, other] = await Promise.all([createPki(), createPki()]);
  const agent = await pki.issue("node-1", { client: true });
  for (const [name, text] of Object.entries({
    "ca.crt": pki.ca, "server.crt": pki.server.cert, "server.key": pki.server.key, "agent.crt": agent.cert, "agent.key": agent.key,
    "other.key": other.server.key, "other-ca.crt": other.ca,
  })) writeFileSync(b.file(name), text);
  return { ...b, pki, f: b.file };
}

/** A server's flags with everything on port 0 or loopback, and the given extras. */
const serverArgs = (f: (name: string) => string, extra: readonly string[]) => [
  "server", `--uds-name=${f("s.sock")}`, "--server-port=0", "--agent-port=0", "--agent-bind-address=127.0.0.1",
  `--cluster-cert=${f("server.crt")}`, `--cluster-key=${f("server.key")}`, `--cluster-ca-cert=${f("ca.crt")}`, "--health-port=0", "--admin-port=0", ...extra,
];

describe("nodetunnel's errors for a first-time user", { timeout: 180_000 }, () => {
  it("refuses a certificate with another pair's key at start, exit 2 naming both flags, server and agent", async (t) => {
    const { f } = await bed(t);
    const cluster = await finish(serverArgs(f, [`--cluster-key=${f("other.key")}`]));
    assert.equal(cluster.status, 2, cluster.stderr);
    assert.match(cluster.stderr, /nodetunnel server: --cluster-cert and --cluster-key do not match: the key \(\S+other\.key\) is not the certificate's/);
    assert.doesNotMatch(cluster.stderr, /x509 certificate routines/);
    const frontend = await finish(serverArgs(f, [
      "--frontend=http-connect=tcp:127.0.0.1:0", `--server-cert=${f("server.crt")}`, `--server-key=${f("other.key")}`,
    ]).filter((a) => !a.startsWith("--uds-name") && a !== "--server-port=0").concat("--server-port=0"));
    assert.equal(frontend.status, 2, frontend.stderr);
    assert.match(frontend.stderr, /--server-cert and --server-key do not match/);
    const keyIsACertificate = await finish(serverArgs(f, [`--cluster-key=${f("server.crt")}`]));
    assert.equal(keyIsACertificate.status, 2, keyIsACertificate.stderr);
    assert.match(keyIsACertificate.stderr, /--cluster-key \S+server\.crt: not a private key OpenSSL reads/);
    // The agent used to retry this forever as "cannot reach the server".
    const agent = await finish(["agent", "--proxy-server-host=127.0.0.1", "--proxy-server-port=1", `--ca-cert=${f("ca.crt")}`,
      `--agent-cert=${f("agent.crt")}`, `--agent-key=${f("other.key")}`, "--health-server-port=0", "--admin-server-port=0"], 20_000);
    assert.equal(agent.status, 2, agent.stderr);
    assert.match(agent.stderr, /nodetunnel agent: --agent-cert and --agent-key do not match/);
  });

  it("says that --uds-name's directory does not exist, exit 2", async (t) => {
    const { f } = await bed(t);
    const r = await finish(serverArgs(f, [`--uds-name=${f("missing/konnectivity.sock")}`]));
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /nodetunnel server: --uds-name \S+missing\/konnectivity\.sock: the directory \S+missing does not exist/);
    assert.doesNotMatch(r.stderr, /EACCES/);
  });

  it("names the flag of a port already in use and how to find who holds it, exit 2, server and agent", async (t) => {
    const { f } = await bed(t);
    const port = await holdPort(t);
    for (const flag of ["--agent-port", "--health-port", "--admin-port"]) {
      const r = await finish(serverArgs(f, [`${flag}=${port}`, "--health-bind-address=127.0.0.1"]));
      assert.equal(r.status, 2, `${flag}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`nodetunnel server: ${flag}=${port}: 127\\.0\\.0\\.1:${port} is already in use: another process listens there \\(\`ss -ltnp 'sport = :${port}'\``));
    }
    // Two of its own flags on one port: that is the problem to name.
    const own = await freePort();
    const twice = await finish(serverArgs(f, [`--health-port=${own}`, `--admin-port=${own}`, "--health-bind-address=127.0.0.1"]));
    assert.equal(twice.status, 2, twice.stderr);
    assert.match(twice.stderr, new RegExp(`--health-port and --admin-port are both ${own}`));
    for (const flag of ["--health-server-port", "--admin-server-port"]) {
      // The agent also ends: the other port, already listening, is closed (it kept the process alive).
      const r = await finish(["agent", "--proxy-server-port=1", "--health-server-host=127.0.0.1", "--health-server-port=0", "--admin-server-port=0", `${flag}=${port}`], 20_000);
      assert.equal(r.status, 2, `${flag}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`nodetunnel agent: ${flag}=${port}: 127\\.0\\.0\\.1:${port} is already in use`));
    }
  });

  it("refuses to delete the socket of another running server (--delete-existing-uds-file is for stale ones), exit 2", async (t) => {
    const b = await bed(t);
    const first = b.run(serverArgs(b.f, []));
    await until("the first server's socket", () => existsSync(b.f("s.sock")) && /server started/.test(first.stderrText()), 30_000);
    const second = await finish(serverArgs(b.f, ["--delete-existing-uds-file"]));
    assert.equal(second.status, 2, second.stderr);
    assert.match(second.stderr, /nodetunnel server: another process serves \S+s\.sock; stop it or choose another --uds-name/);
    // The first server still has its socket, and serves it.
    const socket = net.connect(b.f("s.sock"));
    await once(socket, "connect");
    socket.destroy();
    assert.equal(first.exitCode, null);
  });

  it("explains an agent's TLS failures by its flags: a CA that did not sign the server's certificate, an address not in it", async (t) => {
    const b = await bed(t);
    const narrow = await createPki({ serverIps: ["127.0.0.2"], serverNames: ["cp.example"] });
    writeFileSync(b.f("narrow.crt"), narrow.server.cert);
    writeFileSync(b.f("narrow.key"), narrow.server.key);
    writeFileSync(b.f("narrow-ca.crt"), narrow.ca);
    const agentPort = await freePort();
    const server = b.run(serverArgs(b.f, [`--agent-port=${agentPort}`]));
    const narrowPort = await freePort();
    const narrowServer = b.run(serverArgs(b.f, [`--agent-port=${narrowPort}`, `--uds-name=${b.f("n.sock")}`, `--cluster-cert=${b.f("narrow.crt")}`, `--cluster-key=${b.f("narrow.key")}`]));
    await until("both servers", () => /server started/.test(server.stderrText()) && /server started/.test(narrowServer.stderrText()), 30_000);
    const agentArgs = (port: number, ca: string) => ["agent", "--proxy-server-host=127.0.0.1", `--proxy-server-port=${port}`, `--ca-cert=${b.f(ca)}`,
      `--agent-cert=${b.f("agent.crt")}`, `--agent-key=${b.f("agent.key")}`, "--health-server-port=0", "--admin-server-port=0", "--sync-interval=200ms"];
    const wrongCa = b.run(agentArgs(agentPort, "other-ca.crt"));
    const wrongName = b.run(agentArgs(narrowPort, "narrow-ca.crt"));
    const warning = (c: CliChild) => records(c).find((r) => r.level === 40 && /retrying with backoff/.test(r.msg))?.msg;
    await until("both agents' warnings", () => warning(wrongCa) !== undefined && warning(wrongName) !== undefined, 30_000);
    assert.match(warning(wrongCa)!, /^cannot reach the server: .*: the server.s certificate is not signed by --ca-cert \S+other-ca\.crt; give the CA that signed the server.s --cluster-cert as --ca-cert/);
    assert.match(warning(wrongName)!, /the server's certificate names DNS:cp\.example, IP:127\.0\.0\.2, not 127\.0\.0\.1, which the agent dials \(--proxy-server-host\): the server's certificate \(--cluster-cert\) needs IP:127\.0\.0\.1 among its SANs/);
  });

  it("says a token file it cannot read is the agent's own problem, and names --service-account-token-path when the server wants a token", async (t) => {
    const b = await bed(t);
    const api = await startFakeKubeApiserver({ cert: b.pki.server.cert, key: b.pki.server.key, clientToken: "server-identity-token", tokens: {} });
    t.after(() => api.close());
    writeFileSync(b.f("kubeconfig"), [
      "apiVersion: v1", "kind: Config", "clusters:", "- name: test", "  cluster:", `    server: ${api.url}`,
      `    certificate-authority-data: ${Buffer.from(b.pki.ca).toString("base64")}`, "contexts:", "- name: ctx", "  context:", "    cluster: test",
      "    user: s", "current-context: ctx", "users:", "- name: s", "  user:", "    token: server-identity-token", "",
    ].join("\n"));
    const agentPort = await freePort();
    const server = b.run(serverArgs(b.f, [`--agent-port=${agentPort}`]).filter((a) => !a.startsWith("--cluster-ca-cert")).concat(
      "--agent-namespace=kube-system", "--agent-service-account=konnectivity-agent", "--authentication-audience=system:konnectivity-server", `--kubeconfig=${b.f("kubeconfig")}`,
    ));
    await until("the server", () => /server started/.test(server.stderrText()), 30_000);
    const agentArgs = ["agent", "--proxy-server-host=127.0.0.1", `--proxy-server-port=${agentPort}`, `--ca-cert=${b.f("ca.crt")}`,
      "--health-server-port=0", "--admin-server-port=0", "--sync-interval=200ms"];
    const missing = b.run([...agentArgs, `--service-account-token-path=${b.f("tokens/token")}`]);
    const none = b.run(agentArgs);
    const warning = (c: CliChild) => records(c).find((r) => r.level === 40 && /retrying with backoff/.test(r.msg))?.msg;
    await until("both agents' warnings", () => warning(missing) !== undefined && warning(none) !== undefined, 30_000);
    assert.match(warning(missing)!, /^cannot read --service-account-token-path \S+tokens\/token: no such file \(ENOENT\)/);
    assert.doesNotMatch(missing.stderrText(), /cannot reach the server/);
    assert.match(warning(none)!, /UNAUTHENTICATED.*Bearer <token>.*; the server authenticates agents by token: give --service-account-token-path/);
    // A token that appears later (the kubelet mounts it) is taken at the next attempt.
    mkdirSync(b.f("tokens"));
    writeFileSync(b.f("tokens/token"), "not-a-known-token\n");
    await until("the agent sends the token", () => api.requests.some((r) => r.token === "not-a-known-token"), 30_000);
  });

  it("suggests the flag meant for a mistyped --flag=value as for --flag value", async () => {
    for (const args of [["agent", "--service-acount-token-path=/x"], ["agent", "--service-acount-token-path", "/x"], ["server", "--agent-prot=8132"]]) {
      const r = await finish(args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /\(Did you mean --(service-account-token-path|agent-port)\?\)/, args.join(" "));
      assert.doesNotMatch(r.stderr, /=\/x|=8132/, "the value (it may be a secret) is not echoed");
    }
  });

  it("answers no command with usage on stderr and exit 2, and asked-for help on stdout with exit 0", async () => {
    const none = await finish([]);
    assert.equal(none.status, 2);
    assert.equal(none.stdout, "");
    assert.match(none.stderr, /^Usage: nodetunnel/);
    for (const args of [["--help"], ["help"], ["help", "agent"]]) {
      const r = await finish(args);
      assert.equal(r.status, 0, args.join(" "));
      assert.match(r.stdout, /^Usage: nodetunnel/);
    }
  });

  it("logs a SIGTERM with --graceful-shutdown-timeout=0s at info, and the deadline's passing as a warning only when there was one", async (t) => {
    const b = await bed(t);
    const connectPort = await freePort();
    const start = async (extra: string[]) => {
      const server = b.run(serverArgs(b.f, ["--mode=http-connect", `--frontend=http-connect=tcp:127.0.0.1:${connectPort}`, ...extra]).filter((a) => !a.startsWith("--uds-name")));
      await until("the server", () => /"agentPort":\d+/.test(server.stderrText()), 30_000);
      const agentPort = Number(/"agentPort":(\d+)/.exec(server.stderrText())![1]);
      const agent = b.run(["agent", "--proxy-server-host=127.0.0.1", `--proxy-server-port=${agentPort}`, `--ca-cert=${b.f("ca.crt")}`,
        `--agent-cert=${b.f("agent.crt")}`, `--agent-key=${b.f("agent.key")}`, "--health-server-port=0", "--admin-server-port=0"]);
      await until("the agent", () => /connected to server/.test(agent.stderrText()), 30_000);
      return { server, agent };
    };
    const stop = async (server: CliChild) => {
      server.kill("SIGTERM");
      const [code] = await once(server, "exit");
      assert.equal(code, 0, server.stderrText());
      return records(server);
    };
    const immediate = await start([]);
    const logged = await stop(immediate.server);
    assert.deepEqual(logged.filter((r) => r.level >= 40 && /deadline/.test(r.msg)), [], "no warning for the shutdown that was asked for");
    assert.ok(logged.some((r) => r.level === 30 && /--graceful-shutdown-timeout=0s/.test(r.msg)));
    immediate.agent.kill("SIGKILL");
    // A tunnel still open when a real deadline passes: that is worth a warning.
    const graceful = await start(["--graceful-shutdown-timeout=1s"]);
    const tunnel = await httpConnect({ port: connectPort }, `127.0.0.1:${b.echoPort}`);
    assert.match(tunnel.head, /^HTTP\/1\.1 200/);
    tunnel.socket.on("error", () => {}); // cut at the deadline: a reset
    const afterDeadline = await stop(graceful.server);
    tunnel.socket.destroy();
    assert.ok(afterDeadline.some((r) => r.level === 40 && /close deadline passed/.test(r.msg)), graceful.server.stderrText());
  });

  it("prints no commands or addresses with demo --once: they are gone when it exits", async () => {
    const r = await finish(["demo", "--once"], 90_000);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /node-1 +http-connect/);
    assert.doesNotMatch(r.stdout, /Try it by hand|Dashboard:|Readiness:|curl /);
    // node-4's failure is the point of its rows: wrapped, never cut.
    assert.match(r.stdout.replace(/\s+/g, " "), /node-4 grpc .*no connected agent serves 127\.0\.1\.4.*'nodetunnel doctor cluster' here/);
  });
});

describe("output into a reader that goes away", () => {
  it("`nodetunnel server --help | head -0`: exit 0, no EPIPE stack trace", async () => {
    const child = spawn(process.execPath, [nodetunnelBin, "server", "--help"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    // The reader is gone before the help is written (as `| head` once it has its lines).
    child.stdout.destroy();
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|at /);
  });
});
