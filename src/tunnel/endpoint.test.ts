import assert from "node:assert/strict";
import net from "node:net";
import { it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SOCKET_BATCH_BYTES, SocketEndpoint } from "./endpoint.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

async function socketPair(): Promise<{ client: net.Socket; server: net.Socket; close(): void }> {
  const listener = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const accepted = new Promise<net.Socket>((resolve) => listener.once("connection", resolve));
  const client = net.connect((listener.address() as net.AddressInfo).port, "127.0.0.1");
  const server = await accepted;
  return { client, server, close: () => listener.close() };
}

it("an endpoint whose socket closed is not held by end()'s flush deadline", async () => {
  let ref: WeakRef<SocketEndpoint> | undefined;
  // Everything that refers to the socket stays inside this function, as in the tunnel.
  const closeListener = await (async () => {
    const pair = await socketPair();
    const endpoint = new SocketEndpoint(pair.server);
    ref = new WeakRef(endpoint);
    const ended = new Promise<void>((resolve) => endpoint.start({ localData: () => {}, localEnd: () => resolve(), localDrain: () => {} }));
    pair.client.destroy();
    await ended;
    // The peer's close reaches the tunnel after the local end: it ends the endpoint anyway, and
    // the socket closes at once (its peer is gone).
    const closed = new Promise((r) => pair.server.once("close", r));
    endpoint.end();
    await closed;
    return pair.close;
  })();
  closeListener();
  await new Promise((r) => setImmediate(r));
  gc();
  assert.equal(ref!.deref(), undefined, "collected: no 30 s timer keeps it (and its socket and connection) alive");
});

it("end() closes a live socket after flushing, and the endpoint reports the end once", async () => {
  const pair = await socketPair();
  const endpoint = new SocketEndpoint(pair.server);
  let ends = 0;
  endpoint.start({ localData: () => {}, localEnd: () => ends++, localDrain: () => {} });
  const received: Buffer[] = [];
  pair.client.on("data", (d: Buffer) => received.push(d));
  const clientEnded = new Promise((r) => pair.client.once("end", r));
  endpoint.write(Buffer.from("last words"));
  endpoint.end();
  await clientEnded;
  assert.equal(Buffer.concat(received).toString(), "last words");
  pair.client.end();
  await new Promise((r) => pair.server.once("close", r));
  assert.equal(ends, 1);
  pair.close();
});

/** Bytes 0, 1, 2, … 250, 0, 1, … from `offset` on: a pattern that shows a lost or reordered chunk. */
function pattern(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (offset + i) % 251;
  return b;
}

it("a backed-up socket is handed batches of at most SOCKET_BATCH_BYTES, so a slow reader's progress shows in writableLength", async (t) => {
  const pair = await socketPair();
  t.after(() => {
    pair.client.destroy();
    pair.server.destroy();
    pair.close();
  });
  const endpoint = new SocketEndpoint(pair.server);
  let drains = 0;
  endpoint.start({ localData: () => {}, localEnd: () => {}, localDrain: () => drains++ });
  // More than the kernel's buffers on both sides take, so most of it waits in the endpoint.
  const total = 24 * SOCKET_BATCH_BYTES;
  const chunk = 64 * 1024;
  for (let off = 0; off < total; off += chunk) endpoint.write(pattern(off, chunk)); // all in one tick, as a burst of DATA
  assert.equal(endpoint.writableLength, total, "everything is counted, socket and backlog");
  // Read at ~40 MB/s: well under what loopback takes, so the endpoint stays backed up.
  let got = 0;
  let bad = -1;
  const started = performance.now();
  pair.client.on("data", (d: Buffer) => {
    for (let i = 0; i < d.length && bad < 0; i++) if (d[i] !== (got + i) % 251) bad = got + i;
    got += d.length;
    const aheadMs = (got / 40e6) * 1000 - (performance.now() - started);
    if (aheadMs > 2) {
      pair.client.pause();
      setTimeout(() => pair.client.resume(), aheadMs);
    }
  });
  const seen = new Set<number>();
  const sampler = setInterval(() => seen.add(endpoint.writableLength), 10);
  const until = Date.now() + 10_000;
  while (got < total && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  clearInterval(sampler);
  assert.equal(got, total);
  assert.equal(bad, -1, "the bytes arrived whole and in order");
  assert.equal(endpoint.writableLength, 0);
  assert.equal(drains, 1, "one drain, once the backlog and the socket are both empty");
  const between = [...seen].filter((n) => n > 0 && n < total);
  assert.ok(between.length >= 8, `writableLength moved as the reader read (${between.length} distinct values in between)`);
});

it("end() writes out the backlog before closing", async (t) => {
  const pair = await socketPair();
  t.after(() => {
    pair.client.destroy();
    pair.close();
  });
  const endpoint = new SocketEndpoint(pair.server);
  endpoint.start({ localData: () => {}, localEnd: () => {}, localDrain: () => {} });
  const total = 3 * SOCKET_BATCH_BYTES;
  const chunk = 64 * 1024;
  for (let off = 0; off < total; off += chunk) endpoint.write(pattern(off, chunk));
  endpoint.end();
  const received: Buffer[] = [];
  pair.client.on("data", (d: Buffer) => received.push(d));
  await new Promise((r) => pair.client.once("end", r));
  const all = Buffer.concat(received);
  assert.equal(all.length, total);
  assert.ok(all.equals(pattern(0, total)), "in order");
});

it("an abnormal end (destroy with an error) resets a TCP peer; a plain destroy ends it; a Unix socket just closes", async () => {
  const outcome = (client: net.Socket) => new Promise<string>((resolve) => {
    client.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    client.on("end", () => resolve("end"));
    client.resume();
  });
  for (const [err, expected] of [[new Error("agent gone"), "ECONNRESET"], [undefined, "end"]] as const) {
    const pair = await socketPair();
    const endpoint = new SocketEndpoint(pair.server);
    endpoint.start({ localData: () => {}, localEnd: () => {}, localDrain: () => {} });
    const seen = outcome(pair.client);
    endpoint.destroy(err);
    assert.equal(await seen, expected);
    pair.client.destroy();
    pair.close();
  }
  const dir = mkdtempSync(join(tmpdir(), "endpoint-"));
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(join(dir, "s"), resolve));
  const accepted = new Promise<net.Socket>((resolve) => listener.once("connection", resolve));
  const client = net.connect(join(dir, "s"));
  const endpoint = new SocketEndpoint(await accepted);
  endpoint.start({ localData: () => {}, localEnd: () => {}, localDrain: () => {} });
  const seen = outcome(client);
  endpoint.destroy(new Error("agent gone"));
  assert.equal(await seen, "end");
  client.destroy();
  listener.close();
  rmSync(dir, { recursive: true, force: true });
});
