// `npm run bench:go-client [-- --seconds=3 --rounds=3 --rows=up1,down1,echo,http,slow --ways=direct,connect,grpc
// --no-credit --read-mbps=10 --profile=DIR --write]`: issue 3's
// single-connection, echo and GET rows with a Go client instead of the bench's Node client, on
// the same stack (bench/stack.ts: destinations, server and agent as separate processes). Issue 3's
// upstream anchor was measured with a Go client, whose own cost on the two shared cores is a
// fraction of a Node process's; this shows what nodetunnel's server and agent do when the client
// is that lean. Needs Go and Debian's grpc-go (test/go-peer/build-peer.ts says what is missing).
// The slow row (not run unless asked for) reads the source at a steady --read-mbps: with
// --no-credit (server and agent as against upstream peers) it shows whether a grpc-go client's
// window credit lets the tunnel see a slow reader's progress, or the reader is closed as stalled.
// Prints a table and, with --write, writes bench/results/<date>-<machine>-go-client.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildGoPeer, goPeerMissing } from "../test/go-peer/build-peer.js";
import { describeMachine, shortMachineName } from "./machine.js";
import { cpuMs, openFileLimit, startStack } from "./stack.js";

type Row = "up1" | "down1" | "echo" | "http" | "slow";
type Way = "direct" | "connect" | "grpc";
const allRows: readonly Row[] = ["up1", "down1", "echo", "http", "slow"];
const defaultRows: readonly Row[] = ["up1", "down1", "echo", "http"];
const ways: readonly Way[] = ["direct", "connect", "grpc"];
const wayNames: Record<Way, string> = { direct: "direct", connect: "http-connect", grpc: "grpc" };
const destinationOf: Record<Row, "sink" | "source" | "echo" | "http"> = { up1: "sink", down1: "source", echo: "echo", http: "http", slow: "source" };

function parseArgs(argv: readonly string[]) {
  const out: { seconds: number; rounds: number; rows: Row[]; write: boolean; ways: Way[]; noCredit: boolean; readMBps: number; profileDir?: string } = {
    seconds: 3, rounds: 3, rows: [...defaultRows], write: false, ways: [...ways], noCredit: false, readMBps: 10,
  };
  for (const arg of argv) {
    const [name, value = ""] = arg.split("=", 2) as [string, string | undefined];
    if (name === "--seconds") out.seconds = Number(value);
    else if (name === "--rounds") out.rounds = Number(value);
    else if (name === "--write") out.write = true;
    else if (name === "--no-credit") out.noCredit = true;
    else if (name === "--read-mbps") out.readMBps = Number(value);
    else if (name === "--profile") out.profileDir = resolve(value || "bench/profiles");
    else if (name === "--ways") {
      out.ways = value.split(",").filter(Boolean) as Way[];
      for (const w of out.ways) if (!ways.includes(w)) throw new Error(`--ways: unknown way "${w}" (known: ${ways.join(", ")})`);
    }
    else if (name === "--rows") {
      out.rows = value.split(",").filter(Boolean) as Row[];
      for (const r of out.rows) if (!allRows.includes(r)) throw new Error(`--rows: unknown row "${r}" (known: ${allRows.join(", ")})`);
    } else throw new Error(`unknown argument "${arg}"`);
  }
  if (!(out.seconds >= 1 && out.seconds <= 60)) throw new Error("--seconds: 1 to 60");
  if (!(out.readMBps > 0 && out.readMBps <= 1000)) throw new Error("--read-mbps: above 0, at most 1000");
  if (!(Number.isInteger(out.rounds) && out.rounds >= 1 && out.rounds <= 9)) throw new Error("--rounds: 1 to 9");
  return out;
}

