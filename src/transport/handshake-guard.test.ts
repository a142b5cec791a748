// The guard's counting and its log budget, with sockets and a server played by emitters (the
// real listeners are in grpc-server.test.ts, on both HTTP/2 implementations).
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type * as tls from "node:tls";
import { test } from "node:test";
import pino from "pino";
import { HandshakeGuard } from "./handshake-guard.js";

class FakeSocket extends EventEmitter {
  destroyed = false;
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit("close");
  }
}

function logged() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

test("counts connections in handshake, refuses past the limit, and frees a slot when one finishes or goes", () => {
  const server = new EventEmitter();
  const guard = new HandshakeGuard(2, undefined);
  const detach = guard.attach(server as unknown as tls.Server);
  const [a, b, c] = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
  server.emit("connection", a);
  server.emit("connection", b);
  assert.equal(guard.pending, 2);
  server.emit("connection", c);
  assert.equal(c.destroyed, true, "the third is refused");
  assert.equal(guard.pending, 2);
  const secure = new FakeSocket();
  server.emit("secureConnection", secure); // a finished its handshake
  assert.equal(guard.pending, 1);
  const d = new FakeSocket();
  server.emit("connection", d);
  assert.equal(d.destroyed, false, "a slot was free again");
  b.destroy(); // gave up during its handshake
  assert.equal(guard.pending, 1);
  a.destroy();
  secure.destroy(); // the TLS session and its TCP socket close together
  assert.equal(guard.pending, 1, "only d is left in handshake");
  detach();
  assert.equal(server.listenerCount("connection") + server.listenerCount("secureConnection") + server.listenerCount("tlsClientError"), 0);
});

test("handshake failures destroy the socket and are logged at most once per 10 s, with the counts in between", () => {
  const server = new EventEmitter();
  let now = 1_000_000;
  const { log, lines } = logged();
  const guard = new HandshakeGuard(1, log, () => now);
  guard.attach(server as unknown as tls.Server);
  const failing = new FakeSocket();
  server.emit("tlsClientError", new Error("no shared cipher"), failing);
  assert.equal(failing.destroyed, true);
  assert.equal(lines.length, 1, "the first one is logged at once");
  assert.equal(lines[0]!.failed, 1);
  assert.equal(lines[0]!.lastError, "no shared cipher");
  for (let i = 0; i < 50; i++) server.emit("tlsClientError", new Error("handshake timeout"), new FakeSocket());
  server.emit("connection", new FakeSocket());
  server.emit("connection", new FakeSocket()); // refused: one is already in handshake
  assert.equal(lines.length, 1, "a flood is not logged line by line");
  now += 10_000;
  server.emit("tlsClientError", new Error("handshake timeout"), new FakeSocket());
  assert.equal(lines.length, 2);
  assert.deepEqual({ failed: lines[1]!.failed, refused: lines[1]!.refused, pending: lines[1]!.pending, limit: lines[1]!.limit }, { failed: 51, refused: 1, pending: 1, limit: 1 });
});
