import { describe, test, type TestContext } from "node:test";
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GrpcClient } from "./grpc-client.js";
import type { GrpcCallStatus, GrpcClientCall } from "./grpc-client-call.js";
import type { GrpcServerCall } from "./grpc-server-call.js";
import { http2Implementations, type Http2Implementation } from "./grpc-options.js";
import { GrpcServer, type GrpcHandler } from "./grpc-server.js";
import { GrpcStatus, GrpcStatusError } from "./grpc-status.js";
import { createPki, type Pki } from "./pki.js";
import { isTunnelError } from "../protocol/tunnel-error.js";

let pkiPromise: Promise<Pki> | undefined;
const pki = () => (pkiPromise ??= createPki());

function socketPath(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "nt-grpc-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "s.sock");
}

async function startServer(t: TestContext, routes: Record<string, GrpcHandler>, options?: ConstructorParameters<typeof GrpcServer>[1], clientImpl: Http2Implementation = "node") {
  const server = new GrpcServer(routes, options);
  t.after(async () => {
    server.destroy();
    await server.close();
  });
  const path = socketPath(t);
  await server.listen({ path });
  const client = await GrpcClient.connect({ path }, { http2: clientImpl });
  t.after(() => client.destroy());
  return { server, client, path };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const statusOf = (call: GrpcClientCall) => once(call, "status").then(([s]) => s as GrpcCallStatus);
const text = (m: Uint8Array) => Buffer.from(m).toString();

const echo: GrpcHandler = (call) => {
  call.sendHeaders({ serverID: "server-1", serverCount: "3" });
  call.on("message", (m: Uint8Array) => call.write(m));
  call.on("end", () => call.end(GrpcStatus.OK, "done"));
};

// The whole suite runs on both HTTP/2 implementations (options.http2) of the server, each with
// both implementations of the client.
for (const http2Impl of http2Implementations) for (const clientImpl of http2Implementations) describe(`the ${clientImpl} HTTP/2 client against the ${http2Impl} HTTP/2 server`, () => {
  const start = (t: TestContext, routes: Record<string, GrpcHandler>, options?: ConstructorParameters<typeof GrpcServer>[1]) =>
    startServer(t, routes, { http2: http2Impl, ...options }, clientImpl);

  test("with streamlessSessionTimeoutMs, a session without a stream is closed; one with a stream is kept until it has none", async (t) => {
    const { client, path } = await start(t, { "/AgentService/Connect": echo }, { streamlessSessionTimeoutMs: 300 });
    // Whether the client's session ends within `ms` (a failure must not hang the run).
    const closesWithin = (c: GrpcClient, ms: number) =>
      Promise.race([once(c, "close").then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    // A session that never opens a stream (a peer that never authenticates) goes.
    assert.equal(await closesWithin(client, 3000), true, "closed within the timeout and the GOAWAY's grace");

    // A session with a stream open stays past the timeout, and goes once the stream is over.
    const busy = await GrpcClient.connect({ path }, { http2: clientImpl });
    t.after(() => busy.destroy());
    const call = busy.openStream("/AgentService/Connect", {});
    await call.headers;
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(busy.isClosed, false, "kept while its stream is open");
    const status = statusOf(call);
    call.end();
    assert.equal((await status).code, 0);
    assert.equal(await closesWithin(busy, 3000), true, "closed once its stream was over");
  });

  test("without streamlessSessionTimeoutMs (the default), a session without a stream stays", async (t) => {
    const { client } = await start(t, { "/AgentService/Connect": echo });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(client.isClosed, false);
  });

  test("a call over a Unix socket carries metadata both ways, messages in order and the trailers' status", async (t) => {
    let seen: GrpcServerCall | undefined;
    const { server, client, path } = await start(t, { "/AgentService/Connect": (call) => ((seen = call), echo(call)) });
    assert.equal(statSync(path).isSocket(), true);
    const call = client.openStream("/AgentService/Connect", { agentID: "agent-1", agentIdentifiers: "host=node-1" });
    const received: string[] = [];
    call.on("message", (m: Uint8Array) => received.push(text(m)));
    const status = statusOf(call);
    const headers = await call.headers;
    assert.deepEqual(headers.get("serverid"), ["server-1"]);
    assert.deepEqual(headers.get("servercount"), ["3"]);
    for (let i = 0; i < 100; i++) call.write(Buffer.from(`m${i}`));
    call.end();
    assert.deepEqual(await status, { code: 0, message: "done", metadata: new Map() });
    assert.deepEqual(received, Array.from({ length: 100 }, (_, i) => `m${i}`));
    assert.deepEqual(seen!.metadata.get("agentid"), ["agent-1"]);
    assert.deepEqual(seen!.metadata.get("agentidentifiers"), ["host=node-1"]);
    assert.equal(seen!.peer.address, `unix:${path}`);
    assert.equal(seen!.signal.aborted, true);
    assert.equal(server.sessionCount, 1);
    client.close();
    await once(client, "close");
    await server.close();
    assert.equal(server.sessionCount, 0);
    assert.equal(existsSync(path), false, "the socket file is removed on close");
  });

  test("listen replaces a stale socket file, applies the mode, and refuses to delete a regular file or a live socket", async (t) => {
    const path = socketPath(t);
    // A predecessor that died without cleaning up: its socket file is still there.
    const predecessor = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)},()=>console.log("up"))`], { stdio: ["ignore", "pipe", "inherit"] });
    await once(predecessor.stdout!, "data");
    predecessor.kill("SIGKILL");
    await once(predecessor, "close");
    assert.equal(statSync(path).isSocket(), true);
    writeFileSync(path + ".txt", "x");
    const live = net.createServer().listen(path + ".live");
    await once(live, "listening");
    t.after(() => live.close());
    const server = new GrpcServer({}, { http2: http2Impl });
    t.after(() => server.destroy());
    await assert.rejects(server.listen({ path: path + ".live" }), /another process serves/);
    await server.listen({ path, mode: 0o660 });
    assert.equal(statSync(path).mode & 0o777, 0o660);
    await assert.rejects(server.listen({ path: path + ".txt" }), (e) => isTunnelError(e, "INVALID_OPTION"));
  });

  test("an unknown path gets a trailers-only UNIMPLEMENTED and the headers promise rejects", async (t) => {
    const { client } = await start(t, {});
    const call = client.openStream("/Nope/Nothing");
    const status = await statusOf(call);
    assert.equal(status.code, GrpcStatus.UNIMPLEMENTED);
    assert.match(status.message, /\/Nope\/Nothing/);
    await assert.rejects(call.headers, (e) => e instanceof GrpcStatusError && e.grpcStatus === 12);
  });

  test("a request that is not gRPC gets HTTP 415", async (t) => {
    const { path } = await start(t, { "/AgentService/Connect": echo });
    const session = http2.connect("http://localhost", { createConnection: () => net.connect(path) });
    t.after(() => session.destroy());
    for (const headers of [{ ":method": "GET", ":path": "/AgentService/Connect" }, { ":method": "POST", ":path": "/AgentService/Connect", "content-type": "application/json" }]) {
      const req = session.request(headers);
      req.end();
      const [response] = await once(req, "response") as [http2.IncomingHttpHeaders];
      assert.equal(response[":status"], 415);
      req.resume();
      await once(req, "close");
    }
  });

  test("a request that is not gRPC and keeps its side open gets HTTP 415, then RST_STREAM: what it sends is not kept", async (t) => {
    const { path } = await start(t, {});
    const session = http2.connect("http://localhost", { createConnection: () => net.connect(path) });
    t.after(() => session.destroy());
    const req = session.request({ ":method": "POST", ":path": "/x", "content-type": "text/plain" });
    req.write(Buffer.alloc(1000));
    const [response] = await once(req, "response") as [http2.IncomingHttpHeaders];
    assert.equal(response[":status"], 415);
    req.resume();
    await within(() => req.closed, "the server resets the stream");
    assert.equal(req.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  });

  // The client cancels its call, or its whole connection goes: the handler hears CANCELLED either
  // way, and the builtin server (the default for the agent port and the gRPC frontend) says which
  // (node:http2 reports only the CANCEL).
  for (const [how, message] of [
    ["cancels its call", /^grpc: the client ended the call/],
    ["loses its connection", /^grpc: the connection closed under the call/],
  ] as const) {
    test(`the handler sees the call end, and why, when the client ${how}`, async (t) => {
      const closed = deferred<unknown>();
      const { client } = await start(t, {
        "/S/M": (call) => {
          call.sendHeaders();
          call.on("message", () => {});
          call.on("close", (err: unknown) => closed.resolve(err));
        },
      });
      const call = client.openStream("/S/M");
      call.on("error", () => {});
      await call.headers;
      if (how === "cancels its call") {
        call.cancel();
        assert.equal((await statusOf(call)).code, GrpcStatus.CANCELLED);
      } else client.destroy();
      const err = await closed.promise;
      assert.ok(isTunnelError(err, "CANCELLED"), String(err));
      if (http2Impl === "builtin") assert.match((err as Error).message, message);
    });
  }

  test("a message above the receive limit ends the call with RESOURCE_EXHAUSTED naming the sizes", async (t) => {
    const { client } = await start(t, { "/S/M": echo }, { maxMessageBytes: 1024 });
    const call = client.openStream("/S/M");
    call.on("message", () => {});
    call.write(Buffer.alloc(1024));
    call.write(Buffer.alloc(2048));
    const status = await statusOf(call);
    assert.equal(status.code, GrpcStatus.RESOURCE_EXHAUSTED);
    assert.match(status.message, /2048 vs\. 1024/);
  });

  test("writing a message above the limit throws MESSAGE_TOO_LARGE on both ends", async (t) => {
    let serverError: unknown;
    const { client } = await start(t, {
      "/S/M": (call) => {
        try {
          call.write(Buffer.alloc(101));
        } catch (err) {
          serverError = err;
        }
        call.end();
      },
    }, { maxMessageBytes: 100 });
    const call = client.openStream("/S/M");
    call.on("message", () => {});
    assert.throws(() => call.write(Buffer.alloc(4 * 1024 * 1024 + 1)), (e) => isTunnelError(e, "MESSAGE_TOO_LARGE"));
    assert.equal((await statusOf(call)).code, GrpcStatus.OK);
    assert.ok(isTunnelError(serverError, "MESSAGE_TOO_LARGE"));
  });

  test("pause() on the server pushes back on the client through HTTP/2 flow control; resume() delivers everything in order", async (t) => {
    const got: number[] = [];
    let serverCall: GrpcServerCall | undefined;
    const { client } = await start(t, {
      "/S/M": (call) => {
        serverCall = call;
        call.sendHeaders();
        call.pause();
        call.on("message", (m: Uint8Array) => got.push(Buffer.from(m).readUInt32BE(0)));
        call.on("end", () => call.end());
      },
    }, { streamWindowBytes: 65_535, sessionWindowBytes: 1024 * 1024 });
    const call = client.openStream("/S/M");
    call.on("message", () => {});
    await call.headers;
    // Write until a "drain" does not come: the stream window (64 KiB) and the server's read
    // buffer are full and nothing more leaves the client.
    let sent = 0;
    let isBlocked = false;
    while (sent < 1000 && !isBlocked) {
      const message = Buffer.alloc(16 * 1024);
      message.writeUInt32BE(sent++, 0);
      if (call.write(message)) continue;
      isBlocked = await Promise.race([once(call, "drain").then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 200))]);
    }
    assert.ok(isBlocked, `write() stays blocked while the server is paused (sent ${sent})`);
    assert.equal(got.length, 0, "nothing is delivered while paused");
    assert.ok(call.writableLength > 0, "the client buffers what the window does not admit");
    serverCall!.resume();
    call.end();
    assert.equal((await statusOf(call)).code, GrpcStatus.OK);
    assert.deepEqual(got, Array.from({ length: sent }, (_, i) => i));
  });

  test("mTLS: the handler sees the verified client certificate; a client without one is refused", async (t) => {
    const { ca, server: serverPair, client: clientPair } = await pki();
    let peer: GrpcServerCall["peer"] | undefined;
    const server = new GrpcServer({ "/S/M": (call) => ((peer = call.peer), echo(call)) }, { http2: http2Impl, tls: { ...serverPair, ca, requestCert: true } });
    t.after(() => server.destroy());
    const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
    const client = await GrpcClient.connect({ host: "127.0.0.1", port: port!, tls: { ca, ...clientPair } }, { http2: clientImpl });
    t.after(() => client.destroy());
    assert.equal(client.alpnProtocol, "h2");
    const call = client.openStream("/S/M");
    call.on("message", () => {});
    call.end();
    assert.equal((await statusOf(call)).code, GrpcStatus.OK);
    assert.equal(peer?.authorized, true);
    assert.equal(peer?.address, "127.0.0.1");
    assert.equal(peer?.certificate?.subject.CN, "nodetunnel-client");

    // TLS 1.3 reports the missing certificate after the client's handshake is done, so the
    // refusal shows either as a failed connect or as a call that cannot complete.
    const refused = await GrpcClient.connect({ host: "localhost", port: port!, tls: { ca } }, { http2: clientImpl }).then(async (c) => {
      t.after(() => c.destroy());
      const s = c.openStream("/S/M");
      s.end();
      return (await statusOf(s)).code;
    }, (err: Error) => err.message);
    assert.ok(refused === GrpcStatus.UNAVAILABLE || /certificate|alert|handshake|socket/i.test(String(refused)), `refused: ${refused}`);
  });

  test("setTlsMaterial: new handshakes get the rotated certificate and CA, an open session keeps working, bad material changes nothing", async (t) => {
    const a = await pki();
    const b = await createPki();
    const server = new GrpcServer({ "/S/M": echo }, { http2: http2Impl, tls: { ...a.server, ca: a.ca, requestCert: true } });
    t.after(() => server.destroy());
    const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
    const before = await GrpcClient.connect({ host: "127.0.0.1", port: port!, tls: { ca: a.ca, ...a.client } }, { http2: clientImpl });
    t.after(() => before.destroy());
    const roundTrip = async (client: GrpcClient) => {
      const call = client.openStream("/S/M");
      call.on("message", () => {});
      call.end();
      return (await statusOf(call)).code;
    };

    assert.throws(() => server.setTlsMaterial({ cert: b.server.cert, key: a.server.key, ca: b.ca }), /key values mismatch/);
    assert.throws(() => server.setTlsMaterial({ cert: b.server.cert, key: b.server.key }), /client CA cannot be added or removed/);
    const stillA = await GrpcClient.connect({ host: "127.0.0.1", port: port!, tls: { ca: a.ca, ...a.client } }, { http2: clientImpl });
    t.after(() => stillA.destroy());
    assert.equal(await roundTrip(stillA), GrpcStatus.OK, "refused material left A's in place");

    server.setTlsMaterial({ cert: b.server.cert, key: b.server.key, ca: b.ca });
    const after = await GrpcClient.connect({ host: "127.0.0.1", port: port!, tls: { ca: b.ca, ...b.client } }, { http2: clientImpl });
    t.after(() => after.destroy());
    assert.equal(await roundTrip(after), GrpcStatus.OK, "B's client, trusting B only, is served");
    assert.equal(await roundTrip(before), GrpcStatus.OK, "the session opened under A carries on");
    await assert.rejects(GrpcClient.connect({ host: "127.0.0.1", port: port!, tls: { ca: a.ca, ...a.client } }, { http2: clientImpl, connectTimeoutMs: 2000 }),
      /certificate|self.signed|unable to verify/i, "a client trusting only A no longer accepts the server");

    const plain = new GrpcServer({ "/S/M": echo }, { http2: http2Impl });
    t.after(() => plain.destroy());
    assert.throws(() => plain.setTlsMaterial(b.server), /listens without TLS/);
  });

  test("TLS: the server's order puts AES-128-GCM first, so a client that lists AES-256-GCM first (Node's default) gets it", async (t) => {
    const { ca, server: serverPair } = await pki();
    const server = new GrpcServer({ "/S/M": echo }, { http2: http2Impl, tls: serverPair });
    t.after(() => server.destroy());
    const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
    const ciphers = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";
    const socket = tls.connect({ host: "127.0.0.1", port: port!, ca, servername: "localhost", ALPNProtocols: ["h2"], ciphers });
    t.after(() => socket.destroy());
    await once(socket, "secureConnect");
    assert.equal(`${socket.getProtocol()} ${socket.getCipher().name}`, "TLSv1.3 TLS_AES_128_GCM_SHA256");
  });

  test("TLS offers extra ALPN protocols before h2 and still lands on h2", async (t) => {
    const { ca, server: serverPair } = await pki();
    const server = new GrpcServer({ "/S/M": echo }, { http2: http2Impl, tls: serverPair });
    t.after(() => server.destroy());
    const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
    const client = await GrpcClient.connect({ host: "localhost", port: port!, tls: { ca, alpn: ["konnectivity"] } }, { http2: clientImpl });
    t.after(() => client.destroy());
    assert.equal(client.alpnProtocol, "h2");
    await assert.rejects(
      GrpcClient.connect({ host: "127.0.0.1", port: port!, tls: { ca: (await createPki()).ca } }, { http2: clientImpl }),
      /certificate/i,
    );
  });

  test("a TLS client that negotiates no ALPN, or only http/1.1, gets no HTTP/2 session", async (t) => {
    const { ca, server: serverPair } = await pki();
    const server = new GrpcServer({ "/S/M": echo }, { http2: http2Impl, tls: serverPair });
    t.after(() => server.destroy());
    const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
    for (const ALPNProtocols of [undefined, ["http/1.1"]]) {
      const socket = tls.connect({ host: "127.0.0.1", port: port!, ca, servername: "localhost", ...(ALPNProtocols ? { ALPNProtocols } : {}) });
      t.after(() => socket.destroy());
      socket.on("error", () => {});
      // Closed during or right after the handshake without an HTTP/2 server preface (a SETTINGS
      // frame); node:http2 answers "HTTP/1.0 403 Forbidden" first, the builtin server with nothing.
      const received: Buffer[] = [];
      socket.on("data", (d: Buffer) => received.push(d));
      await within(() => socket.destroyed || socket.readableEnded, `ALPN ${JSON.stringify(ALPNProtocols)}: the server closes the connection`);
      const bytes = Buffer.concat(received);
      assert.ok(bytes.length === 0 || /^HTTP\/1\.[01] 403/.test(bytes.toString("latin1")), `no HTTP/2 preface: ${bytes.toString("latin1").slice(0, 40)}`);
      assert.equal(server.sessionCount, 0);
    }
  });

  test("close() sends GOAWAY: the open call finishes, a new call is refused, close resolves when the session is gone", async (t) => {
    const { server, client } = await start(t, { "/S/M": echo });
    const call = client.openStream("/S/M");
    const received: string[] = [];
    call.on("message", (m: Uint8Array) => received.push(text(m)));
    await call.headers;
    const goaway = once(client, "goaway");
    const closed = server.close(5000);
    const [code] = await goaway;
    assert.equal(code, http2.constants.NGHTTP2_NO_ERROR);
    const refused = client.openStream("/S/M");
    refused.on("message", () => {});
    assert.equal((await statusOf(refused)).code, GrpcStatus.UNAVAILABLE);
    call.write(Buffer.from("after goaway"));
    call.end();
    assert.equal((await statusOf(call)).code, GrpcStatus.OK);
    assert.deepEqual(received, ["after goaway"]);
    await closed;
    assert.equal(server.sessionCount, 0);
    await assert.rejects(server.listen({ port: 0 }), (e) => isTunnelError(e, "CLOSED"));
  });

  test("close() destroys what is still open at its deadline; destroy() is immediate and both are idempotent", async (t) => {
    const serverClose = deferred<unknown>();
    const { server, client } = await start(t, {
      "/S/M": (call) => {
        call.sendHeaders();
        call.on("message", () => {});
        call.on("close", (err: unknown) => serverClose.resolve(err));
      },
    });
    const call = client.openStream("/S/M");
    call.on("message", () => {});
    await call.headers;
    const clientStatus = statusOf(call);
    const started = Date.now();
    await Promise.all([server.close(200), server.close(200)]);
    assert.ok(Date.now() - started >= 150);
    assert.ok(isTunnelError(await serverClose.promise, "CLOSED"));
    const status = await clientStatus;
    assert.ok([GrpcStatus.CANCELLED, GrpcStatus.UNAVAILABLE].includes(status.code as 1 | 14), `status ${status.code}`);
    server.destroy();
    server.destroy();
    assert.equal(server.sessionCount, 0);
  });

  test("the server widens its windows: 8 MiB per stream and 32 MiB per session by default", async (t) => {
    const { path } = await start(t, { "/S/M": echo });
    const session = http2.connect("http://localhost", { createConnection: () => net.connect(path) });
    t.after(() => session.destroy());
    await once(session, "remoteSettings");
    assert.equal(session.remoteSettings.initialWindowSize, 8 * 1024 * 1024);
    const deadline = Date.now() + 2000;
    while (session.state.remoteWindowSize !== 32 * 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(session.state.remoteWindowSize, 32 * 1024 * 1024);
  });

  test("a client that pings too often gets GOAWAY ENHANCE_YOUR_CALM too_many_pings", async (t) => {
    const { path } = await start(t, {}, { minClientPingIntervalMs: 10_000 });
    const session = http2.connect("http://localhost", { createConnection: () => net.connect(path) });
    session.on("error", () => {});
    t.after(() => session.destroy());
    await once(session, "connect");
    const goaway = once(session, "goaway");
    for (let i = 0; i < 4; i++) await new Promise((r) => session.ping(r));
    const [code, , data] = await goaway as [number, number, Buffer];
    assert.equal(code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(data.toString(), "too_many_pings");
  });
});

for (const http2Impl of http2Implementations) test(`a TLS peer that connects and never completes the handshake is dropped after tlsHandshakeTimeoutMs (${http2Impl} server)`, async (t) => {
  const { server: serverPair } = await pki();
  const server = new GrpcServer({}, { http2: http2Impl, tls: serverPair, tlsHandshakeTimeoutMs: 300 });
  t.after(() => server.destroy());
  const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
  const silent = net.connect({ port: port!, host: "127.0.0.1" });
  t.after(() => silent.destroy());
  silent.on("error", () => {});
  await once(silent, "connect");
  const started = Date.now();
  await Promise.race([once(silent, "close"), new Promise((_, reject) => setTimeout(() => reject(new Error("still open after 3 s")), 3000).unref())]);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 200 && elapsed < 3000, `closed after ${elapsed} ms`);
});

for (const http2Impl of http2Implementations) test(`past maxPendingTlsHandshakes, new TCP connections are closed at once; those in handshake stay, and a real client gets in once one goes (${http2Impl} server)`, async (t) => {
  const { ca, server: serverPair } = await pki();
  const server = new GrpcServer({ "/S/M": echo }, { http2: http2Impl, tls: serverPair, maxPendingTlsHandshakes: 3 });
  t.after(() => server.destroy());
  const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
  const closed = new Set<net.Socket>();
  const silent = async () => {
    const socket = net.connect({ port: port!, host: "127.0.0.1" });
    t.after(() => socket.destroy());
    socket.on("error", () => {});
    socket.on("close", () => closed.add(socket));
    await once(socket, "connect");
    return socket;
  };
  const held = [await silent(), await silent(), await silent()];
  await new Promise((r) => setTimeout(r, 100));
  const refused = await silent();
  await within(() => closed.has(refused), "the fourth connection is closed");
  assert.equal(held.filter((s) => closed.has(s)).length, 0, "the three in handshake stay open");
  held[0]!.destroy();
  await within(() => closed.has(held[0]!), "one of them goes");
  const client = await GrpcClient.connect({ host: "127.0.0.1", port: port!, tls: { ca, servername: "localhost" } });
  t.after(() => client.destroy());
  const call = client.openStream("/S/M");
  call.on("message", () => {});
  call.end();
  assert.equal((await statusOf(call)).code, GrpcStatus.OK);
});

async function within(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("the builtin HTTP/2 server announces SETTINGS_MAX_FRAME_SIZE 16384, RFC 9113's default (node:http2's 64 KiB frames cost it more per byte)", async (t) => {
  const server = new GrpcServer({}, { http2: "builtin" });
  t.after(() => server.destroy());
  const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
  const socket = net.connect({ port: port!, host: "127.0.0.1" });
  t.after(() => socket.destroy());
  socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])); // our empty SETTINGS
  let got = Buffer.alloc(0);
  while (got.length < 9 || got.length < 9 + got.readUIntBE(0, 3)) got = Buffer.concat([got, (await once(socket, "data"))[0] as Buffer]);
  assert.equal(got[3], 4, "the server's first frame is SETTINGS");
  const settings = new Map<number, number>();
  for (let i = 9; i < 9 + got.readUIntBE(0, 3); i += 6) settings.set(got.readUInt16BE(i), got.readUInt32BE(i + 2));
  assert.equal(settings.get(5), 16_384);
});
