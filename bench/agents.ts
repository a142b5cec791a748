// `npm run bench:agents [-- --agents=N] [--at-once=C] [--quick] [--profile=DIR] [--no-write]`: what a server costs
// per connected node. Starts `nodetunnel server` as shipped, then connects N agents at once from
// this process (each its own TLS connection with a client certificate and its own
// /AgentService/Connect stream, as N DaemonSet pods after a server restart), and measures how long
// the reconnect storm takes, the server's CPU per agent, and its RSS before, while holding them and
// after they are gone (each read after a quiet period, as the idle row of `npm run bench`).
// Writes bench/results/<date>-<machine>-agents.json (docs/benchmarks.md, "Agents per server").
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { resolveAgentOptions } from "../src/agent/agent-options.js";
import { connectToServer, type ServerConnection } from "../src/agent/server-connection.js";
import { createPki } from "../src/transport/index.js";
import { codeVersion, describeMachine, shortMachineName } from "./machine.js";
import { cpuMs, serverMetric as metric, openFileLimit, rssMiB, startServerProcess } from "./stack.js";

interface Args {
  readonly agents: number;
  readonly atOnce: number;
  readonly quietMs: number;
  readonly write: boolean;
  readonly profileDir?: string;
}

function parseArgs(argv: readonly string[]): Args {
  let agents: number | undefined;
  let atOnce: number | undefined;
  let quick = false;
  let write = true;
  let profileDir: string | undefined;
  for (const arg of argv) {
    const [name, value = ""] = arg.split("=", 2) as [string, string?];
    const count = () => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: expected a positive integer, not "${value}"`);
      return n;
    };
    if (name === "--agents") agents = count();
    else if (name === "--at-once") atOnce = count();
    else if (name === "--quick") quick = true;
    else if (name === "--no-write") write = false;
    else if (name === "--profile") profileDir = resolve(value || "bench/profiles");
    else throw new Error(`unknown argument "${arg}" (known: --agents=N --at-once=C --quick --profile=DIR --no-write)`);
  }
  const n = agents ?? (quick ? 300 : 2000);
  return { agents: n, atOnce: Math.min(atOnce ?? n, n), quietMs: quick ? 3000 : 30_000, write, profileDir };
}


/** The server's own count of connected agents. */
const readyBackends = (adminPort: number) => metric(adminPort, "konnectivity_network_proxy_server_ready_backend_connections");

interface MemoryReading {
  readonly rssMiB: number;
  /** V8's heap in use, and the memory of ArrayBuffers (Buffers) outside it. */
  readonly heapUsedMiB: number;
  readonly externalMiB: number;
}

async function readMemory(pid: number, adminPort: number): Promise<MemoryReading> {
  const MiB = 1048576;
  return {
    rssMiB: round1(rssMiB(pid)),
    heapUsedMiB: round1((await metric(adminPort, "nodejs_heap_size_used_bytes")) / MiB),
    externalMiB: round1((await metric(adminPort, "nodejs_external_memory_bytes")) / MiB),
  };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const round1 = (x: number) => Math.round(x * 10) / 10;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const limit = openFileLimit();
  // This process and the server each hold one socket per agent.
  if (args.agents + 512 > limit) throw new Error(`--agents=${args.agents} needs \`ulimit -n\` of at least ${args.agents + 512} (it is ${limit})`);
  const dir = mkdtempSync(join(tmpdir(), "nt-bench-agents-"));
  const pki = await createPki();
  const server = await startServerProcess(dir, pki, args.profileDir);
  const connections: ServerConnection[] = [];
  try {
    const pid = server.child.pid;
    log(`server pid ${pid}; ${args.quietMs / 1000} s of quiet before each reading`);
    await sleep(args.quietMs);
    const before = await readMemory(pid, server.adminPort);
    const options = (i: number) => resolveAgentOptions({
      agentId: `sim-node-${i}`,
      identifiers: `ipv4=10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      proxyServerHost: "127.0.0.1",
      proxyServerPort: server.agentPort,
      tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] },
      connectTimeoutMs: 120_000,
    });
    const target = { host: "127.0.0.1", port: server.agentPort };

    log(`connecting ${args.agents} agents, ${args.atOnce} at once…`);
    const connectMs: number[] = [];
    // A refused or reset attempt is retried after 1 s, as an agent retries (its --sync-interval);
    // the errors are counted and reported, and the connect time includes the retries.
    const retries = new Map<string, number>();
    const cpuStart = cpuMs(pid);
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < args.agents) {
        const i = next++;
        const t0 = performance.now();
        for (let attempt = 1; ; attempt++) {
          try {
            connections.push(await connectToServer(target, options(i)));
            break;
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            retries.set(message, (retries.get(message) ?? 0) + 1);
            if (attempt === 5) throw new Error(`agent ${i}: 5 attempts failed, the last with: ${message}`);
            await sleep(1000);
          }
        }
        connectMs.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: args.atOnce }, worker));
    const stormMs = performance.now() - started;
    await waitFor(`${args.agents} agents on the server`, async () => (await readyBackends(server.adminPort)) === args.agents, 30_000);
    const stormCpuMs = cpuMs(pid) - cpuStart;
    log(`connected in ${Math.round(stormMs)} ms; ${args.quietMs / 1000} s of quiet…`);
    await sleep(args.quietMs);
    const holding = await readMemory(pid, server.adminPort);

    for (const c of connections.splice(0)) c.close();
    await waitFor("the server to see every agent gone", async () => (await readyBackends(server.adminPort)) === 0, 30_000);
    log(`closed; ${args.quietMs / 1000} s of quiet…`);
    await sleep(args.quietMs);
    const after = await readMemory(pid, server.adminPort);

    connectMs.sort((a, b) => a - b);
    const result = {
      date: new Date().toISOString(),
      machine: describeMachine(limit),
      code: codeVersion(),
      agents: args.agents,
      atOnce: args.atOnce,
      quietMs: args.quietMs,
      storm: {
        wallMs: Math.round(stormMs),
        connectP50Ms: round1(percentile(connectMs, 50)),
        connectP99Ms: round1(percentile(connectMs, 99)),
        serverCpuMsPerAgent: Math.round((stormCpuMs / args.agents) * 100) / 100,
        retried: Object.fromEntries(retries),
      },
      server: { before, holding, after },
      serverKiBPerAgent: {
        rss: Math.round(((holding.rssMiB - before.rssMiB) * 1024) / args.agents),
        heapUsed: Math.round(((holding.heapUsedMiB - before.heapUsedMiB) * 1024) / args.agents),
        external: Math.round(((holding.externalMiB - before.externalMiB) * 1024) / args.agents),
      },
    };
    const m = result.machine;
    console.log(`\n${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, node ${m.node}; commit ${result.code.commit.slice(0, 12)}${result.code.dirty ? " (+ uncommitted changes)" : ""}`);
    console.log(`${args.agents} agents, ${args.atOnce} connecting at once (TLS with a client certificate + Connect stream each; the connecting side shares the cores)`);
    console.log(`  storm: all connected in ${result.storm.wallMs} ms; per agent p50 ${result.storm.connectP50Ms} ms, p99 ${result.storm.connectP99Ms} ms; server CPU ${result.storm.serverCpuMsPerAgent} ms per agent`);
    for (const [message, count] of retries) console.log(`  retried ${count}× after: ${message}`);
    const mem = (r: MemoryReading) => `${r.rssMiB} (heap ${r.heapUsedMiB}, external ${r.externalMiB})`;
    console.log(`  server MiB of RSS: ${mem(before)} before, ${mem(holding)} holding, ${mem(after)} after they left`);
    const per = result.serverKiBPerAgent;
    console.log(`  per agent: ${per.rss} KiB of RSS, of which ${per.heapUsed} KiB JavaScript heap and ${per.external} KiB Buffers; the rest is native (TLS, HTTP/2, sockets)`);
    if (args.write) {
      const out = resolve(import.meta.dirname, "results");
      mkdirSync(out, { recursive: true });
      const file = join(out, `${result.date.replace(/:\d\d\.\d+Z$/, "").replace(/:/g, "")}-${shortMachineName(m)}-agents.json`);
      writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      console.log(`written: ${file}`);
    }
  } finally {
    for (const c of connections) c.close();
    await server.child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench:agents: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
});
