// Fuzzing the HTTP CONNECT frontend over a real loopback socket (issue 6 item 5): random and
// mutated request heads must never crash the server; every connection gets a response or a close
// within a bound; no connection is left behind; memory stays bounded. There is no agent, so a
// well-formed CONNECT is answered "no tunnels available" — what matters is the parsing around it.
// Seeded (FUZZ_SEED) and bounded (FUZZ_ITERATIONS); see test/fuzz-support.ts.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { pino } from "pino";
import { Registry } from "prom-client";
import { ProxyServer, ServerMetrics, createHttpConnectFrontend, resolveServerOptions } from "../src/server/index.js";
import { fuzzIterations, fuzzSeed, mutateText, randInt, randomBytes, seededRandom } from "./fuzz-support.js";

const log = pino({ level: "silent" });
const seeds = [
  "CONNECT 10.224.0.5:10250 HTTP/1.1\r\nHost: 10.224.0.5:10250\r\nUser-Agent: kube-apiserver\r\n\r\n",
  "CONNECT [fd00::5]:10250 HTTP/1.1\r\nHost: [fd00::5]:10250\r\n\r\n",
  "CONNECT node-1:10250 HTTP/1.0\r\n\r\n",
  "CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nContent-Length: 5\r\n\r\nhello",
  "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
  "CONNECT 10.0.0.1:10250 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: a\r\n\r\n0\r\n\r\n",
];

let server: ProxyServer;
let frontend: ReturnType<typeof createHttpConnectFrontend>;
let port = 0;

before(async () => {
  const options = resolveServerOptions({ frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }], proxyStrategies: ["destHost"], dialTimeoutMs: 500 });
  const metrics = new ServerMetrics(new Registry());
  server = new ProxyServer(options, log, metrics, () => "127.0.0.1:8091");
  frontend = createHttpConnectFrontend(server, metrics, log);
  frontend.listen(0, "127.0.0.1");
  await once(frontend, "listening");
  port = (frontend.address() as net.AddressInfo).port;
});

after(() => {
  frontend.close();
  server.destroy();
});

/** Sends `input`, half-closes, and reports what came back: a response, a bare close, or a hang. */
async function exchange(input: Buffer, boundMs: number): Promise<{ kind: "response" | "closed" | "hang"; head: string }> {
  const socket = net.connect(port, "127.0.0.1");
  let data = "";
  socket.on("data", (d: Buffer) => {
    if (data.length < 4096) data += d.toString("latin1");
  });
  socket.on("error", () => {});
  socket.end(input);
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    new Promise<"closed">((r) => socket.on("close", () => r("closed"))),
    new Promise<"hang">((r) => (timer = setTimeout(() => r("hang"), boundMs))),
  ]);
  clearTimeout(timer);
  socket.destroy();
  return { kind: outcome === "hang" ? "hang" : data.startsWith("HTTP/1.") ? "response" : "closed", head: data.slice(0, 80) };
}

test(`random and mutated request heads: always a response or a close, never a crash or a hang (seed ${fuzzSeed})`, async () => {
  const rand = seededRandom(fuzzSeed);
  const iterations = fuzzIterations(400);
  const heapBefore = process.memoryUsage().heapUsed;
  const counts = { response: 0, closed: 0 };
  const batch = 16;
  for (let i = 0; i < iterations; i += batch) {
    const inputs = Array.from({ length: Math.min(batch, iterations - i) }, (_, k) => {
      const n = i + k;
      if (n % 7 === 0) return randomBytes(rand, 200);
      const text = mutateText(rand, seeds[randInt(rand, seeds.length)]!, seeds[randInt(rand, seeds.length)]);
      // Mostly keep the head terminated, so the parser sees complete (and then malformed) heads.
      return Buffer.from(rand() < 0.7 && !text.includes("\r\n\r\n") ? `${text}\r\n\r\n` : text, "latin1");
    });
    const results = await Promise.all(inputs.map((input) => exchange(input, 5000)));
    results.forEach((r, k) => {
      assert.notEqual(r.kind, "hang", `no response and no close within 5 s for ${JSON.stringify(inputs[k]!.toString("latin1"))}`);
      counts[r.kind as "response" | "closed"]++;
    });
  }
  assert.ok(counts.response > iterations / 4, `most inputs get an HTTP answer: ${JSON.stringify(counts)}`);
  // Nothing is left open on the server, and no dial is left pending.
  for (let k = 0; k < 100; k++) {
    const open = await new Promise<number>((r) => frontend.getConnections((_e, n) => r(n)));
    if (open === 0 && server.pendingDialCount === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(await new Promise<number>((r) => frontend.getConnections((_e, n) => r(n))), 0, "connections left open");
  assert.equal(server.pendingDialCount, 0);
  global.gc?.();
  const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
  assert.ok(grownMb < 64, `heap grew by ${grownMb.toFixed(1)} MB`);
});

test("an oversized head is refused, not buffered", async () => {
  const huge = Buffer.from(`CONNECT 10.0.0.1:10250 HTTP/1.1\r\nX-Junk: ${"a".repeat(256 * 1024)}\r\n\r\n`);
  const r = await exchange(huge, 5000);
  assert.notEqual(r.kind, "hang");
  if (r.kind === "response") assert.match(r.head, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/, "as Go's net/http answers");
});
