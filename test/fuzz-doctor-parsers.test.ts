// Fuzzing every doctor parser (issue 6 item 5): iptables-save, iptables -L, ufw status, nft text
// and JSON, NSG JSON, ss/conntrack, load-balancer metrics, /proc/net/tcp, host:port, and explain.
// Inputs are the real fixtures under test/fixtures/doctor, mutated line- and byte-wise and spliced
// across formats. Each call must return a result or throw DoctorInputError — nothing else — and
// must finish quickly: each input is timed, and the whole run happens in a child process that a
// watchdog kills if it stops making progress (a synchronous parser loop cannot be interrupted
// in-process), naming the parser and the input's index for replay with the same FUZZ_SEED.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DoctorInputError } from "../src/doctor/input-error.js";
import { parseHostPort } from "../src/doctor/egress/index.js";
import { explainError } from "../src/doctor/explain/index.js";
import { parseIptables, parseIptablesList, parseIptablesSave } from "../src/doctor/iptables/index.js";
import { parseNftRuleset } from "../src/doctor/nftables/index.js";
import { parseProcNetTcp } from "../src/doctor/node/index.js";
import { parseNsg } from "../src/doctor/nsg/index.js";
import { parseConnections, parseSnatMetrics } from "../src/doctor/snat/index.js";
import { parseUfwStatus } from "../src/doctor/ufw/index.js";
import { fuzzIterations, fuzzSeed, mutateText, randInt, seededRandom } from "./fuzz-support.js";

