// Agent token authentication as upstream (shared/spec/konnectivity.md §2.3), against a fake
// kube-apiserver on loopback: the kubeconfig and in-cluster configurations, each refusal with its
// reason (unauthenticated, wrong service account, wrong audience, API down, API too slow), and a
// server that refuses to start with no agent authentication unless told so.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pino } from "pino";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions } from "../src/agent/index.js";
import type { CliIo } from "../src/cli/cli-io.js";
import { main } from "../src/cli/main.js";
import { agentAuthenticationDeps } from "../src/cli/server-command.js";
import { drain, encodePacket, isTunnelError } from "../src/protocol/index.js";
import {
  TokenReviewClient, createTokenAuthenticator, loadKubeClientConfig, parseIdentityMap, podNameExtra, nodeNameExtra,
} from "../src/server/agent-auth/index.js";
import { startFakeKubeApiserver, type FakeKubeApiserver } from "../src/server/agent-auth/fake-kube-apiserver.js";
import { NodetunnelServer, resolveServerOptions, type ServerOptionsInput } from "../src/server/index.js";
import { GrpcClient, GrpcStatus, createPki, type GrpcCallStatus, type Pki } from "../src/transport/index.js";

const log = pino({ level: "silent" });
const audience = "system:konnectivity-server";
const agentUser = "system:serviceaccount:kube-system:konnectivity-agent";
const tokenAuth = { agentNamespace: "kube-system", agentServiceAccount: "konnectivity-agent", audience };

let pki: Pki;
let api: FakeKubeApiserver;
let dir: string;
const b64 = (s: string) => Buffer.from(s).toString("base64");

function kubeconfig(name: string, user: Record<string, string>, server = api.url): string {
  const lines = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: test",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(pki.ca)}`,
    "contexts:",
    "- name: ctx",
    "  context:",
    "    cluster: test",
    "    user: konnectivity-server",
    "current-context: ctx",
    "users:",
    "- name: konnectivity-server",
    "  user:",
    ...Object.entries(user).map(([k, v]) => `    ${k}: ${v}`),
  ];
  const path = join(dir, name);
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "nt-security-token-"));
  pki = await createPki();
  api = await startFakeKubeApiserver({
    cert: pki.server.cert,
    key: pki.server.key,
    ca: pki.ca,
    clientToken: "server-identity-token",
    tokens: {
      "good-token": { username: agentUser, audiences: [audience] },
      "other-sa-token": { username: "system:serviceaccount:default:nosy", audiences: [audience] },
      "wrong-audience-token": { username: agentUser, audiences: ["https://kubernetes.default.svc"] },
      "node-1-token": { username: agentUser, audiences: [audience], extra: { [nodeNameExtra]: ["node-1"], [podNameExtra]: ["agent-abc"] } },
    },
  });
});

