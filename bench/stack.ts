// The processes a benchmark run starts: destinations, the plain relay, and nodetunnel's server and
// agent as separate `node bin/nodetunnel.js` processes with the agent link over mTLS gRPC (as
// upstream's Go binaries each run as their own process). Each is stopped by its PID.
// The V8 flags `nodetunnel` runs with (its #! line and the image): the bench measures the product as shipped.
import { nodeFlags } from "../bin/dist.js";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createPki, type Pki } from "../src/transport/index.js";
import type { DestinationPorts } from "./destination-protocol.js";

const repoRoot = resolve(import.meta.dirname, "..");
const startTimeoutMs = 30_000;
const stopTimeoutMs = 5_000;

export interface Child {
  readonly name: string;
  readonly pid: number;
  /** The last lines it wrote on stderr, for error messages. */
  stderrTail(): string;
  stop(): Promise<void>;
}

interface SpawnOptions {
  readonly name: string;
  readonly args: readonly string[];
  /** Returns a value once the child has said it is ready (a line of stdout or stderr). */
  readonly ready: (line: string, stream: "stdout" | "stderr") => unknown;
}

async function spawnChild<T>(o: SpawnOptions): Promise<{ child: Child; value: T }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("NODETUNNEL_")));
  const proc: ChildProcess = spawn(process.execPath, o.args, { cwd: repoRoot, env, stdio: ["pipe", "pipe", "pipe"] });
  const tail: string[] = [];
  let exited = proc.exitCode !== null;
  const exitedPromise = new Promise<void>((r) => proc.once("exit", () => {
    exited = true;
    r();
  }));
  const child: Child = {
    name: o.name,
    pid: proc.pid ?? -1,
    stderrTail: () => tail.join("\n"),
    async stop() {
      if (exited) return;
      proc.stdin?.end();
      proc.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (!exited) proc.kill("SIGKILL");
      }, stopTimeoutMs);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
  const value = await new Promise<T>((resolvePromise, reject) => {
    let done = false;
    const timer = setTimeout(() => finish(new Error(`${o.name} did not start within ${startTimeoutMs} ms: ${child.stderrTail()}`)), startTimeoutMs);
    const finish = (err: Error | null, v?: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolvePromise(v as T);
    };
    const watch = (stream: NodeJS.ReadableStream | null, which: "stdout" | "stderr") => {
      let partial = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (text: string) => {
        partial += text;
        let i: number;
        while ((i = partial.indexOf("\n")) >= 0) {
          const line = partial.slice(0, i);
          partial = partial.slice(i + 1);
          if (which === "stderr") {
            tail.push(line);
            if (tail.length > 20) tail.shift();
          }
          if (!done) {
            const v = o.ready(line, which);
            if (v !== undefined) finish(null, v);
          }
        }
      });
    };
    watch(proc.stdout, "stdout");
    watch(proc.stderr, "stderr");
    proc.once("error", (err) => finish(err));
    proc.once("exit", (code, signal) => finish(new Error(`${o.name} exited (${code ?? signal}) before it was ready: ${child.stderrTail()}`)));
  }).catch(async (err: unknown) => {
    await child.stop();
    throw err;
  });
  return { child, value };
}

const jsonLine = (line: string, stream: string): unknown => {
  if (stream !== "stdout" || !line.startsWith("{")) return undefined;
  return JSON.parse(line) as unknown;
};

const logLine = (msg: string) => (line: string, stream: string): unknown => {
  if (stream !== "stderr" || !line.startsWith("{")) return undefined;
  const entry = JSON.parse(line) as { msg?: string };
  return entry.msg === msg ? entry : undefined;
};

export interface Stack {
  readonly dir: string;
  readonly destinations: DestinationPorts;
  /** Destination port → the relay's port for it. */
  readonly relayPorts: Readonly<Record<number, number>>;
  readonly httpConnectPath: string;
  readonly grpcPath: string;
  /** The server's admin port (/metrics). */
  readonly serverAdminPort: number;
  readonly children: { readonly destinations: Child; readonly relay: Child; readonly server: Child; readonly agent: Child };
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Directory for `--cpu-prof` output of the server and agent; no profiling when absent. */
  readonly profileDir?: string;
  /** Both run with `--credit-flow-control=false`, as against upstream peers. */
  readonly noCredit?: boolean;
  /**
   * Both started as `node bin/nodetunnel.js`, without the #! line's V8 flags, as a harness that runs
   * node itself starts them: the entry then sets only the flags V8 takes at run time (bin/dist.js).
   */
  readonly plainNode?: boolean;
}

