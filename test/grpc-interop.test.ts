// Our hand-framed gRPC against @grpc/grpc-js, the reference peer (DESIGN.md): a grpc-js client
// against our server, our client against a grpc-js server, over a Unix socket (h2c) and over
// TLS with client certificates, on both Konnectivity paths (konnectivity.md §1.2, §1.3).
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import {
  createPki, GrpcClient, GrpcServer, GrpcStatus, GrpcStatusError,
  type GrpcCallStatus, type GrpcClientCall, type GrpcServerCall, type GrpcClientTarget, type Pki,
} from "../src/transport/index.js";

const identity = (b: Buffer) => b;
const bidi = (path: string, originalName: string) => ({
  path, originalName, requestStream: true, responseStream: true,
  requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
}) as const;
const service = {
  Connect: bidi("/AgentService/Connect", "connect"),
  Proxy: bidi("/ProxyService/Proxy", "proxy"),
} satisfies grpc.ServiceDefinition;
const paths = [["Connect", "/AgentService/Connect"], ["Proxy", "/ProxyService/Proxy"]] as const;
const GenericClient = grpc.makeGenericClientConstructor(service, "Tunnel");
type GenericStub = grpc.Client & Record<"Connect" | "Proxy", (md: grpc.Metadata) => grpc.ClientDuplexStream<Buffer, Buffer>>;

const MiB = 1024 * 1024;
const awkwardMessage = "token rejected: ünïcödé 100% \n✓";
// A batch both ways: many small messages and one of 1 MiB, each recognisable by its content.
const batch = (): Buffer[] => [
  ...Array.from({ length: 300 }, (_, i) => Buffer.from(`message ${i}`)),
  Buffer.alloc(MiB, 0xab),
  Buffer.from("last"),
];

let pkiPromise: Promise<Pki> | undefined;
const pki = () => (pkiPromise ??= createPki());

function socketPath(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "nt-interop-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "grpc.sock");
}

// ---- (1) grpc-js client → our server ----

interface Seen { path: string; agentid: string | undefined; peer: GrpcServerCall["peer"]; received: number[] }

function ourEchoServer(seen: Seen[], options?: ConstructorParameters<typeof GrpcServer>[1]): GrpcServer {
  const handler = (call: GrpcServerCall) => {
    const record: Seen = { path: call.path, agentid: call.metadata.get("agentid")?.[0], peer: call.peer, received: [] };
    seen.push(record);
    if (call.metadata.get("mode")?.[0] === "fail") {
      call.end(GrpcStatus.FAILED_PRECONDITION, awkwardMessage);
      return;
    }
    call.sendHeaders({ serverID: "server-7", serverCount: "3" });
    call.on("message", (m: Uint8Array) => {
      record.received.push(m.length);
      call.write(m);
    });
    call.on("end", () => call.end(GrpcStatus.OK, "echo done ✓ 100%"));
  };
  return new GrpcServer({ "/AgentService/Connect": handler, "/ProxyService/Proxy": handler }, options);
}

interface GrpcJsOutcome { headers: grpc.Metadata; messages: Buffer[]; status: grpc.StatusObject; error?: grpc.ServiceError }

async function runGrpcJsCall(stream: grpc.ClientDuplexStream<Buffer, Buffer>, send: Buffer[]): Promise<GrpcJsOutcome> {
  const messages: Buffer[] = [];
  let error: grpc.ServiceError | undefined;
  const headers = new Promise<grpc.Metadata>((resolve) => stream.once("metadata", resolve));
  stream.on("data", (m: Buffer) => messages.push(m));
  stream.on("error", (e: grpc.ServiceError) => (error = e));
  // Not events.once: it would reject on the "error" that grpc-js emits beside a non-OK status.
  const status = new Promise<grpc.StatusObject>((resolve) => stream.once("status", resolve));
  for (const m of send) stream.write(m);
  stream.end();
  const finalStatus = await status;
  return { headers: await Promise.race([headers, Promise.resolve(new grpc.Metadata())]), messages, status: finalStatus, error };
}

