// bin/nodetunnel.js runs the compiled dist/ only while it matches src/ (by content, not file times),
// and the sources through tsx otherwise. Whether a process ran with the tsx module hooks is read
// from the modules it loaded.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { isDistCurrent, nodeFlags, repoRoot, runtimeNodeFlags, sourceFiles } from "../bin/dist.js";

const reportHooks = 'data:text/javascript,process.on("exit",()=>console.log("hooks:"+process.moduleLoadList.some(m=>m.includes("esm/hooks"))))';

function runVersion(env: NodeJS.ProcessEnv = {}): { version: string; hooks: boolean } {
  const out = execFileSync(process.execPath, ["--import", reportHooks, "bin/nodetunnel.js", "--version"], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    encoding: "utf8",
  });
  const lines = out.trim().split("\n");
  return { version: lines[0]!, hooks: lines.at(-1) === "hooks:true" };
}

it("runs the compiled dist/ without the tsx loader when it matches src/", () => {
  execFileSync(process.execPath, ["scripts/build-dist.mjs", "--if-stale"], { cwd: repoRoot, stdio: "ignore" });
  assert.equal(isDistCurrent(), true);
  const run = runVersion();
  assert.match(run.version, /^\d+\.\d+\.\d+/);
  assert.equal(run.hooks, false, "no module hooks: dist/ ran");
});

it("runs the sources through tsx when asked, and when src/ changed since the build", () => {
  const forced = runVersion({ NODETUNNEL_FROM_SOURCE: "1" });
  assert.equal(forced.hooks, true);

  const file = sourceFiles().find((f) => f.endsWith(join("protocol", "index.ts")))!;
  const original = readFileSync(file);
  const { atime, mtime } = statSync(file);
  try {
    // A newer time alone (a checkout, `touch`) leaves the same bytes: dist/ is still current.
    utimesSync(file, atime, new Date(mtime.getTime() + 60_000));
    assert.equal(isDistCurrent(), true, "same content, new time");

    // Changed bytes make dist/ stale until the next build.
    writeFileSync(file, Buffer.concat([original, Buffer.from("// edited by test/dist-entry.test.ts\n")]));
    assert.equal(isDistCurrent(), false, "changed content");
    const stale = runVersion();
    assert.equal(stale.hooks, true, "stale dist/ is not used");
    assert.equal(stale.version, forced.version);
  } finally {
    writeFileSync(file, original);
  }
  assert.equal(isDistCurrent(), true, "the original bytes written back");
});

it("`nodetunnel` runs with the V8 flags the bench measures (the #! line of bin/nodetunnel.js)", () => {
  const shebang = readFileSync(join(repoRoot, "bin", "nodetunnel.js"), "utf8").split("\n")[0]!;
  assert.equal(shebang, `#!/usr/bin/env -S node ${nodeFlags.join(" ")}`);
  const out = execFileSync(join(repoRoot, "bin", "nodetunnel.js"), ["--version"], { encoding: "utf8" });
  assert.match(out, /^\d+\.\d+\.\d+/);
});

// `node bin/nodetunnel.js ...` (an npm script, someone's harness) does not read the #! line. Without
// --heap-growing-percent=300 a bulk transfer that starts after a quiet spell runs in back-to-back
// full GCs: in two interleaved bench runs the server spent 4.2–4.9 ms of CPU per MB in up1 without
// it, 1.8–2.8 with it, set at start-up or on the command line (docs/benchmarks.md). The
// hook records what the entry asks V8 for; V8 offers no way to read a flag back.
it("sets the V8 flags V8 still takes at run time when started without them", () => {
  const recordFlags = 'data:text/javascript,import v8 from "node:v8";import{syncBuiltinESMExports}from"node:module";' +
    'const seen=[];const set=v8.setFlagsFromString;v8.setFlagsFromString=(f)=>{seen.push(f);set(f)};syncBuiltinESMExports();' +
    'process.on("exit",()=>console.log("flags:"+JSON.stringify(seen)))';
  const flagsSet = (nodeArgs: readonly string[]) => {
    const out = execFileSync(process.execPath, [...nodeArgs, "--import", recordFlags, "bin/nodetunnel.js", "--version"], { cwd: repoRoot, encoding: "utf8" });
    return JSON.parse(out.trim().split("\n").at(-1)!.slice("flags:".length)) as string[];
  };
  assert.deepEqual(runtimeNodeFlags, ["--heap-growing-percent=300"]);
  assert.ok(runtimeNodeFlags.every((f) => nodeFlags.includes(f)), "a subset of the #! line's flags");
  assert.deepEqual(flagsSet([]), runtimeNodeFlags, "plain `node bin/nodetunnel.js`");
  assert.deepEqual(flagsSet(nodeFlags), [], "given on the command line (the #! line): nothing to set");
  assert.deepEqual(flagsSet(["--heap-growing-percent=50"]), [], "a value the user chose is kept");
});

it("the `nodetunnel` npm script runs with the #! line's flags", () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.nodetunnel, `node ${nodeFlags.join(" ")} bin/nodetunnel.js`);
});

// The npm bin link, `npx nodetunnel` and the image's /usr/local/bin/nodetunnel are symlinks: the
// command must run under the link's name too (it once checked argv[1] and did nothing, exit 0).
it("runs when started through a symlink, as the npm bin link and the image start it", () => {
  const dir = mkdtempSync(join(tmpdir(), "nt-bin-link-"));
  try {
    const link = join(dir, "nodetunnel");
    symlinkSync(join(repoRoot, "bin", "nodetunnel.js"), link);
    assert.match(execFileSync(link, ["--version"], { encoding: "utf8" }), /^\d+\.\d+\.\d+/);
    const out = execFileSync(link, ["doctor", "explain", "Error from server: error dialing backend: dial tcp 10.224.0.5:10250: i/o timeout", "--output", "json"], { encoding: "utf8" });
    assert.equal((JSON.parse(out) as { check: string }).check, "explain");
    for (const env of [{}, { NODETUNNEL_FROM_SOURCE: "1" }]) {
      assert.match(execFileSync(link, ["--version"], { encoding: "utf8", env: { ...process.env, ...env } }), /^\d+\.\d+\.\d+/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
