// No head-of-line blocking between connections on one agent stream (DESIGN.md, upstream #180,
// #222, #881): a reader that stops reading stalls only its own connection, with and without the
// credit extension. Real server and agent over mTLS gRPC on loopback, real sockets.
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions } from "../src/agent/index.js";
import { NodetunnelServer, resolveServerOptions, serverSnapshot } from "../src/server/index.js";
import { createPki, type Pki } from "../src/transport/index.js";
import { httpConnect } from "./helpers/connect-client.js";
import { readSlowly, streamBytes } from "./helpers/bulk-peers.js";

const log = pino({ level: "silent" });
const MiB = 1024 * 1024;
// A reader slower than the node but steady: with the caps below (8 MiB, drained to half within the
// grace), it must be slowed down with its peer, never closed. Slow enough that a socket handed the
// whole cap at once would show no progress for a second (SOCKET_BATCH_BYTES).
const SLOW_READER_BYTES_PER_SECOND = 8 * MiB;
const SLOW_READ_BYTES = 12 * MiB;
const SLOW_CONSUMER_GRACE_MS = 10_000;

async function connectThrough(port: number, target: string): Promise<net.Socket> {
  const { socket, head, rest } = await httpConnect({ port }, target);
  assert.equal(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
  if (rest.length > 0) socket.unshift(rest);
  return socket;
}

/** Destinations: /source streams bytes forever (bounded), /sink reads and counts, /stall accepts and never reads, /slow reads at SLOW_READER_BYTES_PER_SECOND. */
async function startDestinations() {
  const sockets = new Set<net.Socket>();
  const make = (onConn: (s: net.Socket) => void) => {
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
      onConn(s);
    });
    server.listen(0, "127.0.0.1");
    return server;
  };
  const source = make((s) => streamBytes(s, 512 * MiB));
  const sink = make((s) => s.resume());
  const stall = make((s) => s.pause());
  const echo = make((s) => s.pipe(s));
  const slowReads: Array<Promise<number>> = [];
  const slow = make((s) => {
    slowReads.push(readSlowly(s, SLOW_READ_BYTES, SLOW_READER_BYTES_PER_SECOND, 30_000));
  });
  await Promise.all([source, sink, stall, echo, slow].map((s) => once(s, "listening")));
  const port = (s: net.Server) => (s.address() as net.AddressInfo).port;
  return {
    source: `127.0.0.1:${port(source)}`,
    sink: `127.0.0.1:${port(sink)}`,
    stall: `127.0.0.1:${port(stall)}`,
    echo: `127.0.0.1:${port(echo)}`,
    slow: `127.0.0.1:${port(slow)}`,
    /** What the slow destination's readers read, in order of connection. */
    slowReads,
    close() {
      for (const s of sockets) s.destroy();
      for (const s of [source, sink, stall, echo, slow]) s.close();
    },
  };
}

async function download(socket: net.Socket, bytes: number, timeoutMs: number): Promise<number> {
  let got = 0;
  const started = performance.now();
  socket.resume();
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`downloaded ${got} of ${bytes} bytes in ${timeoutMs} ms`)), timeoutMs);
    socket.on("data", (c: Buffer) => {
      got += c.length;
      if (got >= bytes) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  socket.destroy();
  return bytes / MiB / ((performance.now() - started) / 1000);
}

async function upload(socket: net.Socket, bytes: number, timeoutMs: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  let sent = 0;
  const deadline = Date.now() + timeoutMs;
  while (sent < bytes) {
    if (Date.now() > deadline) throw new Error(`uploaded ${sent} of ${bytes} bytes in ${timeoutMs} ms`);
    sent += chunk.length;
    if (!socket.write(chunk)) await Promise.race([once(socket, "drain"), new Promise((r) => setTimeout(r, 1000))]);
  }
  socket.destroy();
}

async function counterOf(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `${name} is registered`);
  return (await metric.get()).values[0]?.value ?? 0;
}