async function grpcJsAgainstOurServer(t: TestContext, transport: "uds" | "tls") {
  const seen: Seen[] = [];
  let target: string;
  let credentials: grpc.ChannelCredentials;
  let server: GrpcServer;
  if (transport === "uds") {
    server = ourEchoServer(seen);
    const path = socketPath(t);
    await server.listen({ path });
    target = `unix://${path}`;
    credentials = grpc.credentials.createInsecure();
  } else {
    const { ca, server: pair, client } = await pki();
    server = ourEchoServer(seen, { tls: { ...pair, ca, requestCert: true } });
    const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
    target = `localhost:${port}`;
    credentials = grpc.credentials.createSsl(Buffer.from(ca), Buffer.from(client.key), Buffer.from(client.cert));
  }
  const stub = new GenericClient(target, credentials) as unknown as GenericStub;
  t.after(async () => {
    stub.close();
    await server.close(2000);
    assert.equal(server.sessionCount, 0, "no session left");
  });

  for (const [method, path] of paths) {
    const md = new grpc.Metadata();
    md.set("agentID", `agent-${method}`);
    const sent = batch();
    const outcome = await runGrpcJsCall(stub[method](md), sent);
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.status.code, grpc.status.OK);
    assert.equal(outcome.status.details, "echo done ✓ 100%");
    assert.deepEqual(outcome.headers.get("serverid"), ["server-7"]);
    assert.deepEqual(outcome.headers.get("servercount"), ["3"]);
    assert.equal(outcome.messages.length, sent.length);
    assert.ok(outcome.messages.every((m, i) => m.equals(sent[i]!)), "every message came back intact and in order");
    const record = seen.find((s) => s.path === path)!;
    assert.equal(record.agentid, `agent-${method}`);
    assert.deepEqual(record.received, sent.map((m) => m.length));
    if (transport === "tls") {
      assert.equal(record.peer.authorized, true);
      assert.equal(record.peer.certificate?.subject.CN, "nodetunnel-client");
    } else {
      assert.match(record.peer.address, /^unix:/);
    }
  }

  const failing = new grpc.Metadata();
  failing.set("mode", "fail");
  const failed = await runGrpcJsCall(stub.Proxy(failing), []);
  assert.equal(failed.status.code, grpc.status.FAILED_PRECONDITION);
  assert.equal(failed.status.details, awkwardMessage);
  assert.equal(failed.error?.code, grpc.status.FAILED_PRECONDITION);
}

test("a grpc-js client works against our server over a Unix socket (h2c) on both paths", (t) => grpcJsAgainstOurServer(t, "uds"));
test("a grpc-js client works against our server over mTLS on both paths", (t) => grpcJsAgainstOurServer(t, "tls"));

// ---- (2) our client → grpc-js server ----

function grpcJsServer(seenMetadata: grpc.Metadata[]): grpc.Server {
  const server = new grpc.Server();
  const handler = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    seenMetadata.push(call.metadata);
    const mode = call.metadata.get("mode")[0];
    if (mode === "unauthenticated") {
      call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: awkwardMessage });
      return;
    }
    const md = new grpc.Metadata();
    md.set("serverID", "grpc-js-1");
    md.set("serverCount", "2");
    call.sendMetadata(md);
    call.on("data", (m: Buffer) => call.write(m));
    call.on("end", () => call.end());
  };
  server.addService(service, { Connect: handler, Proxy: handler });
  return server;
}

async function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return await new Promise((resolve, reject) => server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port))));
}

async function runOurCall(call: GrpcClientCall, send: Buffer[]) {
  const messages: Buffer[] = [];
  call.on("message", (m: Uint8Array) => messages.push(Buffer.from(m)));
  const status = once(call, "status").then(([s]) => s as GrpcCallStatus);
  const headers = call.headers.catch((e: unknown) => e);
  for (const m of send) call.write(m);
  call.end();
  return { status: await status, headers: await headers, messages };
}

