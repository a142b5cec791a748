// A bounded soak (issue 6 item 7): thousands of dials and closes through a real server and real
// agents on loopback, with random failures — refused destinations, destinations that close
// early, frontends that cancel mid-dial, agents drained or killed and restarted — bounded in
// count and time. It ends by checking that nothing leaked (server tables, agent tables,
// destination sockets, the process's handles) and reports RSS at start, peak and end.
//
//   npm run soak -- --minutes 3 [--concurrency 16] [--max-ops 200000] [--seed 1] [--json out.json]
//
// Every address is loopback (127.0.10.x): the server routes by destHost only, so nothing is ever
// dialed outside the machine. test/soak.test.ts runs a short form in CI.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { pathToFileURL } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { pino } from "pino";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions } from "../src/agent/index.js";
import { TunnelError } from "../src/protocol/index.js";
import { NodetunnelServer, resolveServerOptions } from "../src/server/index.js";
import { createPki } from "../src/transport/index.js";
import { dialThroughProxy } from "../src/tunnel/index.js";
import { seededRandom as seeded } from "../test/helpers/seeded-random.js";

export interface SoakOptions {
  readonly durationMs: number;
  readonly maxOps: number;
  readonly concurrency: number;
  readonly agents: number;
  readonly seed: number;
  /** Mean time between agent restarts (drain or kill, then start again); 0 disables. */
  readonly restartEveryMs: number;
  /** Run only this kind of operation (to chase one failure). */
  readonly only?: OpKind;
  readonly onProgress?: (line: string) => void;
}

export const defaultSoakOptions: SoakOptions = {
  durationMs: 3 * 60_000,
  maxOps: 500_000,
  concurrency: 16,
  agents: 3,
  seed: 1,
  restartEveryMs: 4000,
};

export type OpKind = "echo" | "grpc-echo" | "refused" | "early-close" | "cancel-mid-dial";
type Outcome = "ok" | "expected-failure" | "unexpected";

export interface SoakReport {
  readonly startedAt: string;
  readonly durationMs: number;
  readonly ops: number;
  readonly byKind: Record<OpKind, Record<Outcome, number>>;
  readonly unexpected: readonly string[];
  readonly agentRestarts: { readonly drained: number; readonly killed: number };
  readonly bytesEchoed: number;
  readonly rssMiB: { readonly start: number; readonly peak: number; readonly end: number };
  readonly heapUsedMiB: { readonly start: number; readonly end: number };
  readonly leaks: {
    readonly serverPendingDials: number;
    readonly serverEstablished: number;
    readonly agentConnections: number;
    readonly destinationSockets: number;
    readonly handlesBefore: number;
    readonly handlesAfter: number;
  };
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly memoryGiB: number; readonly node: string };
}


const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;
const OP_TIMEOUT_MS = 8000;

