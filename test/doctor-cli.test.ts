// `nodetunnel doctor` run in-process through CliIo: exit codes 0/1/2/3, the JSON fields of
// doctor-cli.md, standard input as `-`, one-line errors naming the flag or the file and line,
// and colour only on a TTY without NO_COLOR.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type AddressInfo, type Server } from "node:net";
import { Readable } from "node:stream";
import { Command, CommanderError } from "commander";
import type { CliIo } from "../src/cli/cli-io.js";
import { doctorCommand } from "../src/cli/doctor-command.js";

interface RunOptions { readonly stdin?: string; readonly env?: Record<string, string>; readonly isTTY?: boolean }
interface RunResult { readonly code: number | undefined; readonly stdout: string; readonly stderr: string }

async function runDoctor(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  let stdout = "";
  let stderr = "";
  let code: number | undefined;
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s), isTTY: options.isTTY ?? false },
    stderr: { write: (s: string) => (stderr += s), isTTY: options.isTTY ?? false },
    stdin: Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]),
    env: options.env ?? {},
    exit: (c) => {
      code = c;
    },
  };
  // What the lead's main.ts does: add the command to the program, let usage errors surface as CommanderError.
  const program = new Command("nodetunnel").exitOverride();
  program.addCommand(doctorCommand(io));
  try {
    await program.parseAsync(["doctor", ...args], { from: "user" });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
  }
  return { code, stdout, stderr };
}

const ansi = /\u001b\[/;
const oneLine = (s: string) => s.trimEnd().split("\n").length === 1;

describe("doctor CLI: common behaviour", () => {
  it("--help of a subcommand shows examples and exits 0", async () => {
    const r = await runDoctor(["egress", "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:\n {2}nodetunnel doctor egress /);
    assert.equal(r.stderr, "");
  });

  it("an unknown option is a one-line usage error, exit 2; in JSON mode stdout holds only the JSON error", async () => {
    const r = await runDoctor(["egress", "--target", "127.0.0.1:1", "--output", "json", "--bogus"]);
    assert.equal(r.code, 2);
    assert.ok(oneLine(r.stderr), r.stderr);
    assert.match(r.stderr, /--bogus/);
    assert.deepEqual(JSON.parse(r.stdout), { error: { message: "unknown option '--bogus'", file: null, line: null, expected: null } });
  });

  it("an invalid --output value is exit 2", async () => {
    const r = await runDoctor(["egress", "--output", "yaml"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--output/);
    assert.equal(r.stdout, "");
  });

  it("doctor without a check is a usage error (exit 2)", async () => {
    const r = await runDoctor([]);
    assert.equal(r.code, 2);
  });
});

describe("doctor egress (CLI)", () => {
  let server: Server;
  let openPort: number;
  let closedPort: number;
  before(async () => {
    server = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    openPort = (server.address() as AddressInfo).port;
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
    closedPort = (gone.address() as AddressInfo).port;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("exit 0 and result connected for a listening loopback port", async () => {
    const r = await runDoctor(["egress", "--target", `127.0.0.1:${openPort}`, "--output", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.check, "egress");
    assert.equal(json.status, "ok");
    assert.equal(json.probes[0].result, "connected");
    assert.equal(typeof json.probes[0].elapsedMs, "number");
  });

  it("--server is the default target; a closed port is exit 1 with result refused", async () => {
    const r = await runDoctor(["egress", "--server", `127.0.0.1:${closedPort}`, "--output", "json"]);
    assert.equal(r.code, 1);
    const json = JSON.parse(r.stdout);
    assert.equal(json.status, "problem");
    assert.deepEqual(json.probes.map((p: { target: string; result: string }) => [p.target, p.result]), [[`127.0.0.1:${closedPort}`, "refused"]]);
    assert.ok(json.fixes.length > 0);
  });

  it("a bad --target or --timeout names the flag, exit 2", async () => {
    for (const [args, flag] of [
      [["--target", "127.0.0.1"], "--target"],
      [["--target", "127.0.0.1:70000"], "--target"],
      [["--target", `127.0.0.1:${openPort}`, "--timeout", "0"], "--timeout"],
      [["--target", `127.0.0.1:${openPort}`, "--timeout", "soon"], "--timeout"],
      [[], "--server"],
    ] as const) {
      const r = await runDoctor(["egress", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(oneLine(r.stderr) && r.stderr.includes(flag), r.stderr);
      assert.equal(r.stdout, "");
    }
  });

  it("colour only on a TTY without NO_COLOR", async () => {
    const args = ["egress", "--target", `127.0.0.1:${closedPort}`];
    assert.match((await runDoctor(args, { isTTY: true })).stdout, ansi);
    assert.doesNotMatch((await runDoctor(args, { isTTY: true, env: { NO_COLOR: "1" } })).stdout, ansi);
    assert.doesNotMatch((await runDoctor(args, { isTTY: false })).stdout, ansi);
  });
});
