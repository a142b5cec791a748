// The benchmark's download client (Path.connectSink in bench/paths.ts): every read lands in one
// shared buffer and is handed on as a view, so anything that keeps a view past its call (a frame
// body, a response head, a split gRPC message) would corrupt what the download rows count. A
// speak-first destination sends a known payload through each path; the sink must see exactly it.
// Loopback only.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, it, type TestContext } from "node:test";
import { makePath, type ModeName } from "../bench/paths.js";
import type { Stack as BenchStack } from "../bench/stack.js";
import { startStack } from "./helpers/stack.js";
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