after(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the kube client configuration", () => {
  it("reads a kubeconfig with a bearer token and reviews a token with the configured audience", async () => {
    const config = await loadKubeClientConfig(kubeconfig("token.conf", { token: "server-identity-token" }), {});
    assert.equal(config.server, api.url);
    const review = await new TokenReviewClient(config).review("good-token", [audience]);
    assert.equal(review.authenticated, true);
    assert.equal(review.user?.username, agentUser);
    assert.deepEqual(review.audiences, [audience]);
    const last = api.requests.at(-1)!;
    assert.deepEqual(last, { token: "good-token", audiences: [audience], authorization: "Bearer server-identity-token" });
  });

  it("reads a kubeconfig with a client certificate given as files relative to the kubeconfig", async () => {
    const leaf = await pki.issue("system:konnectivity-server", { client: true });
    writeFileSync(join(dir, "client.crt"), leaf.cert);
    writeFileSync(join(dir, "client.key"), leaf.key);
    const path = kubeconfig("cert.conf", { "client-certificate": "client.crt", "client-key": "client.key" });
    const review = await new TokenReviewClient(await loadKubeClientConfig(path, {})).review("good-token", [audience]);
    assert.equal(review.authenticated, true);
    assert.equal(api.requests.at(-1)!.authorization, undefined, "the client certificate, not a token, identified the server");
  });

  it("uses the in-cluster service account when --kubeconfig is empty, and says what is missing otherwise", async () => {
    const sa = join(dir, "sa");
    mkdirSync(sa);
    writeFileSync(join(sa, "ca.crt"), pki.ca);
    writeFileSync(join(sa, "token"), "server-identity-token\n");
    const port = new URL(api.url).port;
    const config = await loadKubeClientConfig("", { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port }, sa);
    assert.equal(config.server, api.url);
    assert.equal((await new TokenReviewClient(config).review("good-token", [audience])).authenticated, true);
    await assert.rejects(loadKubeClientConfig(undefined, {}, sa), /needs --kubeconfig outside a pod/);
    await assert.rejects(loadKubeClientConfig(join(dir, "missing.conf"), {}), /--kubeconfig .*missing\.conf/);
  });

  it("never quotes the kubeconfig's text in an error: a malformed line may hold the token or the key", async () => {
    const secret = "eyJhbGciOiJSUzI1NiJ9.SECRET-TOKEN";
    for (const line of [`token: "${secret}`, `token: '${secret}`, `token: "${secret}\\q"`, `client-key-data: [${secret}`, `token: {${secret}`, `token: [a, ${secret}`]) {
      const path = join(dir, "broken.conf");
      writeFileSync(path, readFileSync(kubeconfig("ok.conf", { token: "x" }), "utf8").replace("    token: x", `    ${line}`));
      await assert.rejects(loadKubeClientConfig(path, {}),
        (e) => isTunnelError(e, "INVALID_OPTION") && /YAML line \d+/.test(e.message) && !e.message.includes("SECRET"), line);
    }
    // A line that is not "key: value" at all (a token wrapped onto a line of its own).
    const wrapped = join(dir, "wrapped.conf");
    writeFileSync(wrapped, readFileSync(kubeconfig("ok2.conf", { token: "x" }), "utf8").replace("    token: x", `    token: eyJhbGciOiJSUzI1NiJ9.\n    ${secret}`));
    await assert.rejects(loadKubeClientConfig(wrapped, {}), (e) => isTunnelError(e, "INVALID_OPTION") && !e.message.includes("SECRET"));
  });

  it("refuses a cleartext server and unsupported exec credentials", async () => {
    await assert.rejects(loadKubeClientConfig(kubeconfig("http.conf", { token: "x" }, "http://127.0.0.1:1"), {}), /not https/);
    await assert.rejects(loadKubeClientConfig(kubeconfig("exec.conf", { exec: "{}" }), {}), /exec and auth-provider/);
  });
});

