import assert from "node:assert/strict";
import { createServer as createHttp2Server } from "node:http2";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { classifyConnectResponse, dialThroughConnect, isHttp2Answer } from "./dial-through-connect.js";

test("the frontend's answers map to the guide's causes", () => {
  assert.equal(classifyConnectResponse(200, ""), "ok");
  assert.equal(classifyConnectResponse(500, "currently no tunnels available: No agent available — no connected agent serves 10.224.0.6"), "no-agent");
  assert.equal(classifyConnectResponse(504, "dial tcp 10.224.0.5:10250: i/o timeout — the agent reached nothing"), "timeout");
  assert.equal(classifyConnectResponse(502, "dial tcp 10.224.0.5:10250: connect: connection refused — 10.224.0.5 refused"), "refused");
  assert.equal(classifyConnectResponse(502, "dial tcp 10.224.0.5:10250: connect: no route to host"), "no-route");
  // The explanation after " — " mentions timeouts in words; only the error before it decides.
  assert.equal(classifyConnectResponse(502, "dial tcp 10.224.0.5:10250: connect: connection refused — before its dial timeout"), "refused");
  assert.equal(classifyConnectResponse(503, "Failed to tunnel dial request: too many pending dials"), "limit");
});

const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

async function fakeFrontend(answer: string | null): Promise<number> {
  const server = createServer((socket) => {
    socket.once("data", () => {
      if (answer !== null) socket.end(answer);
    });
    socket.on("error", () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as { port: number }).port;
}

test("a 504 with its body is read to the end and classified as a timeout", async () => {
  const port = await fakeFrontend("HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 71\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ndial tcp 10.224.0.5:10250: i/o timeout — run 'nodetunnel doctor node'");
  const r = await dialThroughConnect({ host: "127.0.0.1", port }, "10.224.0.5:10250", 2000);
  assert.equal(r.outcome, "timeout");
  assert.equal(r.status, 504);
  assert.equal(r.message, "dial tcp 10.224.0.5:10250: i/o timeout — run 'nodetunnel doctor node'");
});

test("a frontend that never answers is a timeout of the doctor's own deadline", async () => {
  const port = await fakeFrontend(null);
  const r = await dialThroughConnect({ host: "127.0.0.1", port }, "10.224.0.5:10250", 300);
  assert.equal(r.outcome, "timeout");
  assert.equal(r.status, null);
  assert.ok(r.elapsedMs >= 290);
});

test("no frontend at all is frontend-down", async () => {
  const port = await fakeFrontend(null);
  servers.pop()!.close();
  await new Promise((r) => setTimeout(r, 50));
  const r = await dialThroughConnect({ host: "127.0.0.1", port }, "10.224.0.5:10250", 1000);
  assert.equal(r.outcome, "frontend-down");
});

test("an HTTP/2 frame is told apart from an HTTP/1.1 answer", () => {
  // What a nodetunnel gRPC frontend sent to a CONNECT request: SETTINGS (type 4) on stream 0.
  assert.equal(isHttp2Answer(Buffer.from("0000180400000000", "hex")), false, "shorter than a frame header");
  assert.equal(isHttp2Answer(Buffer.from("0000180400000000000003000003e8", "hex")), true);
  assert.equal(isHttp2Answer(Buffer.from("0000080700000000000000000000000001", "hex")), true, "GOAWAY");
  assert.equal(isHttp2Answer(Buffer.from("HTTP/1.1 502 Bad Gateway\r\n\r\n")), false);
});

test("a gRPC (HTTP/2) frontend on a Unix socket is frontend-down, and says it answered in HTTP/2", async () => {
  const dir = mkdtempSync(join(tmpdir(), "doctor-grpc-"));
  const path = join(dir, "grpc.sock");
  const server = createHttp2Server();
  server.on("sessionError", () => {});
  await new Promise<void>((r) => server.listen(path, r));
  try {
    const r = await dialThroughConnect({ path }, "10.224.0.5:10250", 2000);
    assert.equal(r.outcome, "frontend-down");
    assert.equal(r.frontendSpeaks, "http2");
    assert.equal(r.status, null);
    assert.match(r.message, /answered in HTTP\/2 \(a gRPC frontend\), not HTTP CONNECT/);
  } finally {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an HTTP CONNECT frontend's UTF-8 body survives being read as bytes", async () => {
  const port = await fakeFrontend("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\ncurrently no tunnels available: No agent available — no connected agent serves 10.224.0.6");
  const r = await dialThroughConnect({ host: "127.0.0.1", port }, "10.224.0.6:10250", 2000);
  assert.equal(r.outcome, "no-agent");
  assert.equal(r.frontendSpeaks, undefined);
  assert.equal(r.message, "currently no tunnels available: No agent available — no connected agent serves 10.224.0.6");
});
