// Slow and stalled peers (issue 6 item 6): a slow-loris HTTP CONNECT client, and a destination
// that accepts and never reads. What must survive, and is checked: the frontend closes a client
// that has not sent its request head within the header timeout (upstream's ReadHeaderTimeout,
// 60 s; short here), while other clients are served; a stalled destination stalls only its own
// connection, with bounded memory, and everything is released when it goes.
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { describe, it } from "node:test";
import { resolveServerOptions } from "../src/server/index.js";
import { httpConnect, pingPong, readUntil } from "./helpers/connect-client.js";
import { startDestination, startStack, type Stack } from "./helpers/stack.js";
import { sleep, waitFor, within } from "./helpers/wait.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const HEADER_TIMEOUT_MS = 500;

async function openEcho(stack: Stack, address: string): Promise<net.Socket> {
  const c = await httpConnect({ port: stack.connectPort }, address);
  assert.match(c.head, /^HTTP\/1\.1 200 /, c.head);
  c.socket.write("ping");
  assert.equal((await readUntil(c.socket, c.rest, (b) => b.length >= 4)).toString(), "ping");
  return c.socket;
}

describe("slow-loris CONNECT clients", () => {
  it("defaults to upstream's 60 s header timeout", () => {
    const o = resolveServerOptions({ frontends: [{ mode: "http-connect", listen: { path: "/tmp/unused.sock" } }] });
    assert.equal(o.frontendHeaderTimeoutMs, 60_000);
  });

  it("closes clients that stall or drip their request head after the header timeout, serving others meanwhile", async (t) => {
    const stack = await startStack(t, { frontendHeaderTimeoutMs: HEADER_TIMEOUT_MS });
    const dest = await startDestination(t, { host: "127.0.8.1" });
    await stack.startAgent("loris-node", "ipv4=127.0.8.1");
    const started = Date.now();
    const closedAfter: number[] = [];
    const answers: string[] = [];
    const sockets: net.Socket[] = [];
    t.after(() => sockets.forEach((s) => s.destroy()));
    const watch = (s: net.Socket) => {
      sockets.push(s);
      s.on("error", () => {});
      let got = "";
      s.on("data", (c: Buffer) => (got += c.toString("latin1")));
      return new Promise<void>((resolve) => s.once("close", () => resolve())).then(() => {
        closedAfter.push(Date.now() - started);
        answers.push(got);
      });
    };
    const closes: Array<Promise<unknown>> = [];
    // Half a request head, then nothing.
    for (let i = 0; i < 10; i++) {
      const s = net.connect(stack.connectPort, "127.0.0.1");
      await once(s, "connect");
      s.write(`CONNECT ${dest.address} HTTP/1.1\r\nHo`);
      closes.push(watch(s));
    }
    // One byte every 50 ms: a head that never completes in time (bounded at 40 bytes).
    const drip = net.connect(stack.connectPort, "127.0.0.1");
    await once(drip, "connect");
    closes.push(watch(drip));
    const head = `CONNECT ${dest.address} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
    const dripping = (async () => {
      for (let i = 0; i < Math.min(40, head.length) && !drip.destroyed; i++) {
        drip.write(head[i]!);
        await sleep(50);
      }
    })();

    // Meanwhile a well-behaved client is served, and keeps working past the header timeout.
    const good = await openEcho(stack, dest.address);
    const pp = pingPong(good);
    await within(Promise.all(closes), "every slow client to be closed", HEADER_TIMEOUT_MS + 2000);
    await dripping;
    t.diagnostic(`slow clients closed after ${Math.min(...closedAfter)}–${Math.max(...closedAfter)} ms (header timeout ${HEADER_TIMEOUT_MS} ms)`);
    for (const a of answers) assert.match(a, /^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*request head not received within 500 ms/);
    for (const ms of closedAfter) assert.ok(ms >= HEADER_TIMEOUT_MS - 50 && ms < HEADER_TIMEOUT_MS + 1000, `a slow client was closed after ${ms} ms`);
    await sleep(100);
    await pp.stop();
    assert.ok(pp.rounds > 10, `the good client made ${pp.rounds} rounds`);
    good.end();
    await stack.settled();
    await waitFor(() => dest.open === 0, "the destination socket closed");
    assert.equal(dest.accepted, 1, "only the good client reached the destination");
  });
});

for (const credit of [true, false]) {
  describe(`a destination that accepts and never reads (${credit ? "credit flow control" : "no credit: slow-consumer cap"})`, () => {
    it("stalls only its own connection, with bounded memory; others flow; everything is released", async (t) => {
      const slowConsumerBytes = 8 * MiB;
      // The server gives a closing connection this long to flush what is queued for the agent.
      const closeTimeoutMs = 1000;
      const stack = await startStack(t, { creditFlowControl: credit, closeTimeoutMs });
      const stalled = await startDestination(t, { host: "127.0.8.2", echo: false });
      const echo = await startDestination(t, { host: "127.0.8.3" });
      const agent = await stack.startAgent(`stall-node-${credit}`, "ipv4=127.0.8.2&ipv4=127.0.8.3", {
        creditFlowControl: credit,
        flow: { slowConsumerBytes, creditWindowBytes: 4 * MiB },
        healthListen: { port: 0, host: "127.0.0.1" },
      });
      const rssBefore = process.memoryUsage().rss;

      const victim = await httpConnect({ port: stack.connectPort }, stalled.address);
      assert.match(victim.head, /^HTTP\/1\.1 200 /);
      victim.socket.on("error", () => {});
      victim.socket.resume(); // read (nothing comes), so the close is seen
      // (not events.once: that rejects on the EPIPE a write into a closed connection raises)
      const victimClosed = new Promise<void>((resolve) => victim.socket.once("close", () => resolve()));
      // Write as fast as the tunnel accepts, for at most 3 s or 64 MiB.
      let written = 0;
      const chunk = Buffer.alloc(256 * KiB, 0x61);
      const writer = (async () => {
        const until = Date.now() + 3000;
        while (Date.now() < until && written < 64 * MiB && victim.socket.writable) {
          if (victim.socket.write(chunk)) written += chunk.length;
          else {
            written += chunk.length;
            await new Promise<void>((resolve) => {
              const done = () => {
                clearTimeout(timer);
                victim.socket.off("drain", done);
                resolve();
              };
              const timer = setTimeout(done, 200);
              victim.socket.once("drain", done);
            });
          }
        }
      })();

      const good = await openEcho(stack, echo.address);
      const pp = pingPong(good);
      let maxQueued = 0;
      const sampling = setInterval(() => {
        let queued = 0;
        for (const a of stack.server.proxy.registry.all()) for (const c of a.connections.values()) queued += c.queuedBytes + c.bufferedBytes;
        maxQueued = Math.max(maxQueued, queued);
      }, 20);
      t.after(() => clearInterval(sampling));
      await writer;
      const rssPeak = process.memoryUsage().rss;
      // Without credit the writer ends when the stalled connection is closed, about a second in:
      // the other connection must be flowing by then, so give it half a second more.
      await sleep(500);
      await pp.stop();
      clearInterval(sampling);
      t.diagnostic(`client wrote ${(written / MiB).toFixed(1)} MiB into the stall; server queues peaked at ${(maxQueued / MiB).toFixed(2)} MiB; RSS +${((rssPeak - rssBefore) / MiB).toFixed(0)} MiB; ${pp.rounds} echo rounds meanwhile`);
      assert.ok(pp.rounds > 20, `the other connection kept flowing (${pp.rounds} rounds)`);
      assert.ok(written < 64 * MiB, `the stalled connection pushed back (the client wrote ${written} bytes)`);
      assert.ok(maxQueued <= 2 * MiB, `the server's queues stayed bounded (${maxQueued} bytes)`);
      assert.ok(rssPeak - rssBefore < 200 * MiB, `RSS grew by ${rssPeak - rssBefore} bytes`);
      if (credit) {
        // With credit, the stall is held by flow control: the connection is alive, just stopped.
        assert.equal(victim.socket.destroyed, false);
        assert.equal(stack.server.proxy.establishedCount, 2);
        // The destination gives up: the agent closes, and the server ends the frontend socket.
        // (Not the client giving up: a frontend socket paused for backpressure is not read, so
        // its FIN is seen only when the destination reads again — docs/operations.md.)
        for (const d of stalled.sockets) d.destroy();
        await within(victimClosed, "the frontend to be closed after the destination went", 2000);
      } else {
        // Without credit, the agent closes it as a slow consumer once it is this far behind.
        await within(victimClosed, "the slow consumer to be closed", 3000);
        const metrics = await (await fetch(`http://127.0.0.1:${agent.healthPort}/metrics`)).text();
        assert.match(metrics, /^nodetunnel_agent_slow_consumer_closes_total 1$/m, "the agent counted one slow consumer");
      }
      await within(victimClosed, "the victim socket closed", 3000);
      good.end();
      await stack.settled();
      await waitFor(() => echo.open === 0, "the echo destination's socket closed");
      assert.equal(agent.status().servers[0]!.connections, 0);
    });
  });
}