/** Destinations for one agent's address: echo, one that closes right after accepting, a refused port. */
async function startDestinations(host: string) {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("error", () => {});
    s.once("close", () => sockets.delete(s));
  };
  const listen = async (handler: (s: net.Socket) => void) => {
    const server = net.createServer((s) => {
      track(s);
      handler(s);
    });
    await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
    return server;
  };
  const echo = await listen((s) => s.pipe(s));
  const closer = await listen((s) => s.end("bye"));
  const probe = await listen(() => {});
  const refusedPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const port = (s: net.Server) => (s.address() as net.AddressInfo).port;
  return {
    echo: `${host}:${port(echo)}`,
    closer: `${host}:${port(closer)}`,
    refused: `${host}:${refusedPort}`,
    get open() {
      return sockets.size;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([echo, closer].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}

/** CONNECT and read the response head. */
async function connect(port: number, address: string, signal: AbortSignal): Promise<{ socket: net.Socket; head: string; rest: Buffer }> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  const onAbort = () => socket.destroy(new Error("operation timed out"));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("close", () => reject(new Error("closed before connect")));
    });
    socket.write(`CONNECT ${address} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    let buf = Buffer.alloc(0);
    while (!buf.includes("\r\n\r\n")) {
      const chunk = await new Promise<Buffer | null>((resolve) => {
        const onData = (c: Buffer) => done(c);
        const onEnd = () => done(null);
        const done = (v: Buffer | null) => {
          socket.off("data", onData);
          socket.off("close", onEnd);
          socket.off("end", onEnd);
          socket.pause();
          resolve(v);
        };
        socket.on("data", onData);
        socket.once("close", onEnd);
        socket.once("end", onEnd);
        socket.resume();
      });
      if (chunk === null) break;
      buf = Buffer.concat([buf, chunk]);
    }
    const i = buf.indexOf("\r\n\r\n");
    const end = i >= 0 ? i + 4 : buf.length;
    return { socket, head: buf.subarray(0, end).toString("latin1"), rest: buf.subarray(end) };
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** Everything until the peer closes (bounded by the signal). */
async function readAll(socket: net.Socket, first: Buffer, signal: AbortSignal): Promise<Buffer> {
  const chunks = [first];
  await new Promise<void>((resolve) => {
    if (socket.destroyed) return resolve();
    const onAbort = () => {
      socket.destroy();
      resolve();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.once("close", () => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
    socket.resume();
  });
  return Buffer.concat(chunks);
}

/** Writes `payload`, reads it back, closes. */
async function echoOver(stream: Duplex, payload: Buffer, first: Buffer, signal: AbortSignal): Promise<void> {
  const chunks: Buffer[] = [first];
  let got = first.length;
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(new Error("echo timed out"));
    signal.addEventListener("abort", onAbort, { once: true });
    const finish = (err?: Error) => {
      signal.removeEventListener("abort", onAbort);
      stream.off("data", onData);
      if (err) reject(err);
      else resolve();
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= payload.length) finish();
    };
    if (got >= payload.length) return finish();
    stream.on("data", onData);
    stream.resume();
    stream.once("close", () => finish(got >= payload.length ? undefined : new Error(`closed after ${got} of ${payload.length} echoed bytes`)));
    stream.write(payload);
  });
  const echoed = Buffer.concat(chunks);
  if (!echoed.subarray(0, payload.length).equals(payload)) throw new Error("echoed bytes differ");
  stream.destroy();
}

export async function runSoak(input: Partial<SoakOptions> = {}): Promise<SoakReport> {
  const o: SoakOptions = { ...defaultSoakOptions, ...input };
  const random = seeded(o.seed);
  const progress = o.onProgress ?? (() => {});
  const handlesBefore = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
  const log = pino({ level: "silent" });
  const dir = mkdtempSync(join(os.tmpdir(), "nt-soak-"));
  const pki = await createPki();
  const server = await NodetunnelServer.start(
    resolveServerOptions({
      serverId: "soak-server",
      proxyStrategies: ["destHost"],
      frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }, { mode: "grpc", listen: { path: join(dir, "grpc.sock") } }],
      agentListen: { port: 0, host: "127.0.0.1" },
      agentTls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca },
      dialTimeoutMs: 3000,
      closeTimeoutMs: 2000,
    }),
    { log, registry: new Registry() },
  );
  const connectPort = server.addresses.frontends[0]!.port!;
  const grpcPath = join(dir, "grpc.sock");

  const hosts = Array.from({ length: o.agents }, (_, i) => `127.0.10.${i + 1}`);
  const dests = await Promise.all(hosts.map((h) => startDestinations(h)));
  const agents: Array<NodetunnelAgent | undefined> = [];
  const startAgent = async (i: number) => {
    agents[i] = await NodetunnelAgent.start(
      resolveAgentOptions({
        agentId: `soak-node-${i + 1}`, identifiers: `ipv4=${hosts[i]}`, proxyServerHost: "127.0.0.1", proxyServerPort: server.addresses.agentPort,
        tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] },
        syncIntervalMs: 100, syncIntervalCapMs: 500, drainTimeoutMs: 1000, dialTimeoutMs: 2000,
      }),
      { log, registry: new Registry() },
    );
    await agents[i]!.waitForServers(1, 5000);
  };
  for (let i = 0; i < o.agents; i++) await startAgent(i);

  const kinds: OpKind[] = ["echo", "grpc-echo", "refused", "early-close", "cancel-mid-dial"];
  const byKind = Object.fromEntries(kinds.map((k) => [k, { ok: 0, "expected-failure": 0, unexpected: 0 }])) as SoakReport["byKind"];
  const unexpected: string[] = [];
  const restarts = { drained: 0, killed: 0 };
  let ops = 0;
  let bytesEchoed = 0;
  const started = Date.now();
  const deadline = started + o.durationMs;
  const isRunning = () => Date.now() < deadline && ops < o.maxOps;

  // A failure is expected when the dial was refused by the destination or its agent was away
  // (restarting): the frontend must then get a clear error, never a hang or wrong bytes.
  const expectedError = /^HTTP\/1\.1 (500|502|503|504) /;
  const runOp = async (kind: OpKind, agentIndex: number): Promise<Outcome> => {
    const d = dests[agentIndex]!;
    const signal = AbortSignal.timeout(OP_TIMEOUT_MS);
    switch (kind) {
      case "echo": {
        const { socket, head, rest } = await connect(connectPort, d.echo, signal);
        if (!head.startsWith("HTTP/1.1 200 ")) {
          socket.destroy();
          if (expectedError.test(head)) return "expected-failure";
          throw new Error(`echo: ${JSON.stringify(head)}`);
        }
        const payload = Buffer.alloc(1 + Math.floor(random() * 64 * 1024), Math.floor(random() * 256));
        try {
          await echoOver(socket, payload, rest, signal);
        } catch (err) {
          socket.destroy();
          // The agent went away mid-transfer (restarted): the socket is closed, which is the clear error.
          if ((err as Error).message.startsWith("closed after")) return "expected-failure";
          throw err;
        }
        bytesEchoed += payload.length;
        return "ok";
      }
      case "grpc-echo": {
        let stream;
        try {
          stream = await dialThroughProxy({ path: grpcPath }, d.echo, { timeoutMs: OP_TIMEOUT_MS });
        } catch (err) {
          // A dial error from the server or agent (refused, no agent, agent draining or gone) is the
          // clear error a caller should get; a backstop timeout or a broken stream is not.
          if (err instanceof TunnelError && err.code === "DIAL_FAILED" && !/^stream ended before DIAL_RSP/.test(err.message)) return "expected-failure";
          throw err;
        }
        const payload = Buffer.alloc(1 + Math.floor(random() * 32 * 1024), Math.floor(random() * 256));
        try {
          await echoOver(stream, payload, Buffer.alloc(0), signal);
        } catch (err) {
          stream.destroy();
          if ((err as Error).message.startsWith("closed after")) return "expected-failure";
          throw err;
        }
        bytesEchoed += payload.length;
        return "ok";
      }
      case "refused": {
        const { socket, head } = await connect(connectPort, d.refused, signal);
        socket.destroy();
        if (/^HTTP\/1\.1 502 /.test(head)) return "expected-failure";
        if (expectedError.test(head)) return "expected-failure";
        throw new Error(`refused destination answered ${JSON.stringify(head)}`);
      }
      case "early-close": {
        const { socket, head, rest } = await connect(connectPort, d.closer, signal);
        if (!head.startsWith("HTTP/1.1 200 ")) {
          socket.destroy();
          if (expectedError.test(head)) return "expected-failure";
          throw new Error(`early-close: ${JSON.stringify(head)}`);
        }
        const body = await readAll(socket, rest, signal);
        if (signal.aborted) throw new Error("early-close: the closed destination was not closed through the tunnel");
        return body.toString() === "bye" ? "ok" : "expected-failure";
      }
      case "cancel-mid-dial": {
        const socket = net.connect(connectPort, "127.0.0.1");
        socket.on("error", () => {});
        await new Promise<void>((resolve) => {
          socket.once("connect", () => resolve());
          socket.once("close", () => resolve());
        });
        socket.write(`CONNECT ${d.echo} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
        const waitMs = Math.floor(random() * 3);
        if (waitMs > 0) await sleep(waitMs);
        socket.destroy();
        return "ok";
      }
    }
  };

  const worker = async () => {
    while (isRunning()) {
      const r = random();
      const kind: OpKind = o.only ?? (r < 0.45 ? "echo" : r < 0.6 ? "grpc-echo" : r < 0.72 ? "refused" : r < 0.86 ? "early-close" : "cancel-mid-dial");
      const agentIndex = Math.floor(random() * o.agents);
      ops++;
      try {
        byKind[kind][await runOp(kind, agentIndex)]++;
      } catch (err) {
        byKind[kind].unexpected++;
        if (unexpected.length < 50) unexpected.push(`${kind} via soak-node-${agentIndex + 1}: ${(err as Error).message}`);
      }
    }
  };

  const chaos = async () => {
    if (o.restartEveryMs <= 0) return;
    while (isRunning()) {
      await sleep(o.restartEveryMs * (0.5 + random()));
      if (!isRunning()) break;
      const i = Math.floor(random() * o.agents);
      const agent = agents[i];
      if (!agent) continue;
      agents[i] = undefined;
      if (random() < 0.5) {
        restarts.drained++;
        await agent.drain();
      } else {
        restarts.killed++;
        agent.destroy();
      }
      await sleep(50 + random() * 300);
      await startAgent(i);
    }
  };

  // Memory: sampled every 250 ms; "start" is after a short warm-up, when the pools are built.
  const rss = () => process.memoryUsage().rss / MiB;
  let rssStart = 0;
  let rssPeak = 0;
  let heapStart = 0;
  const warmupMs = Math.min(5000, o.durationMs / 6);
  const sampler = setInterval(() => {
    const now = rss();
    rssPeak = Math.max(rssPeak, now);
    if (rssStart === 0 && Date.now() - started >= warmupMs) {
      rssStart = now;
      // Collected like the end sample, so both count what is held, not garbage not yet collected.
      collectGarbage();
      heapStart = process.memoryUsage().heapUsed / MiB;
    }
  }, 250);
  const reporter = setInterval(() => {
    const s = Math.round((Date.now() - started) / 1000);
    progress(`${s}s ops=${ops} rss=${rss().toFixed(0)}MiB established=${server.proxy.establishedCount} pending=${server.proxy.pendingDialCount} unexpected=${unexpected.length}`);
  }, 10_000);

  try {
    await Promise.all([...Array.from({ length: o.concurrency }, worker), chaos()]);
  } finally {
    clearInterval(reporter);
  }

  // Settle: every table must drain to zero on its own.
  const settleUntil = Date.now() + 10_000;
  const live = () => agents.filter((a): a is NodetunnelAgent => a !== undefined);
  const agentConnections = () => live().reduce((n, a) => n + a.status().servers.reduce((m, s) => m + s.connections, 0), 0);
  const destinationSockets = () => dests.reduce((n, d) => n + d.open, 0);
  while (Date.now() < settleUntil && (server.proxy.pendingDialCount > 0 || server.proxy.establishedCount > 0 || agentConnections() > 0 || destinationSockets() > 0)) {
    await sleep(50);
  }
  const leaksSeen = {
    serverPendingDials: server.proxy.pendingDialCount,
    serverEstablished: server.proxy.establishedCount,
    agentConnections: agentConnections(),
    destinationSockets: destinationSockets(),
  };
  collectGarbage();
  await sleep(300);
  clearInterval(sampler);
  const rssEnd = rss();
  const heapEnd = process.memoryUsage().heapUsed / MiB;
  if (rssStart === 0) rssStart = rssEnd;

  for (const a of live()) a.destroy();
  server.destroy();
  await Promise.all(dests.map((d) => d.close()));
  rmSync(dir, { recursive: true, force: true });
  // Handles close asynchronously: give them a moment, bounded.
  let handlesAfter = Infinity;
  for (let i = 0; i < 40 && handlesAfter > handlesBefore; i++) {
    await sleep(50);
    handlesAfter = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
  }

  const cpus = os.cpus();
  return {
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    ops,
    byKind,
    unexpected,
    agentRestarts: restarts,
    bytesEchoed,
    rssMiB: { start: round(rssStart), peak: round(rssPeak), end: round(rssEnd) },
    heapUsedMiB: { start: round(heapStart), end: round(heapEnd) },
    leaks: { ...leaksSeen, handlesBefore, handlesAfter },
    machine: { cpus: cpus.length, cpuModel: cpus[0]?.model ?? "unknown", memoryGiB: round(os.totalmem() / 1024 ** 3), node: process.version },
  };
}

