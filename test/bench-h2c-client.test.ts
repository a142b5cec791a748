// The benchmark's hand-framed gRPC frontend client (bench/h2c-proxy-client.ts) against a real
// server and agent: what the gRPC rows measure is only right if this client is. Loopback only.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import type { Duplex } from "node:stream";
import { describe, it, type TestContext } from "node:test";
import { dialH2c } from "../bench/h2c-proxy-client.js";
import { startStack } from "./helpers/stack.js";
import { loopbackServer } from "./helpers/loopback-server.js";
import { waitFor } from "./helpers/wait.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const echoServer = (t: TestContext) => loopbackServer(t, (s) => s.pipe(s));

function readExactly(s: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer) => {
      parts.push(c);
      got += c.length;
      if (got >= n) {
        s.off("data", onData);
        resolve(Buffer.concat(parts));
      }
    };
    s.on("data", onData);
    s.once("error", reject);
    s.once("close", () => reject(new Error(`closed after ${got} of ${n} bytes`)));
    s.resume();
  });
}

describe("bench/h2c-proxy-client.ts", () => {
  it("carries 24 MiB both ways intact, past both HTTP/2 windows, with a reader that pauses", async (t) => {
    const stack = await startStack(t);
    await stack.startAgent("node-1", "ipv4=127.0.0.1");
    const echo = await echoServer(t);
    const s = await dialH2c(stack.grpcPath, echo.address, 5000);
    const payload = randomBytes(24 * 1024 * 1024);
    const received = readExactly(s, payload.length);
    s.pause(); // nothing is read for a while: the windows must stop the server, not lose bytes
    for (let off = 0; off < payload.length; off += 64 * 1024) s.write(payload.subarray(off, off + 64 * 1024));
    await new Promise((r) => setTimeout(r, 300));
    s.resume();
    const back = await received;
    assert.equal(back.length, payload.length);
    assert.equal(sha(back), sha(payload));
    s.end();
    await once(s, "close");
    await waitFor(() => echo.open() === 0, "the destination socket to close after CLOSE_REQ");
    await stack.settled();
  });

  it("a refused destination rejects the dial with the agent's error text", async (t) => {
    const stack = await startStack(t);
    await stack.startAgent("node-1", "ipv4=127.0.0.1");
    const closed = net.createServer().listen(0, "127.0.0.1");
    await once(closed, "listening");
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    await assert.rejects(dialH2c(stack.grpcPath, `127.0.0.1:${port}`, 5000), /dial failed: dial tcp 127\.0\.0\.1:\d+: connect: connection refused/);
    await stack.settled();
  });

  it("a destination that closes ends the tunnel: CLOSE_RSP, then the client closes its connection as konnectivity-client does", async (t) => {
    const stack = await startStack(t);
    await stack.startAgent("node-1", "ipv4=127.0.0.1");
    const banner = net.createServer((c) => c.end("hello and goodbye")).listen(0, "127.0.0.1");
    await once(banner, "listening");
    t.after(() => banner.close());
    const s = await dialH2c(stack.grpcPath, `127.0.0.1:${(banner.address() as net.AddressInfo).port}`, 5000);
    const parts: Buffer[] = [];
    s.on("data", (c: Buffer) => parts.push(c));
    const ended = once(s, "end");
    const closed = once(s, "close");
    s.resume();
    await ended;
    assert.equal(Buffer.concat(parts).toString(), "hello and goodbye");
    await closed;
    await stack.settled();
  });

  it("destroy() closes as kube-apiserver does: CLOSE_REQ, then the connection goes after CLOSE_RSP, with no reset", async (t) => {
    const stack = await startStack(t);
    await stack.startAgent("node-1", "ipv4=127.0.0.1");
    const echo = await echoServer(t);
    const scrapeStreamErrors = async () => {
      const text = await (await fetch(`http://127.0.0.1:${stack.healthPort}/metrics`)).text();
      return text.split("\n").filter((l) => l.startsWith("konnectivity_network_proxy_server_stream_errors_total{"));
    };
    const s = await dialH2c(stack.grpcPath, echo.address, 5000);
    s.write("ping");
    assert.equal((await readExactly(s, 4)).toString(), "ping");
    s.destroy();
    await waitFor(() => echo.open() === 0, "the destination socket to close after CLOSE_REQ");
    await stack.settled();
    // A reset stream would be counted (Canceled, from_client); CLOSE_REQ → CLOSE_RSP → trailers is not.
    assert.deepEqual(await scrapeStreamErrors(), []);

    const reset = await dialH2c(stack.grpcPath, echo.address, 5000);
    reset.destroy(new Error("given up"));
    const isCounted = (lines: string[]) => lines.some((l) => l.includes('segment="from_client"') && l.includes('code="Canceled"'));
    for (let i = 0; i < 100 && !isCounted(await scrapeStreamErrors()); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(isCounted(await scrapeStreamErrors()), "an error resets the stream, counted as Canceled");
    await stack.settled();
  });
});