describe("the token authenticator", () => {
  let authenticate: ReturnType<typeof createTokenAuthenticator>;
  before(async () => {
    const config = await loadKubeClientConfig(kubeconfig("auth.conf", { token: "server-identity-token" }), {});
    authenticate = createTokenAuthenticator(new TokenReviewClient(config, 1000), tokenAuth);
  });

  it("accepts the agents' service account with the audience", async () => {
    assert.equal((await authenticate("good-token")).username, agentUser);
  });

  it("refuses an unknown token as unauthenticated, with the API's reason", async () => {
    await assert.rejects(authenticate("forged"), (e) => isTunnelError(e, "UNAUTHENTICATED") && /invalid bearer token/.test(e.message));
  });

  it("refuses another service account's token as permission denied, naming both", async () => {
    await assert.rejects(authenticate("other-sa-token"),
      (e) => isTunnelError(e, "PERMISSION_DENIED") && e.message.includes("system:serviceaccount:default:nosy") && e.message.includes(agentUser));
  });

  it("refuses a token issued for another audience", async () => {
    await assert.rejects(authenticate("wrong-audience-token"), (e) => isTunnelError(e, "UNAUTHENTICATED") && e.message.includes(audience));
    assert.deepEqual(api.requests.at(-1)!.audiences, [audience], "the review asked for our audience only");
  });

  // TokenReviewStatus.audiences (authentication.k8s.io/v1): a client that sets spec.audiences must
  // check that status.audiences names one of them; an empty list with authenticated=true means the
  // token is valid for the API server's own audience, not for ours.
  it("refuses a token when the review does not confirm our audience (a TokenReview server that ignores spec.audiences)", async () => {
    api.behaviour = { kind: "audienceUnaware" };
    try {
      await assert.rejects(authenticate("wrong-audience-token"),
        (e) => isTunnelError(e, "UNAUTHENTICATED") && e.message.includes(audience) && /audience/.test(e.message));
      await assert.rejects(authenticate("good-token"), (e) => isTunnelError(e, "UNAUTHENTICATED"), "not even a good token: the answer proves nothing about the audience");
    } finally {
      api.behaviour = { kind: "normal" };
    }
  });

  it("refuses with a clear reason when the API server is down", async () => {
    const closed = net.createServer().listen(0, "127.0.0.1");
    await once(closed, "listening");
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const config = await loadKubeClientConfig(kubeconfig("down.conf", { token: "x" }, `https://127.0.0.1:${port}`), {});
    const down = createTokenAuthenticator(new TokenReviewClient(config, 1000), tokenAuth);
    await assert.rejects(down("good-token"), (e) => isTunnelError(e, "UNAUTHENTICATED") && /TokenReview at https:\/\/127\.0\.0\.1:\d+ failed: .*ECONNREFUSED/.test(e.message));
  });

  it("gives up after the timeout when the API server does not answer", async () => {
    api.behaviour = { kind: "delay", ms: 2000 };
    try {
      const config = await loadKubeClientConfig(kubeconfig("slow.conf", { token: "server-identity-token" }), {});
      const slow = createTokenAuthenticator(new TokenReviewClient(config, 200), tokenAuth);
      const started = Date.now();
      await assert.rejects(slow("good-token"), (e) => isTunnelError(e, "UNAUTHENTICATED") && /no answer within 200 ms/.test(e.message));
      const took = Date.now() - started;
      assert.ok(took >= 150 && took < 1500, `gave up after ${took} ms`);
    } finally {
      api.behaviour = { kind: "normal" };
    }
  });

  it("reports an HTTP error from the API server, hinting at RBAC for 403", async () => {
    api.behaviour = { kind: "status", code: 403 };
    try {
      await assert.rejects(authenticate("good-token"), (e) => isTunnelError(e, "UNAUTHENTICATED") && /HTTP 403 .*system:auth-delegator/.test(e.message));
    } finally {
      api.behaviour = { kind: "normal" };
    }
  });
});

