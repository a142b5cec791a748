// bin/nodetunnel.js runs the compiled dist/ only while it matches src/, and the sources through
// tsx otherwise. Whether a process ran with the tsx module hooks is read from the modules it loaded.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { isDistCurrent, nodeFlags, repoRoot, sourceFiles } from "../bin/dist.js";

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

  // A source file newer than the build makes dist/ stale; its old time makes it current again.
  const file = sourceFiles().find((f) => f.endsWith(join("protocol", "index.ts")))!;
  const { atime, mtime } = statSync(file);
  try {
    utimesSync(file, atime, new Date(mtime.getTime() + 60_000));
    assert.equal(isDistCurrent(), false);
    const stale = runVersion();
    assert.equal(stale.hooks, true, "stale dist/ is not used");
    assert.equal(stale.version, forced.version);
  } finally {
    utimesSync(file, atime, mtime);
  }
  assert.equal(isDistCurrent(), true);
});

it("`nodetunnel` runs with the V8 flags the bench measures (the #! line of bin/nodetunnel.js)", () => {
  const shebang = readFileSync(join(repoRoot, "bin", "nodetunnel.js"), "utf8").split("\n")[0]!;
  assert.equal(shebang, `#!/usr/bin/env -S node ${nodeFlags.join(" ")}`);
  const out = execFileSync(join(repoRoot, "bin", "nodetunnel.js"), ["--version"], { encoding: "utf8" });
  assert.match(out, /^\d+\.\d+\.\d+/);
});