async function ourClientAgainstGrpcJs(t: TestContext, transport: "uds" | "tls") {
  const seenMetadata: grpc.Metadata[] = [];
  const server = grpcJsServer(seenMetadata);
  let target: GrpcClientTarget;
  if (transport === "uds") {
    const path = socketPath(t);
    await bind(server, `unix://${path}`, grpc.ServerCredentials.createInsecure());
    target = { path };
  } else {
    const { ca, server: pair, client } = await pki();
    const port = await bind(server, "127.0.0.1:0",
      grpc.ServerCredentials.createSsl(Buffer.from(ca), [{ private_key: Buffer.from(pair.key), cert_chain: Buffer.from(pair.cert) }], true));
    target = { host: "127.0.0.1", port, tls: { ca, ...client } };
  }
  const client = await GrpcClient.connect(target);
  t.after(async () => {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });
  if (transport === "tls") assert.equal(client.alpnProtocol, "h2");

  for (const [method, path] of paths) {
    const sent = batch();
    const { status, headers, messages } = await runOurCall(client.openStream(path, { agentID: `agent-${method}` }), sent);
    assert.equal(status.code, GrpcStatus.OK, status.message);
    assert.ok(headers instanceof Map);
    assert.deepEqual(headers.get("serverid"), ["grpc-js-1"]);
    assert.deepEqual(headers.get("servercount"), ["2"]);
    assert.equal(messages.length, sent.length);
    assert.ok(messages.every((m, i) => m.equals(sent[i]!)), "every message came back intact and in order");
    assert.deepEqual(seenMetadata.at(-1)!.get("agentid"), [`agent-${method}`]);
  }

  const refused = await runOurCall(client.openStream("/AgentService/Connect", { agentID: "x", mode: "unauthenticated" }), []);
  assert.equal(refused.status.code, GrpcStatus.UNAUTHENTICATED);
  assert.equal(refused.status.message, awkwardMessage);
  assert.ok(refused.headers instanceof GrpcStatusError && refused.headers.code === "UNAUTHENTICATED");
}

test("our client works against a grpc-js server over a Unix socket (h2c) on both paths", (t) => ourClientAgainstGrpcJs(t, "uds"));
test("our client works against a grpc-js server over mTLS on both paths", (t) => ourClientAgainstGrpcJs(t, "tls"));

// ---- (3) GOAWAY ----

test("our server's close() lets a grpc-js client's open call finish and refuses new calls", async (t) => {
  const seen: Seen[] = [];
  const server = ourEchoServer(seen);
  const path = socketPath(t);
  await server.listen({ path });
  const stub = new GenericClient(`unix://${path}`, grpc.credentials.createInsecure()) as unknown as GenericStub;
  t.after(() => {
    stub.close();
    server.destroy();
  });

  const open = stub.Connect(new grpc.Metadata());
  const received: Buffer[] = [];
  open.on("data", (m: Buffer) => received.push(m));
  const status = new Promise<grpc.StatusObject>((resolve) => open.once("status", resolve));
  open.write(Buffer.from("before"));
  await once(open, "data");

  const closed = server.close(10_000);
  const late = await runGrpcJsCall(stub.Proxy(new grpc.Metadata()), [Buffer.from("late")]);
  assert.equal(late.status.code, grpc.status.UNAVAILABLE);
  assert.equal(seen.filter((s) => s.path === "/ProxyService/Proxy").length, 0, "the refused call never reached a handler");

  open.write(Buffer.from("after"));
  open.end();
  assert.equal((await status).code, grpc.status.OK);
  assert.deepEqual(received.map(String), ["before", "after"]);
  await closed;
  assert.equal(server.sessionCount, 0);
});
