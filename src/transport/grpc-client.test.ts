import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { GrpcClient } from "./grpc-client.js";
import type { GrpcCallStatus, GrpcClientCall } from "./grpc-client-call.js";
import { encodeGrpcMessage } from "./grpc-frame.js";
import { http2Implementations } from "./grpc-options.js";
import { GrpcServer } from "./grpc-server.js";
import { GrpcStatus } from "./grpc-status.js";
import { createPki } from "./pki.js";
import { tlsCipherOrder } from "./tls-suites.js";
import { isTunnelError } from "../protocol/tunnel-error.js";
import { startConnectProxy } from "../../test/helpers/connect-proxy.js";

function socketPath(t: TestContext, name = "s.sock"): string {
  const dir = mkdtempSync(join(tmpdir(), "nt-grpcc-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, name);
}

const statusOf = (call: GrpcClientCall) => once(call, "status").then(([s]) => s as GrpcCallStatus);

/** A raw HTTP/2 server, to play a peer our server would never be. */
async function rawServer(t: TestContext, onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void) {
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer();
  server.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  server.on("stream", onStream);
  const path = socketPath(t);
  server.listen(path);
  await once(server, "listening");
  t.after(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  return { path, sessions };
}

/** A TCP relay that can be frozen: the path goes silent as a dropped NAT mapping would. */
async function freezableRelay(t: TestContext, targetPath: string) {
  const sockets = new Set<net.Socket>();
  let isFrozen = false;
  const relay = net.createServer((inbound) => {
    const outbound = net.connect(targetPath);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => {});
      s.once("close", () => sockets.delete(s));
    }
    inbound.on("data", (d) => isFrozen || outbound.write(d));
    outbound.on("data", (d) => isFrozen || inbound.write(d));
    // A dead path does not report closes either.
    inbound.once("close", () => isFrozen || outbound.destroy());
    outbound.once("close", () => isFrozen || inbound.destroy());
  });
  const path = socketPath(t, "relay.sock");
  relay.listen(path);
  await once(relay, "listening");
  t.after(() => {
    for (const s of sockets) s.destroy();
    relay.close();
  });
  return { path, freeze: () => (isFrozen = true) };
}

for (const impl of http2Implementations) describe(`on the ${impl} HTTP/2 client`, () => {
test("the client announces 8 MiB stream and 32 MiB session windows by default", async (t) => {
  const { path, sessions } = await rawServer(t, () => {});
  const client = await GrpcClient.connect({ path }, { http2: impl });
  t.after(() => client.destroy());
  const [session] = [...sessions];
  assert.ok(session);
  const deadline = Date.now() + 2000;
  while (session.state.remoteWindowSize !== 32 * 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(session.remoteSettings.initialWindowSize, 8 * 1024 * 1024);
  assert.equal(session.state.remoteWindowSize, 32 * 1024 * 1024);
});

test("over TLS the client offers Node's suites with AES-128-GCM first, so a server that follows the client's order picks it", async (t) => {
  assert.deepEqual(tlsCipherOrder.split(":").sort(), tls.DEFAULT_CIPHERS.split(":").sort(), "the same suites, only reordered");
  assert.ok(tlsCipherOrder.startsWith("TLS_AES_128_GCM_SHA256:"));
  const pki = await createPki();
  // Node's default order puts AES-256-GCM first; this server lets the client's order decide.
  const server = http2.createSecureServer({ cert: pki.server.cert, key: pki.server.key, honorCipherOrder: false });
  const chosen: string[] = [];
  server.on("session", (s: http2.ServerHttp2Session) => {
    const socket = s.socket as tls.TLSSocket;
    chosen.push(`${socket.getProtocol()} ${socket.getCipher().name}`);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => server.close());
  const client = await GrpcClient.connect({ host: "127.0.0.1", port: (server.address() as net.AddressInfo).port, tls: { ca: pki.ca, servername: "localhost" } }, { http2: impl });
  t.after(() => client.destroy());
  for (let i = 0; i < 200 && chosen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(chosen, ["TLSv1.3 TLS_AES_128_GCM_SHA256"]);
});

test("through an HTTP CONNECT proxy: TLS end to end to the name in the CONNECT, a call completes", async (t) => {
  const pki = await createPki({ serverNames: ["localhost", "grpc.example"] });
  const server = new GrpcServer({ "/S/M": (call) => call.end(GrpcStatus.OK) }, { http2: impl, tls: pki.server });
  t.after(() => server.destroy());
  const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
  const proxy = await startConnectProxy(t, () => port!);
  const proxyUrl = proxy.url();
  // grpc.example resolves nowhere: only the proxy knows it.
  const client = await GrpcClient.connect({ host: "grpc.example", port: port!, tls: { ca: pki.ca }, proxy: proxyUrl }, { http2: impl });
  t.after(() => client.destroy());
  assert.equal(client.alpnProtocol, "h2");
  const call = client.openStream("/S/M");
  call.end();
  assert.equal((await statusOf(call)).code, GrpcStatus.OK);
  assert.deepEqual(proxy.requests.map((r) => r.target), [`grpc.example:${port}`]);

  // A server named by its address: its certificate is checked against that address, not the
  // proxy's name (here "localhost"), which an IP-only certificate does not carry.
  const ipOnly = await pki.issue("ip-only", { ips: ["127.0.0.1"] });
  const nameOnly = await pki.issue("localhost", { dns: ["localhost"] });
  const proxyByName = new URL(`http://localhost:${proxyUrl.port}`);
  server.setTlsMaterial(ipOnly);
  const byAddress = await GrpcClient.connect({ host: "127.0.0.1", port: port!, tls: { ca: pki.ca }, proxy: proxyByName }, { http2: impl });
  t.after(() => byAddress.destroy());
  server.setTlsMaterial(nameOnly);
  await assert.rejects(GrpcClient.connect({ host: "127.0.0.1", port: port!, tls: { ca: pki.ca }, proxy: proxyByName }, { http2: impl }),
    /IP: 127\.0\.0\.1 is not in the cert's list|altnames/, "a certificate for the proxy's name is not one for the server");
});

test("options are validated at the edge", async () => {
  await assert.rejects(GrpcClient.connect({ path: "/nonexistent" }, { http2: impl, streamWindowBytes: 10 }), (e) => isTunnelError(e, "INVALID_OPTION"));
  await assert.rejects(
    GrpcClient.connect({ path: "/nonexistent" }, { http2: impl, streamWindowBytes: 8 << 20, sessionWindowBytes: 4 << 20 }),
    (e) => isTunnelError(e, "INVALID_OPTION") && /sessionWindowBytes/.test(e.message),
  );
  assert.throws(() => new GrpcServer({}, { maxMessageBytes: 0 }), (e) => isTunnelError(e, "INVALID_OPTION") && /maxMessageBytes/.test(e.message));
});

test("connect fails with the socket's error, times out as ETIMEDOUT, and aborts with CANCELLED", async (t) => {
  await assert.rejects(GrpcClient.connect({ path: socketPath(t) }, { http2: impl }), (e: NodeJS.ErrnoException) => e.code === "ENOENT");
  // A listener that accepts and never speaks TLS: the handshake cannot finish.
  const silent = net.createServer(() => {});
  const sockets = new Set<net.Socket>();
  silent.on("connection", (s) => sockets.add(s));
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  t.after(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const { port } = silent.address() as net.AddressInfo;
  await assert.rejects(
    GrpcClient.connect({ host: "127.0.0.1", port, tls: {} }, { http2: impl, connectTimeoutMs: 100 }),
    (e: NodeJS.ErrnoException) => e.code === "ETIMEDOUT",
  );
  const controller = new AbortController();
  const connecting = GrpcClient.connect({ host: "127.0.0.1", port, tls: {} }, { http2: impl, signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  await assert.rejects(connecting, (e) => isTunnelError(e, "CANCELLED"));
});

test("a stream that breaks without trailers ends UNAVAILABLE, a server RST_STREAM CANCEL ends CANCELLED, a clean end without trailers INTERNAL", async (t) => {
  const { path } = await rawServer(t, (stream, headers) => {
    stream.on("error", () => {});
    const p = headers[":path"];
    if (p === "/rst") {
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      stream.close(http2.constants.NGHTTP2_CANCEL);
    } else if (p === "/no-trailers") {
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      stream.end(encodeGrpcMessage(Buffer.from("x")));
    } else if (p === "/http-503") {
      stream.respond({ ":status": 503 }, { endStream: true });
    } else {
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      stream.write(encodeGrpcMessage(Buffer.from("x")));
      setTimeout(() => stream.session?.destroy(), 20);
    }
  });
  const client = await GrpcClient.connect({ path }, { http2: impl });
  t.after(() => client.destroy());
  const run = async (p: string) => {
    const call = client.openStream(p);
    call.on("message", () => {});
    return (await statusOf(call)).code;
  };
  assert.equal(await run("/rst"), GrpcStatus.CANCELLED);
  assert.equal(await run("/no-trailers"), GrpcStatus.INTERNAL);
  assert.equal(await run("/http-503"), GrpcStatus.UNAVAILABLE);
  assert.equal(await run("/session-dies"), GrpcStatus.UNAVAILABLE);
  const late = client.openStream("/rst");
  late.on("message", () => {});
  assert.equal((await statusOf(late)).code, GrpcStatus.UNAVAILABLE, "a stream on a dead session fails as UNAVAILABLE");
});

test("a response message above the client's limit ends the call RESOURCE_EXHAUSTED", async (t) => {
  const server = new GrpcServer({ "/S/M": (call) => {
    call.write(Buffer.alloc(3000));
    call.end();
  } });
  t.after(() => server.destroy());
  const path = socketPath(t);
  await server.listen({ path });
  const client = await GrpcClient.connect({ path }, { http2: impl, maxMessageBytes: 2000 });
  t.after(() => client.destroy());
  const call = client.openStream("/S/M");
  call.on("message", () => assert.fail("no message expected"));
  const status = await statusOf(call);
  assert.equal(status.code, GrpcStatus.RESOURCE_EXHAUSTED);
  assert.match(status.message, /3000 vs\. 2000/);
});

test("keepalive on both ends tears down a session whose path went silent", async (t) => {
  const serverClosed: unknown[] = [];
  const server = new GrpcServer({ "/S/M": (call) => {
    call.sendHeaders();
    call.on("message", () => {});
    call.on("close", (err: unknown) => serverClosed.push(err));
  } }, { keepaliveTimeMs: 50, keepaliveTimeoutMs: 150 });
  t.after(() => server.destroy());
  const serverPath = socketPath(t);
  await server.listen({ path: serverPath });
  const relay = await freezableRelay(t, serverPath);
  const client = await GrpcClient.connect({ path: relay.path }, { http2: impl, keepaliveTimeMs: 50, keepaliveTimeoutMs: 150 });
  t.after(() => client.destroy());
  const call = client.openStream("/S/M");
  call.on("message", () => {});
  await call.headers;
  // Alive and answering: pings keep being acknowledged for several intervals.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(server.sessionCount, 1);
  assert.equal(client.isClosed, false);

  const clientClosed = once(client, "close");
  const status = statusOf(call);
  relay.freeze();
  const started = Date.now();
  const [err] = await clientClosed;
  assert.ok(isTunnelError(err, "CLOSED") && /keepalive/.test(err.message), String(err));
  assert.ok(Date.now() - started < 2000);
  assert.equal((await status).code, GrpcStatus.UNAVAILABLE);
  const deadline = Date.now() + 2000;
  while (server.sessionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(server.sessionCount, 0, "the server's own keepalive dropped its side");
  assert.equal(serverClosed.length, 1);
});

// A floor that only catches a collapse (a 64 KiB window would crawl far below it): DESIGN.md
// measured 1.1–2.2 GB/s for raw node:http2 on a quiet machine, and the benchmarks measure the real
// figure; tests share the machine, so each direction gets the best of up to three 128 MiB runs.
test("one stream moves at least 50 MB/s each way on loopback", async (t) => {
  const runBytes = 128 * 1024 * 1024;
  const floorMBps = 50;
  const chunk = Buffer.alloc(256 * 1024, 7);
  const writeAll = (call: { write(m: Uint8Array): boolean; once(e: "drain", f: () => void): unknown }, done: () => void) => {
    let sent = 0;
    const pump = () => {
      while (sent < runBytes) {
        sent += chunk.length;
        if (!call.write(chunk)) return void call.once("drain", pump);
      }
      done();
    };
    pump();
  };
  const server = new GrpcServer({
    "/Upload/Sink": (call) => {
      let received = 0;
      call.on("message", (m: Uint8Array) => (received += m.length));
      call.on("end", () => call.end(GrpcStatus.OK, String(received)));
    },
    "/Download/Source": (call) => writeAll(call, () => call.end()),
  });
  t.after(() => server.destroy());
  const path = socketPath(t);
  await server.listen({ path });
  const client = await GrpcClient.connect({ path }, { http2: impl });
  t.after(() => client.destroy());

  const upload = async () => {
    const call = client.openStream("/Upload/Sink");
    call.on("message", () => {});
    const status = statusOf(call);
    const started = performance.now();
    writeAll(call, () => call.end());
    assert.equal((await status).message, String(runBytes));
    return runBytes / 1e6 / ((performance.now() - started) / 1000);
  };
  const download = async () => {
    const call = client.openStream("/Download/Source");
    let received = 0;
    const started = performance.now();
    call.on("message", (m: Uint8Array) => (received += m.length));
    call.end();
    assert.equal((await statusOf(call)).code, GrpcStatus.OK);
    assert.equal(received, runBytes);
    return runBytes / 1e6 / ((performance.now() - started) / 1000);
  };
  const best = async (run: () => Promise<number>) => {
    const results: number[] = [];
    while (results.length < 3 && Math.max(0, ...results) < floorMBps) results.push(await run());
    return results;
  };
  const up = await best(upload);
  const down = await best(download);
  const show = (r: number[]) => r.map((x) => x.toFixed(0)).join(", ");
  t.diagnostic(`one stream, 256 KiB messages, Unix socket: upload ${show(up)} MB/s; download ${show(down)} MB/s`);
  assert.ok(Math.max(...up) >= floorMBps, `upload ${show(up)} MB/s`);
  assert.ok(Math.max(...down) >= floorMBps, `download ${show(down)} MB/s`);
});
});