/** Starts everything; on failure stops what it had started and rethrows. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const started: Child[] = [];
  const dir = mkdtempSync(join(tmpdir(), "nt-bench-"));
  const stop = async () => {
    for (const c of started.reverse()) await c.stop().catch(() => undefined);
    started.length = 0;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const tsx = ["--import", "tsx"];
    const dest = await spawnChild<DestinationPorts>({ name: "destinations", args: [...tsx, "bench/destinations.ts"], ready: jsonLine });
    started.push(dest.child);
    const ports = dest.value;
    const relay = await spawnChild<Record<number, number>>({
      name: "relay", args: [...tsx, "bench/relay.ts", ...Object.values(ports).map(String)], ready: jsonLine,
    });
    started.push(relay.child);

    const pki = await createPki();
    const credit = options.noCredit ? ["--credit-flow-control=false"] : [];
    const v8Flags = options.plainNode ? [] : nodeFlags;
    const server = await startServerProcess(dir, pki, options.profileDir, credit, v8Flags);
    started.push(server.child);
    const { ca, httpConnectPath, grpcPath } = server;
    const file = (name: string, text: string) => writeSecret(dir, name, text);
    const prof = options.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${options.profileDir}`] : [];
    const agent = await spawnChild<unknown>({
      name: "agent",
      args: [
        ...prof, ...v8Flags, "bin/nodetunnel.js", "agent", "--proxy-server-host=127.0.0.1", `--proxy-server-port=${server.agentPort}`,
        `--ca-cert=${ca}`, `--agent-cert=${file("agent.crt", pki.client.cert)}`, `--agent-key=${file("agent.key", pki.client.key)}`,
        "--health-server-host=127.0.0.1", "--health-server-port=0", "--admin-bind-address=127.0.0.1", "--admin-server-port=0",
        "--agent-id=bench-node", "--agent-identifiers=ipv4=127.0.0.1", "--drain-timeout=1s", "--log-level=info", ...credit,
      ],
      ready: logLine("connected to server"),
    });
    started.push(agent.child);
    return {
      dir,
      destinations: ports,
      relayPorts: relay.value,
      httpConnectPath,
      grpcPath,
      serverAdminPort: server.adminPort,
      children: { destinations: dest.child, relay: relay.child, server: server.child, agent: agent.child },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Writes a key or certificate for a child to read (mode 0600). */
function writeSecret(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

export interface ServerProcess {
  readonly child: Child;
  readonly agentPort: number;
  readonly adminPort: number;
  readonly httpConnectPath: string;
  readonly grpcPath: string;
  /** The CA file agents trust (it also signed the client certificate in `pki`). */
  readonly ca: string;
}

/**
 * `nodetunnel server` as shipped (dist/, the #! line's V8 flags): both frontends on Unix sockets in
 * `dir`, the agent port on 127.0.0.1 with mTLS against `pki`'s CA, strategy `default`.
 */
export async function startServerProcess(dir: string, pki: Pki, profileDir?: string, extraArgs: readonly string[] = [], v8Flags: readonly string[] = nodeFlags): Promise<ServerProcess> {
  const file = (name: string, text: string) => writeSecret(dir, name, text);
  const ca = file("ca.crt", pki.ca);
  const httpConnectPath = join(dir, "http-connect.sock");
  const grpcPath = join(dir, "grpc.sock");
  const prof = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  const server = await spawnChild<{ agentPort: number; adminPort: number }>({
    name: "server",
    args: [
      ...prof, ...v8Flags, "bin/nodetunnel.js", "server", "--server-port=0",
      `--frontend=http-connect=unix:${httpConnectPath}`, `--frontend=grpc=unix:${grpcPath}`,
      "--agent-port=0", "--agent-bind-address=127.0.0.1",
      `--cluster-cert=${file("server.crt", pki.server.cert)}`, `--cluster-key=${file("server.key", pki.server.key)}`, `--cluster-ca-cert=${ca}`,
      "--health-port=0", "--health-bind-address=127.0.0.1", "--admin-port=0", "--admin-bind-address=127.0.0.1",
      "--proxy-strategies=default", "--log-level=info", ...extraArgs,
    ],
    ready: logLine("server started"),
  });
  return { child: server.child, agentPort: server.value.agentPort, adminPort: server.value.adminPort, httpConnectPath, grpcPath, ca };
}

/** One sample of a server's /metrics on its admin port (a gauge or counter without labels). */
export async function serverMetric(adminPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const m = new RegExp(`^${name} ([0-9.e+-]+)`, "m").exec(text);
  if (!m) throw new Error(`the server's /metrics has no ${name}`);
  return Number(m[1]);
}

/** Resident set size of a process in MiB (VmRSS in /proc/<pid>/status), or NaN when it is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** This process's soft limit on open files (children inherit it). */
export function openFileLimit(): number {
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync("/proc/self/limits", "utf8"));
    return !m || m[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return 1024;
  }
}

/** CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat; NaN when it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond;
  } catch {
    return Number.NaN;
  }
}

const clockTicksPerSecond = 100; // USER_HZ on Linux (getconf CLK_TCK)