describe("a client that closes while its last bytes wait for credit", () => {
  it("the server sends CLOSE_REQ at its close timeout anyway, so the agent drops its end", async (t) => {
    const closeTimeoutMs = 800;
    const stack = await startStack(t, { closeTimeoutMs });
    const stalled = await startDestination(t, { host: "127.0.8.4", echo: false });
    const agent = await stack.startAgent("credit-close-node", "ipv4=127.0.8.4");
    const victim = await httpConnect({ port: stack.connectPort }, stalled.address);
    assert.match(victim.head, /^HTTP\/1\.1 200 /);
    victim.socket.on("error", () => {});
    const conn = () => [...(stack.server.proxy.registry.streamsOf("credit-close-node")[0]?.connections.values() ?? [])][0];
    // Write until bytes queue on the server: the agent's credit is used up. Stay under the
    // queue limit, so the server still reads the socket and sees the client go.
    const until = Date.now() + 10_000;
    while ((conn()?.queuedBytes ?? 0) < 128 * KiB && Date.now() < until) {
      victim.socket.write(Buffer.alloc(64 * KiB, 0x62));
      await sleep(5);
    }
    const queued = conn()!.queuedBytes;
    assert.ok(queued >= 128 * KiB && queued < 1024 * KiB, `queued ${queued} bytes`);
    await sleep(300);
    assert.equal(conn()!.queuedBytes, queued, "the queue is stuck: no credit comes back");
    assert.equal(agent.status().servers[0]!.connections, 1);

    const closedAt = Date.now();
    victim.socket.destroy();
    await waitFor(() => agent.status().servers[0]!.connections === 0, "the agent to get CLOSE_REQ and drop its end", closeTimeoutMs + 2000);
    const tookMs = Date.now() - closedAt;
    assert.ok(tookMs >= closeTimeoutMs - 100, `the close waited for the data first (${tookMs} ms)`);
    await stack.settled();
  });
});