describe("a server with token authentication", () => {
  let server: NodetunnelServer;
  let client: GrpcClient;
  const tokenFile = () => join(dir, "agent-token");

  before(async () => {
    const config = await loadKubeClientConfig(kubeconfig("server.conf", { token: "server-identity-token" }), {});
    const input: ServerOptionsInput = {
      frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }],
      agentListen: { port: 0, host: "127.0.0.1" },
      agentTls: { cert: pki.server.cert, key: pki.server.key },
      tokenAuth,
      identityMap: parseIdentityMap("node/node-1:\n  ipv4: [10.224.0.5]\n"),
      proxyStrategies: ["destHost", "default"],
    };
    server = await NodetunnelServer.start(resolveServerOptions(input), {
      log, registry: new Registry(), authenticateToken: createTokenAuthenticator(new TokenReviewClient(config, 500), tokenAuth),
    });
    client = await GrpcClient.connect({ host: "127.0.0.1", port: server.addresses.agentPort, tls: { ca: pki.ca } });
  });
  after(() => {
    client.destroy();
    server.destroy();
  });

  async function connect(metadata: Record<string, string>): Promise<GrpcCallStatus | "accepted"> {
    const call = client.openStream("/AgentService/Connect", metadata);
    const status = once(call, "status").then(([s]) => s as GrpcCallStatus);
    const outcome = await Promise.race([call.headers.then(() => "accepted" as const, () => status), status]);
    call.cancel();
    return outcome;
  }

  it("registers an agent whose token passes the review", async () => {
    writeFileSync(tokenFile(), "good-token\n");
    const agent = await NodetunnelAgent.start(resolveAgentOptions({
      agentId: "agent-a", identifiers: "", proxyServerHost: "127.0.0.1", proxyServerPort: server.addresses.agentPort,
      serviceAccountTokenPath: tokenFile(), tls: { ca: pki.ca, alpnProtocols: [] },
    }), { log, registry: new Registry() });
    try {
      await agent.waitForServers(1, 5000);
      const streams = server.proxy.registry.streamsOf("agent-a");
      assert.equal(streams.length, 1);
      assert.equal(streams[0]!.authenticatedAs, `token:${agentUser}`);
    } finally {
      agent.destroy();
    }
  });

  it("refuses a Connect without a token, with a forged token, and with another account's token, each with its reason", async () => {
    const none = await connect({ agentID: "x" });
    assert.notEqual(none, "accepted");
    assert.equal((none as GrpcCallStatus).code, GrpcStatus.UNAUTHENTICATED);
    assert.match((none as GrpcCallStatus).message, /Bearer <token>/);
    const forged = await connect({ agentID: "x", authorization: "Bearer forged" }) as GrpcCallStatus;
    assert.equal(forged.code, GrpcStatus.UNAUTHENTICATED);
    assert.match(forged.message, /token rejected: .*invalid bearer token/);
    const nosy = await connect({ agentID: "x", authorization: "Bearer other-sa-token" }) as GrpcCallStatus;
    assert.equal(nosy.code, GrpcStatus.PERMISSION_DENIED);
    assert.match(nosy.message, /system:serviceaccount:default:nosy/);
    assert.equal(server.proxy.registry.streamsOf("x").length, 0);
  });

  it("refuses every agent while the API server is unavailable, and accepts again when it is back", async () => {
    api.behaviour = { kind: "status", code: 503 };
    try {
      const refused = await connect({ agentID: "y", authorization: "Bearer good-token" }) as GrpcCallStatus;
      assert.equal(refused.code, GrpcStatus.UNAUTHENTICATED);
      assert.match(refused.message, /TokenReview at .* failed: HTTP 503/);
    } finally {
      api.behaviour = { kind: "normal" };
    }
    assert.equal(await connect({ agentID: "y", authorization: "Bearer good-token" }), "accepted");
  });

  it("binds a node-bound token to its node: the mapped IP and node name pass, another node's IP is refused", async () => {
    const auth = "Bearer node-1-token";
    assert.equal(await connect({ agentID: "node-1", agentIdentifiers: "host=node-1&ipv4=10.224.0.5", authorization: auth }), "accepted");
    assert.equal(await connect({ agentID: "agent-abc", agentIdentifiers: "ipv4=10.224.0.5", authorization: auth }), "accepted", "the pod name is an allowed agent id");
    const other = await connect({ agentID: "node-1", agentIdentifiers: "ipv4=10.224.0.6", authorization: auth }) as GrpcCallStatus;
    assert.equal(other.code, GrpcStatus.PERMISSION_DENIED);
    assert.match(other.message, /does not allow the claim ipv4=10\.224\.0\.6/);
    const id = await connect({ agentID: "node-2", agentIdentifiers: "ipv4=10.224.0.5", authorization: auth }) as GrpcCallStatus;
    assert.equal(id.code, GrpcStatus.PERMISSION_DENIED);
    assert.match(id.message, /agentID=node-2/);
  });
});

