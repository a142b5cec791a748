// `lab down` recovers from a half-built lab: namespaces without a state file, with a process in
// one of them, are removed, and running it twice is harmless.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { labDown, ownedNamespaces } from "../../src/lab/index.js";

const prefix = `nt-r${process.pid % 100000}`;

test("lab down removes the namespaces and processes of a lab whose state file is gone", { skip: process.getuid?.() !== 0 ? "needs root: creates network namespaces" : false }, async (t) => {
  const spawnIn = (ns: string) => spawn("ip", ["netns", "exec", ns, "sleep", "60"], { stdio: "ignore" });
  const run = (argv: string[]) => new Promise<void>((resolve, reject) => spawn(argv[0]!, argv.slice(1), { stdio: "ignore" }).on("exit", (c) => (c === 0 ? resolve() : reject(new Error(`${argv.join(" ")}: ${c}`)))));
  t.after(async () => {
    for (const ns of [`${prefix}-router`, `${prefix}-node-2`]) await run(["ip", "netns", "del", ns]).catch(() => {});
  });
  await run(["ip", "netns", "add", `${prefix}-router`]);
  await run(["ip", "netns", "add", `${prefix}-node-2`]);
  const sleeper = spawnIn(`${prefix}-node-2`);
  const exited = new Promise((r) => sleeper.on("exit", r));
  await new Promise((r) => setTimeout(r, 200));
  const { removed } = await labDown(prefix);
  assert.deepEqual(removed.sort(), [`${prefix}-node-2`, `${prefix}-router`]);
  assert.deepEqual(await ownedNamespaces(prefix), []);
  await exited; // the process inside was killed
  assert.equal(existsSync(`/run/nodetunnel-lab/${prefix}`), false);
  assert.deepEqual((await labDown(prefix)).removed, [], "idempotent");
});