function runPeer(peer: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    execFile(peer, args, { encoding: "utf8", timeout: timeoutMs, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`go-peer ${args.join(" ")}: ${stdout}${stderr}`));
      resolvePromise(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const missing = goPeerMissing();
  if (missing) throw new Error(`bench:go-client ${missing}`);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const buildDir = mkdtempSync(join(tmpdir(), "nt-go-client-"));
  const peer = join(buildDir, "go-peer");
  const stack = await startStack({ profileDir: args.profileDir, noCredit: args.noCredit });
  const pids = { server: stack.children.server.pid, agent: stack.children.agent.pid };
  try {
    log("building the Go client (test/go-peer)...");
    await buildGoPeer(peer);
    // One value per row, way and round, and the server's and agent's CPU over each measurement.
    const results: Record<string, Record<string, Array<Record<string, unknown>>>> = {};
    for (let round = 1; round <= args.rounds; round++) {
      for (const row of args.rows) {
        for (const way of args.ways) {
          const destination = `127.0.0.1:${stack.destinations[destinationOf[row]]}`;
          const proxy = way === "grpc" ? stack.grpcPath : stack.httpConnectPath;
          const cpu0 = { server: cpuMs(pids.server), agent: cpuMs(pids.agent) };
          const r = await runPeer(peer, ["load", row, way, proxy, destination, String(args.seconds), "16"], (args.seconds + 30) * 1000, { GO_PEER_READ_MBPS: String(args.readMBps) });
          const cpu = { serverMs: cpuMs(pids.server) - cpu0.server, agentMs: cpuMs(pids.agent) - cpu0.agent };
          log(`round ${round} ${row} ${wayNames[way]}: ${JSON.stringify({ ...r, ...cpu })}`);
          ((results[row] ??= {})[way] ??= []).push({ ...r, ...cpu });
          await new Promise((r2) => setTimeout(r2, 300));
        }
      }
    }
    const lines: string[] = [];
    const cell = (row: Row, way: Way): string => {
      const rs = results[row]?.[way] ?? [];
      const errors = rs.reduce((n, r) => n + Number(r.errors ?? 0) + (r.error ? 1 : 0), 0);
      const note = errors > 0 ? ` (${errors} errors)` : "";
      if (row === "up1" || row === "down1") return `${median(rs.map((r) => Number(r.mbps))).toFixed(0)} MB/s${note}`;
      if (row === "slow") return errors > 0 ? `closed after ${median(rs.map((r) => Number(r.seconds ?? Number.NaN))).toFixed(1)} s${note}: ${String(rs.find((r) => r.error)?.error)}` : `${median(rs.map((r) => Number(r.mbps))).toFixed(1)} MB/s, never closed`;
      if (row === "echo") return `${median(rs.map((r) => Number(r.p50))).toFixed(2)} / ${median(rs.map((r) => Number(r.p99))).toFixed(2)} ms${note}`;
      const rps = median(rs.map((r) => Number(r.rps)));
      const serverPerRequest = median(rs.map((r) => Number(r.serverMs) / Number(r.completed)));
      return `${rps.toFixed(0)} req/s${way === "direct" ? "" : `, server ${serverPerRequest.toFixed(2)} ms/req`}${note}`;
    };
    const titles: Record<Row, string> = {
      up1: "one connection, frontend→destination", down1: "one connection, destination→frontend",
      echo: "fresh connection + 1-byte echo, p50 / p99", http: "HTTP GET, new tunnel per request, 16 at once",
      slow: `one connection read at ${args.readMBps} MB/s${args.noCredit ? " (no credit)" : ""}`,
    };
    lines.push(`test | ${args.ways.map((w) => wayNames[w]).join(" | ")}`);
    for (const row of args.rows) lines.push(`${titles[row]} | ${args.ways.map((w) => cell(row, w)).join(" | ")}`);
    const machine = describeMachine(openFileLimit());
    console.log(`\n${machine.cpuModel}, ${machine.cores} cores; Go client; medians of ${args.rounds} rounds, ${args.seconds} s each${args.noCredit ? "; server and agent without credit" : ""}\n`);
    console.log(lines.join("\n"));
    if (args.write) {
      const dir = resolve(import.meta.dirname, "results");
      mkdirSync(dir, { recursive: true });
      const date = new Date().toISOString();
      const file = join(dir, `${date.replace(/:\d\d\.\d+Z$/, "").replace(/:/g, "")}-${shortMachineName(machine)}-go-client.json`);
      writeFileSync(file, `${JSON.stringify({ date, machine, seconds: args.seconds, rounds: args.rounds, creditFlowControl: !args.noCredit, readMBps: args.readMBps, results }, null, 2)}\n`);
      console.log(`\nwritten: ${file}`);
    }
  } finally {
    await stack.stop();
    rmSync(buildDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