describe("TokenReviews under a flood of Connects", () => {
  // The agent port takes any TLS client when agents authenticate with tokens, and each Connect
  // with a bearer token cost one TokenReview (a new HTTPS connection to kube-apiserver) with no
  // bound: one unauthenticated connection could keep hundreds in flight. Upstream's client-go
  // client throttles them (5 QPS by default); here they are bounded in flight and in waiting.
  it("keeps at most maxInFlight reviews at the API server and refuses Connects beyond the waiting room at once, UNAVAILABLE", async (t) => {
    const config = await loadKubeClientConfig(kubeconfig("flood.conf", { token: "server-identity-token" }), {});
    const server = await NodetunnelServer.start(resolveServerOptions({
      frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }],
      agentListen: { port: 0, host: "127.0.0.1" }, agentTls: { cert: pki.server.cert, key: pki.server.key }, tokenAuth,
    }), {
      log, registry: new Registry(),
      authenticateToken: createTokenAuthenticator(new TokenReviewClient(config, 5000, { maxInFlight: 4, maxWaiting: 8 }), tokenAuth),
    });
    t.after(() => server.destroy());
    const attacker = await GrpcClient.connect({ host: "127.0.0.1", port: server.addresses.agentPort, tls: { ca: pki.ca } });
    t.after(() => attacker.destroy());
    const before = api.requests.length;
    // Each review takes 1 s: the 4 in flight, then the 8 waiting in two rounds, within the 5 s timeout.
    api.behaviour = { kind: "delay", ms: 1000 };
    t.after(() => (api.behaviour = { kind: "normal" }));
    const started = Date.now();
    const outcomes = Array.from({ length: 30 }, (_, i) => {
      const call = attacker.openStream("/AgentService/Connect", { agentID: `x${i}`, authorization: `Bearer junk-${i}` });
      return once(call, "status").then(([s]) => ({ status: s as GrpcCallStatus, ms: Date.now() - started }));
    });
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(api.requests.length - before, 4, "reviews at the API server while the first ones are unanswered");
    const done = await Promise.all(outcomes);
    const busy = done.filter((o) => o.status.code === GrpcStatus.UNAVAILABLE);
    assert.equal(busy.length, 30 - 4 - 8, "Connects beyond the 4 in flight and the 8 waiting");
    assert.ok(busy.every((o) => o.ms < 700 && /TokenReview/.test(o.status.message)), JSON.stringify(busy[0]));
    assert.ok(done.filter((o) => o.status.code !== GrpcStatus.UNAVAILABLE).every((o) => o.status.code === GrpcStatus.UNAUTHENTICATED));
    assert.equal(api.requests.length - before, 12, "every Connect that waited got its review");
  });

  // Until its token passed, a Connect's stream was not read, and node:http2 kept what the client
  // sent in the stream's window: 8 MiB per stream, any number of streams per unauthenticated
  // connection (20 streams held 160 MiB in the server). Agents send nothing before the server's
  // response headers (konnectivity.md §1.3); grpc-go, upstream, buffers at most its 64 KiB window.
  it("holds at most 64 KiB of what a Connect sends before its token passed, and keeps what a real agent sends early", async (t) => {
    const config = await loadKubeClientConfig(kubeconfig("early.conf", { token: "server-identity-token" }), {});
    const server = await NodetunnelServer.start(resolveServerOptions({
      frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }],
      agentListen: { port: 0, host: "127.0.0.1" }, agentTls: { cert: pki.server.cert, key: pki.server.key }, tokenAuth,
    }), { log, registry: new Registry(), authenticateToken: createTokenAuthenticator(new TokenReviewClient(config, 5000), tokenAuth) });
    t.after(() => server.destroy());
    const client = await GrpcClient.connect({ host: "127.0.0.1", port: server.addresses.agentPort, tls: { ca: pki.ca } });
    t.after(() => client.destroy());
    api.behaviour = { kind: "delay", ms: 1500 };
    t.after(() => (api.behaviour = { kind: "normal" }));
    const started = Date.now();
    const flood = client.openStream("/AgentService/Connect", { agentID: "flood", authorization: "Bearer junk" });
    const floodStatus = once(flood, "status").then(([s]) => s as GrpcCallStatus);
    // 1 MiB: within the stream window, so the client is not held up writing (then it stops reading).
    for (let i = 0; i < 4; i++) flood.write(new Uint8Array(256 * 1024));
    const refused = await floodStatus;
    assert.equal(refused.code, GrpcStatus.RESOURCE_EXHAUSTED, refused.message);
    assert.match(refused.message, /before the call was accepted/);
    assert.ok(Date.now() - started < 1500, "refused while the token was still under review");
    // A small message sent before the response headers (a DRAIN) is kept and handled once accepted.
    const early = client.openStream("/AgentService/Connect", { agentID: "early", authorization: "Bearer good-token" });
    early.write(encodePacket(drain()));
    await early.headers;
    const stream = server.proxy.registry.streamsOf("early")[0];
    assert.ok(stream, "registered");
    for (let i = 0; i < 50 && !stream.isDraining; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(stream.isDraining, true, "the DRAIN sent before acceptance was delivered");
    early.cancel();
  });

  it("a Connect that gives up while waiting for its turn leaves the waiting room", async () => {
    const config = await loadKubeClientConfig(kubeconfig("wait.conf", { token: "server-identity-token" }), {});
    const client = new TokenReviewClient(config, 5000, { maxInFlight: 1, maxWaiting: 1 });
    api.behaviour = { kind: "delay", ms: 600 };
    try {
      const first = client.review("good-token", [audience]);
      const giveUp = new AbortController();
      const waiting = client.review("good-token", [audience], giveUp.signal);
      await assert.rejects(client.review("good-token", [audience]), (e) => isTunnelError(e, "LIMIT"), "the waiting room holds one");
      giveUp.abort();
      await assert.rejects(waiting, (e) => isTunnelError(e, "CANCELLED"));
      const third = client.review("good-token", [audience]);
      assert.equal((await first).authenticated, true);
      assert.equal((await third).authenticated, true, "the place freed by the cancelled one was taken");
    } finally {
      api.behaviour = { kind: "normal" };
    }
  });
});

