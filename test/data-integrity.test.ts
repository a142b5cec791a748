// Bytes arrive intact and in order through server and agent over real mTLS gRPC, with several
// connections interleaved on the agent stream (pooled frame buffers, round-robin chunks, credit),
// through the HTTP CONNECT frontend and through the gRPC frontend (the builtin HTTP/2 server's
// flow control in both directions).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { after, before, it } from "node:test";
import { pino } from "pino";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions } from "../src/agent/index.js";
import { NodetunnelServer, resolveServerOptions } from "../src/server/index.js";
import { createPki, type Http2Implementation } from "../src/transport/index.js";
import type { FlowOptions } from "../src/tunnel/index.js";
import { dialThroughProxy } from "../src/tunnel/index.js";
import type { Duplex } from "node:stream";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { httpConnect } from "./helpers/connect-client.js";

const log = pino({ level: "silent" });
let echo: net.Server;
const socketDir = mkdtempSync(join(tmpdir(), "nt-integrity-"));
const grpcPath = join(socketDir, "grpc.sock");

interface Stack {
  server: NodetunnelServer;
  agent: NodetunnelAgent;
}
const stacks: Stack[] = [];

before(async () => {
  // An abnormal end (a stack destroyed under a connection) resets the destination socket.
  echo = net.createServer((s) => s.on("error", () => {}).pipe(s)).listen(0, "127.0.0.1");
  await once(echo, "listening");
});

after(() => {
  for (const { agent, server } of stacks) {
    agent.destroy();
    server.destroy();
  }
  echo.close();
  rmSync(socketDir, { recursive: true, force: true });
});

async function startStack(flow: Partial<FlowOptions> = {}, withGrpcFrontend = false, http2: Http2Implementation = "builtin"): Promise<Stack> {
  const pki = await createPki();
  const server = await NodetunnelServer.start(resolveServerOptions({
    frontends: [
      { mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } },
      ...(withGrpcFrontend ? [{ mode: "grpc" as const, listen: { path: grpcPath } }] : []),
    ],
    agentListen: { port: 0, host: "127.0.0.1" },
    agentTls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca },
    agentHttp2: http2,
    flow,
  }), { log, registry: new Registry() });
  const agent = await NodetunnelAgent.start(resolveAgentOptions({
    agentId: "node-1",
    proxyServerPort: server.addresses.agentPort,
    tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] },
    serverHttp2: http2,
    flow,
  }), { log, registry: new Registry() });
  await agent.waitForServers(1);
  const stack = { server, agent };
  stacks.push(stack);
  return stack;
}

type Frontend = "http-connect" | "grpc";

async function open(server: NodetunnelServer, frontend: Frontend): Promise<{ s: Duplex; rest: Buffer }> {
  const destination = `127.0.0.1:${(echo.address() as net.AddressInfo).port}`;
  if (frontend === "grpc") return { s: await dialThroughProxy({ path: grpcPath }, destination), rest: Buffer.alloc(0) };
  const port = server.addresses.frontends[0]!.port!;
  const { socket, head, rest } = await httpConnect({ port }, destination);
  assert.equal(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
  return { s: socket, rest };
}

async function echoThrough(server: NodetunnelServer, payload: Buffer, frontend: Frontend): Promise<string> {
  const { s, rest } = await open(server, frontend);
  const hash = createHash("sha256").update(rest);
  let got = rest.length;
  const done = new Promise<void>((resolve, reject) => {
    s.on("error", reject);
    s.on("close", () => reject(new Error(`connection closed after ${got} of ${payload.length} bytes`)));
    s.on("data", (c: Buffer) => {
      hash.update(c);
      got += c.length;
      if (got >= payload.length) resolve();
    });
  });
  s.resume();
  // Sent only after the 200, in uneven pieces.
  let off = 0;
  const pump = () => {
    while (off < payload.length) {
      const n = Math.min(payload.length - off, 1000 + Math.floor(Math.random() * 200_000));
      const ok = s.write(payload.subarray(off, off + n));
      off += n;
      if (!ok) return void s.once("drain", pump);
    }
  };
  pump();
  await done;
  s.destroy();
  return hash.digest("hex");
}

async function echoFour(stack: Stack, frontend: Frontend = "http-connect", bytes = 24 * 1024 * 1024): Promise<void> {
  const payloads = [0, 1, 2, 3].map(() => randomBytes(bytes));
  const digests = await Promise.all(payloads.map((p) => echoThrough(stack.server, p, frontend)));
  for (let i = 0; i < payloads.length; i++) assert.equal(digests[i], createHash("sha256").update(payloads[i]!).digest("hex"), `connection ${i}`);
}

it("echoes 4 × 24 MiB of random bytes through interleaved connections, every byte intact", async () => {
  await echoFour(await startStack());
});

it("echoes 4 × 16 MiB through the gRPC frontend (builtin HTTP/2 server, one connection each), every byte intact", { timeout: 60_000 }, async () => {
  await echoFour(await startStack({}, true), "grpc", 16 * 1024 * 1024);
});

// With half a MiB in flight on the agent stream both ways, two node:http2 peers used to stop
// reading at once (each waits for its own socket write) and this hung for good; with node:http2 on
// both ends (--agent-http2=node, --server-http2=node) both now keep reading while they write
// (src/transport/keep-reading.ts). The builtin HTTP/2 session, server and client, always reads.
for (const http2 of ["builtin", "node"] as const) {
  it(`does the same with 512 KiB in flight on the agent stream, without the two HTTP/2 peers deadlocking (both ends of the agent link on ${http2})`, { timeout: 60_000 }, async () => {
    await echoFour(await startStack({ inFlightBytes: 512 * 1024 }, false, http2));
  });
}