const parsers: Record<string, { run: (text: string) => unknown; fixtures: RegExp }> = {
  "iptables (auto)": { run: parseIptables, fixtures: /iptables\// },
  "iptables-save": { run: parseIptablesSave, fixtures: /iptables\/.*(save|rules)/ },
  "iptables -L": { run: parseIptablesList, fixtures: /iptables\/.*list/ },
  "ufw status": { run: parseUfwStatus, fixtures: /ufw\// },
  "nft text": { run: parseNftRuleset, fixtures: /nftables\/.*\.(txt|nft)$/ },
  "nft JSON": { run: parseNftRuleset, fixtures: /nftables\/.*\.json$/ },
  "NSG JSON": { run: (t) => parseNsg(t, "fuzz.json"), fixtures: /nsg\// },
  "ss/conntrack": { run: parseConnections, fixtures: /(ss-tan|conntrack)/ },
  "LB metrics": { run: parseSnatMetrics, fixtures: /metrics.*\.json$/ },
  "/proc/net/tcp": { run: parseProcNetTcp, fixtures: /$^/ },
  // Returns undefined for what is not host:port, never throws.
  "host:port": { run: parseHostPort, fixtures: /$^/ },
  explain: { run: explainError, fixtures: /explain\// },
};

// The parsers that read JSON through src/doctor/json-input.ts (nft JSON has its own, for now).
const jsonParsers = new Set(["NSG JSON", "LB metrics"]);

const fixtureRoot = fileURLToPath(new URL("./fixtures/doctor/", import.meta.url));
const procNetTcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:2802 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:A2B4 01 00000000:00000000 00:00000000 00000000  1000        0 23456 1 0000000000000000 20 4 30 10 -1
`;

function corpus(): Array<{ path: string; text: string }> {
  const out: Array<{ path: string; text: string }> = [];
  (function walk(dir: string) {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (statSync(path).size < 512 * 1024 && !name.endsWith(".sh")) out.push({ path: path.slice(fixtureRoot.length), text: readFileSync(path, "utf8") });
    }
  })(fixtureRoot);
  // explain's corpus is a JSON list of messages: each message is its own seed.
  const explain = out.find((f) => f.path === "explain/corpus.json");
  if (explain) {
    for (const [i, entry] of (JSON.parse(explain.text) as Array<{ text: string }>).entries()) out.push({ path: `explain/message-${i}`, text: entry.text });
  }
  out.push({ path: "node/proc-net-tcp", text: procNetTcp }, { path: "egress/targets", text: "10.0.0.1:443\n[fd00::1]:10250\nexample.com:8132" });
  return out;
}

interface ChildReport { readonly parser: string; readonly calls: number; readonly results: number; readonly inputErrors: number; readonly maxMs: number }

/** The child's work: fuzz every parser; prints `progress` lines and one `report` line per parser. */
function fuzzInChild(): void {
  const files = corpus();
  const iterations = fuzzIterations(600);
  let index = 0;
  for (const [name, parser] of Object.entries(parsers)) {
    const rand = seededRandom(fuzzSeed + name.length * 7919);
    const own = files.filter((f) => parser.fixtures.test(f.path) || (name === "/proc/net/tcp" && f.path.startsWith("node/")) || (name === "host:port" && f.path.startsWith("egress/")));
    const report = { parser: name, calls: 0, results: 0, inputErrors: 0, maxMs: 0 };
    for (let i = 0; i < iterations; i++, index++) {
      const base = own.length > 0 && rand() < 0.85 ? own[randInt(rand, own.length)]! : files[randInt(rand, files.length)]!;
      const donor = files[randInt(rand, files.length)]!;
      const input = i < own.length ? own[i]!.text : mutateText(rand, base.text, donor.text);
      if (i % 50 === 0) process.stdout.write(`progress ${JSON.stringify({ parser: name, i, base: base.path })}\n`);
      const started = performance.now();
      try {
        parser.run(name === "host:port" ? input.split("\n")[randInt(rand, 3)] ?? "" : input);
        report.results++;
      } catch (err) {
        if (!(err instanceof DoctorInputError)) {
          process.stdout.write(`bad ${JSON.stringify({ parser: name, i, base: base.path, error: String(err), stack: (err as Error).stack?.split("\n").slice(0, 4).join(" | "), input: input.slice(0, 2000) })}\n`);
          process.exitCode = 1;
          return;
        }
        // doctor-cli.md: an input error names the line; JSON syntax errors too, whatever Node's message says.
        if (jsonParsers.has(name) && err.message.startsWith("not JSON: ") && !(err.line !== undefined && err.line >= 1 && err.line <= input.split("\n").length)) {
          process.stdout.write(`bad ${JSON.stringify({ parser: name, i, base: base.path, error: `JSON syntax error without a line in the input: line ${err.line}, ${err.message}`, input: input.slice(0, 2000) })}\n`);
          process.exitCode = 1;
          return;
        }
        report.inputErrors++;
      }
      const ms = performance.now() - started;
      report.calls++;
      report.maxMs = Math.max(report.maxMs, ms);
      if (ms > 2000) {
        process.stdout.write(`bad ${JSON.stringify({ parser: name, i, base: base.path, error: `took ${ms.toFixed(0)} ms`, input: input.slice(0, 2000) })}\n`);
        process.exitCode = 1;
        return;
      }
    }
    process.stdout.write(`report ${JSON.stringify(report)}\n`);
  }
}

if (process.env.NT_FUZZ_DOCTOR_CHILD === "1") {
  fuzzInChild();
} else {
  test(`every doctor parser returns a result or DoctorInputError, quickly, on mutated real inputs (seed ${fuzzSeed})`, async () => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url)], {
      env: { ...process.env, NT_FUZZ_DOCTOR_CHILD: "1" }, stdio: ["ignore", "pipe", "pipe"],
    });
    const reports: ChildReport[] = [];
    const bad: string[] = [];
    let last = "(nothing yet)";
    let lastProgressAt = Date.now();
    let stderr = "";
    let buffered = "";
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.stdout.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        lastProgressAt = Date.now();
        if (line.startsWith("progress ")) last = line.slice(9);
        else if (line.startsWith("report ")) reports.push(JSON.parse(line.slice(7)) as ChildReport);
        else if (line.startsWith("bad ")) bad.push(line.slice(4));
      }
    });
    const watchdog = setInterval(() => {
      if (Date.now() - lastProgressAt > 15_000) {
        bad.push(`no progress for 15 s (a hang?) after ${last}`);
        child.kill("SIGKILL");
      }
    }, 1000);
    const code = await new Promise<number | null>((r) => child.on("close", r));
    clearInterval(watchdog);
    assert.deepEqual(bad, [], `replay with FUZZ_SEED=${fuzzSeed}`);
    assert.equal(code, 0, stderr);
    assert.deepEqual(reports.map((r) => r.parser), Object.keys(parsers), "every parser was fuzzed");
    for (const r of reports) {
      assert.ok(r.results > 0 || r.parser === "/proc/net/tcp", `${r.parser} accepted at least its own fixtures: ${JSON.stringify(r)}`);
      assert.ok(r.inputErrors > 0 || r.parser === "explain" || r.parser === "host:port", `${r.parser} refused some mutated inputs: ${JSON.stringify(r)}`);
    }
    console.log(reports.map((r) => `${r.parser}: ${r.calls} calls, ${r.results} results, ${r.inputErrors} input errors, slowest ${r.maxMs.toFixed(1)} ms`).join("\n"));
  });
}