const round = (n: number) => Math.round(n * 10) / 10;

/** A full GC before the end sample, so "end" is what is really held (--expose-gc, or enabled here). */
function collectGarbage(): void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    v8.setFlagsFromString("--expose-gc");
    gc = vm.runInNewContext("gc") as () => void;
  }
  gc();
}

export function formatSoakReport(r: SoakReport): string {
  const lines = [
    `soak ${r.startedAt}: ${r.ops} operations in ${(r.durationMs / 1000).toFixed(0)} s on ${r.machine.cpus}× ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}`,
    ...Object.entries(r.byKind).map(([k, v]) => `  ${k.padEnd(16)} ok ${v.ok}  expected failure ${v["expected-failure"]}  unexpected ${v.unexpected}`),
    `  agent restarts: ${r.agentRestarts.drained} drained, ${r.agentRestarts.killed} killed; ${(r.bytesEchoed / MiB).toFixed(1)} MiB echoed`,
    `  RSS MiB: start ${r.rssMiB.start}, peak ${r.rssMiB.peak}, end ${r.rssMiB.end}; heap used MiB: start ${r.heapUsedMiB.start}, end ${r.heapUsedMiB.end}`,
    `  left over: ${r.leaks.serverPendingDials} pending dials, ${r.leaks.serverEstablished} established, ${r.leaks.agentConnections} agent connections, ${r.leaks.destinationSockets} destination sockets; handles ${r.leaks.handlesBefore} before, ${r.leaks.handlesAfter} after`,
  ];
  for (const u of r.unexpected.slice(0, 10)) lines.push(`  unexpected: ${u}`);
  return lines.join("\n");
}

