import assert from "node:assert/strict";
import net from "node:net";
import { it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { SocketEndpoint } from "./endpoint.js";

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