async function echoOnce(port: number, target: string): Promise<number> {
  const started = performance.now();
  const s = await connectThrough(port, target);
  s.resume();
  s.write("x");
  await once(s, "data");
  s.destroy();
  return performance.now() - started;
}

for (const credit of [true, false]) {
  describe(`one stalled reader does not block the others (${credit ? "credit extension" : "upstream-style peer: slow-consumer cap"})`, () => {
    let pki: Pki;
    let server: NodetunnelServer;
    let agent: NodetunnelAgent;
    let dest: Awaited<ReturnType<typeof startDestinations>>;
    let port = 0;
    const serverRegistry = new Registry();
    const agentRegistry = new Registry();

    before(async () => {
      pki = await createPki();
      dest = await startDestinations();
      // Without credit, the cap must be small enough for the test to reach it quickly, and the
      // grace long enough that only a stall (no progress for a second) closes a reader in time.
      const flow = credit ? {} : { creditWindowBytes: 2 * MiB, slowConsumerBytes: 8 * MiB, slowConsumerGraceMs: SLOW_CONSUMER_GRACE_MS };
      server = await NodetunnelServer.start(resolveServerOptions({
        frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }],
        agentListen: { port: 0, host: "127.0.0.1" },
        agentTls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca },
        creditFlowControl: credit,
        flow,
      }), { log, registry: serverRegistry });
      port = server.addresses.frontends[0]!.port!;
      agent = await NodetunnelAgent.start(resolveAgentOptions({
        agentId: "node-1",
        proxyServerPort: server.addresses.agentPort,
        tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] },
        creditFlowControl: credit,
        flow,
      }), { log, registry: agentRegistry });
      await agent.waitForServers(1);
    });

    after(() => {
      agent.destroy();
      server.destroy();
      dest.close();
    });

    it("a frontend that stops reading its download leaves other downloads, uploads and new connections flowing", async () => {
      const normal = await download(await connectThrough(port, dest.source), 64 * MiB, 60_000);
      const stalled = await connectThrough(port, dest.source); // never read
      await new Promise((r) => setTimeout(r, 300)); // let it fill every buffer on the way
      const during = await download(await connectThrough(port, dest.source), 64 * MiB, 60_000);
      await upload(await connectThrough(port, dest.sink), 32 * MiB, 60_000);
      const echoMs = await echoOnce(port, dest.echo);
      // Generous floors that catch a stall, not noise: upstream gives the bulk connection 0 bytes.
      assert.ok(during > normal * 0.1, `bulk download kept ${during.toFixed(0)} MiB/s next to a stalled reader (normal ${normal.toFixed(0)} MiB/s)`);
      assert.ok(echoMs < 5000, `a new connection opened and echoed in ${echoMs.toFixed(1)} ms`);
      const buffered = [...server.proxy.registry.all()].flatMap((a) => [...a.connections.values()]).reduce((n, c) => n + c.bufferedBytes + c.queuedBytes, 0);
      assert.ok(buffered < 64 * MiB, `the server buffers ${buffered} bytes for the stalled reader, within the caps`);
      stalled.destroy();
    });

    it("a destination that stops reading leaves other connections flowing", async () => {
      const stuck = await connectThrough(port, dest.stall);
      const writer = upload(stuck, 256 * MiB, 3000).catch(() => {}); // will not finish: nobody reads
      await new Promise((r) => setTimeout(r, 300));
      // Completing within the generous timeouts is the point: upstream stalls them all.
      const during = await download(await connectThrough(port, dest.source), 64 * MiB, 60_000);
      await upload(await connectThrough(port, dest.sink), 32 * MiB, 60_000);
      const echoMs = await echoOnce(port, dest.echo);
      assert.ok(during > 2, `bulk download kept ${during.toFixed(0)} MiB/s next to a stalled destination`);
      assert.ok(echoMs < 5000);
      stuck.destroy();
      await writer;
    });

    if (!credit) {
      it("a reader that stalls is closed once it drains nothing for a second, without waiting out the grace period", async () => {
        const before = await counterOf(serverRegistry, "nodetunnel_server_slow_consumer_closes_total");
        const started = performance.now();
        const stalled = await connectThrough(port, dest.source); // never read
        let shownPausing = false;
        while (await counterOf(serverRegistry, "nodetunnel_server_slow_consumer_closes_total") === before) {
          assert.ok(performance.now() - started < SLOW_CONSUMER_GRACE_MS, "the stalled reader was not closed before the grace period ended");
          shownPausing ||= serverSnapshot(server.proxy).connections.some((c) => c.pausesAgentStream);
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(shownPausing, "the dashboard's snapshot showed the connection pausing the agent stream meanwhile");
        assert.ok(!serverSnapshot(server.proxy).connections.some((c) => c.pausesAgentStream), "and no longer once it was closed");
        const ms = performance.now() - started;
        assert.ok(ms < 4000, `closed after ${ms.toFixed(0)} ms`);
        stalled.destroy();
      });

      it("five readers that stall together are closed about a second after they stalled, not one a second after another", async () => {
        // Each reaches the cap only once the one before it stops holding the agent stream; a reader
        // that has read nothing for a second by then is closed without a hold of its own (before,
        // five stalled readers held the stream for five seconds, one after another: an ops audit).
        const before = await counterOf(serverRegistry, "nodetunnel_server_slow_consumer_closes_total");
        const started = performance.now();
        const stalled = await Promise.all([1, 2, 3, 4, 5].map(() => connectThrough(port, dest.source))); // never read
        while (await counterOf(serverRegistry, "nodetunnel_server_slow_consumer_closes_total") < before + 5) {
          assert.ok(performance.now() - started < 15_000, "five stalled readers were closed within 15 s");
          await new Promise((r) => setTimeout(r, 20));
        }
        const ms = performance.now() - started;
        assert.ok(ms < 4000, `all five closed after ${ms.toFixed(0)} ms (one a second after another would be 5 s and more)`);
        for (const s of stalled) s.destroy();
      });
    }

    it("a frontend that reads slower than the node gets every byte: its peer is slowed down, not the connection closed", async () => {
      const slowConsumersBefore = await counterOf(serverRegistry, "nodetunnel_server_slow_consumer_closes_total");
      const reader = await connectThrough(port, dest.source);
      const got = await readSlowly(reader, SLOW_READ_BYTES, SLOW_READER_BYTES_PER_SECOND, 30_000);
      assert.ok(got >= SLOW_READ_BYTES);
      assert.equal(await counterOf(serverRegistry, "nodetunnel_server_slow_consumer_closes_total"), slowConsumersBefore);
      if (!credit) assert.ok(await counterOf(serverRegistry, "nodetunnel_server_slow_reader_stream_pauses_total") > 0, "the reader paused the agent stream");
    });

    it("a destination that reads slower than the client gets every byte: the client is slowed down", async () => {
      const slowConsumersBefore = await counterOf(agentRegistry, "nodetunnel_agent_slow_consumer_closes_total");
      const reads = dest.slowReads.length;
      const writer = await connectThrough(port, dest.slow);
      writer.on("error", () => {});
      const chunk = Buffer.alloc(64 * 1024, 0x63);
      for (let sent = 0; sent < SLOW_READ_BYTES && writer.writable; sent += chunk.length) {
        if (!writer.write(chunk)) await Promise.race([once(writer, "drain"), once(writer, "close")]);
      }
      assert.equal(dest.slowReads.length, reads + 1, "the slow destination took the connection");
      const read = await dest.slowReads[reads]!;
      assert.ok(read >= SLOW_READ_BYTES, `the destination read ${read} bytes`);
      assert.equal(await counterOf(agentRegistry, "nodetunnel_agent_slow_consumer_closes_total"), slowConsumersBefore);
      if (!credit) assert.ok(await counterOf(agentRegistry, "nodetunnel_agent_slow_reader_stream_pauses_total") > 0, "the destination paused the server stream");
    });
  });
}