/** Nothing leaked and nothing unexpected happened. */
export function soakPassed(r: SoakReport): boolean {
  const l = r.leaks;
  return r.unexpected.length === 0 && l.serverPendingDials === 0 && l.serverEstablished === 0 && l.agentConnections === 0 && l.destinationSockets === 0 && l.handlesAfter <= l.handlesBefore;
}

function parseArgs(argv: string[]): { options: Partial<SoakOptions>; json?: string } {
  const options: { -readonly [K in keyof SoakOptions]?: SoakOptions[K] } = {};
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || !Number.isFinite(Number(v)) || Number(v) < 0) throw new Error(`${flag} needs a non-negative number`);
      return Number(v);
    };
    switch (flag) {
      case "--minutes": options.durationMs = value() * 60_000; break;
      case "--seconds": options.durationMs = value() * 1000; break;
      case "--concurrency": options.concurrency = Math.max(1, Math.floor(value())); break;
      case "--max-ops": options.maxOps = Math.floor(value()); break;
      case "--agents": options.agents = Math.min(200, Math.max(1, Math.floor(value()))); break;
      case "--seed": options.seed = Math.floor(value()); break;
      case "--restart-every-ms": options.restartEveryMs = value(); break;
      case "--only": options.only = (inline ?? argv[++i]) as OpKind; break;
      case "--json": json = inline ?? argv[++i]; break;
      default: throw new Error(`unknown flag ${flag} (known: --minutes, --seconds, --concurrency, --max-ops, --agents, --seed, --restart-every-ms, --json)`);
    }
  }
  return { options, json };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { options, json } = parseArgs(process.argv.slice(2));
  const report = await runSoak({ ...options, onProgress: (l) => console.error(l) });
  console.log(formatSoakReport(report));
  if (json) writeFileSync(json, JSON.stringify(report, null, 2) + "\n");
  process.exitCode = soakPassed(report) ? 0 : 1;
}