describe("no agent authentication at all", () => {
  const base = {
    frontends: [{ mode: "grpc" as const, listen: { port: 0, host: "127.0.0.1" } }],
    agentListen: { port: 0, host: "127.0.0.1" },
  };

  it("is refused unless --insecure-allow-any-agent is given, naming the flags", async () => {
    await assert.rejects(agentAuthenticationDeps(resolveServerOptions(base), { tokenReviewTimeout: "1s" }, {}),
      (e) => isTunnelError(e, "INVALID_OPTION") && ["--cluster-ca-cert", "--agent-namespace", "--insecure-allow-any-agent"].every((f) => e.message.includes(f)));
    const consented = await agentAuthenticationDeps(resolveServerOptions({ ...base, insecureAllowAnyAgent: true }), { tokenReviewTimeout: "1s" }, {});
    assert.match(consented.warning ?? "", /not authenticated/);
    const mtls = await agentAuthenticationDeps(resolveServerOptions({ ...base, agentTls: { ...pki.server, ca: pki.ca } }), { tokenReviewTimeout: "1s" }, {});
    assert.deepEqual(mtls, { warning: undefined });
  });

  it("makes `nodetunnel server` exit 2 before listening", async () => {
    let stderr = "";
    let code: number | undefined;
    const io: CliIo = {
      stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) }, stdin: Readable.from([]), env: {},
      exit: (c) => (code = c),
    };
    writeFileSync(join(dir, "s.crt"), pki.server.cert);
    writeFileSync(join(dir, "s.key"), pki.server.key);
    await main(["server", `--uds-name=${join(dir, "cli.sock")}`, "--server-port=0", "--agent-port=0", "--health-port=0", "--admin-port=0",
      `--cluster-cert=${join(dir, "s.crt")}`, `--cluster-key=${join(dir, "s.key")}`], io);
    assert.equal(code, 2, stderr);
    assert.match(stderr, /--insecure-allow-any-agent/);
  });
});
