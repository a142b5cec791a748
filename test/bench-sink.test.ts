// The benchmark's download client (Path.connectSink in bench/paths.ts): every read lands in one
// shared buffer and is handed on as a view, so anything that keeps a view past its call (a frame
// body, a response head, a split gRPC message) would corrupt what the download rows count. A
// speak-first destination sends a known payload through each path; the sink must see exactly it.
// Loopback only.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { makePath, OrderingError, type ModeName } from "../bench/paths.js";
import type { Stack as BenchStack } from "../bench/stack.js";
import { startStack, tempDir } from "./helpers/stack.js";
import { loopbackServer } from "./helpers/loopback-server.js";
import { waitFor } from "./helpers/wait.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Sends `payload` to each connection as soon as it is accepted, then closes it. */
async function speakFirst(t: TestContext, payload: Buffer): Promise<number> {
  const server = await loopbackServer(t, (s) => {
    s.on("error", () => s.destroy());
    s.resume();
    s.end(payload);
  });
  return server.port;
}

describe("bench/paths.ts connectSink", () => {
  for (const mode of ["direct", "http-connect", "grpc"] as const satisfies readonly ModeName[]) {
    it(`${mode}: a 24 MiB speak-first download reaches the sink intact and in order`, async (t) => {
      const stack = await startStack(t);
      await stack.startAgent("node-1", "ipv4=127.0.0.1");
      // Random, so a view overwritten by a later read cannot pass for the right bytes.
      const payload = randomBytes(24 * 1024 * 1024);
      const port = await speakFirst(t, payload);
      // The parts of the bench's stack that makePath reads.
      const benchStack = { destinations: { source: port }, httpConnectPath: stack.connectPath, grpcPath: stack.grpcPath } as unknown as BenchStack;
      const received: Buffer[] = [];
      let got = 0;
      const c = await makePath(mode, benchStack).connectSink("source", (view) => {
        received.push(Buffer.from(view)); // a copy: the view is only valid during the call
        got += view.length;
      });
      t.after(() => c.destroy());
      await waitFor(() => got >= payload.length, `the whole payload (${got} of ${payload.length} bytes so far)`, 20_000);
      const all = Buffer.concat(received);
      assert.equal(all.length, payload.length);
      assert.equal(sha(all), sha(payload));
      c.destroy();
      await stack.settled();
    });
  }
});

describe("bench/paths.ts HTTP CONNECT head", () => {
  /** A fake frontend on a Unix socket that answers every request with `answer`. */
  async function fakeFrontend(t: TestContext, answer: string): Promise<string> {
    const path = join(tempDir(t, "bench-connect-"), "connect.sock");
    await loopbackServer(t, (s) => {
      s.on("error", () => undefined);
      s.end(answer);
    }, path);
    return path;
  }
  const pathTo = (httpConnectPath: string) => makePath("http-connect", { destinations: { source: 1 }, httpConnectPath } as unknown as BenchStack);

  it("a refusal rejects both connect and connectSink with the status line", async (t) => {
    const path = pathTo(await fakeFrontend(t, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"));
    await assert.rejects(path.connect("source"), /CONNECT failed: HTTP\/1\.1 503 Service Unavailable/);
    await assert.rejects(path.connectSink("source", () => undefined), /CONNECT failed: HTTP\/1\.1 503 Service Unavailable/);
  });

  it("bytes before the response (the upstream race) are an OrderingError, and never reach the sink", async (t) => {
    const path = pathTo(await fakeFrontend(t, "HELLO\nHTTP/1.1 200 Connection Established\r\n\r\n"));
    await assert.rejects(path.connect("source"), OrderingError);
    let sunk = 0;
    await assert.rejects(path.connectSink("source", (b) => (sunk += b.length)), OrderingError);
    assert.equal(sunk, 0);
  });

  it("the bytes that come with the 200 go first, in both modes", async (t) => {
    const path = pathTo(await fakeFrontend(t, "HTTP/1.1 200 Connection Established\r\n\r\nHELLO\n"));
    const c = await path.connect("source");
    t.after(() => c.destroy());
    const [first] = await Promise.all([once(c, "data"), Promise.resolve(c.resume())]);
    assert.equal(String(first[0]), "HELLO\n");
    const sunk: string[] = [];
    const d = await path.connectSink("source", (b) => sunk.push(Buffer.from(b).toString()));
    t.after(() => d.destroy());
    assert.equal(sunk.join(""), "HELLO\n");
  });
});
