// `lab up` when things go wrong while it builds: a server that dies at start is reported at once,
// with its exit code and the end of its log (not a 20 s "timed out" after which the log is gone);
// a bad --proxy-strategies is refused before anything is built; SIGINT or SIGTERM during `up`
// tears down what was built and exits 130 or 143. Each leaves no namespace, state, process or route.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { afterEach, describe, test } from "node:test";
import { LAB_RANGES, labDown, labUp, ownedNamespaces, planLab } from "../../src/lab/index.js";
import { otherLabStates, stateDir } from "../../src/lab/lab-state.js";
import { blackholeRanges } from "../../src/lab/lab-topology.js";
import { labCertificates, labPids, labSkip } from "./bare-lab.js";
import { labCli, repo, startLabCli } from "./lab-cli.js";

const base = `nt-e${process.pid % 100000}`;
let routesBefore = new Set<string>();
const used: string[] = [];
const prefixFor = (tag: string) => {
  const prefix = `${base}${tag}`;
  used.push(prefix);
  return prefix;
};

async function assertNothingLeft(prefix: string): Promise<void> {
  assert.deepEqual(await ownedNamespaces(prefix), [], "no namespace left");
  assert.equal(existsSync(stateDir(prefix)), false, "no state left");
  assert.deepEqual(labPids(prefix), [], "no lab process left");
  if (otherLabStates(prefix).length === 0) {
    const routes = await blackholeRanges();
    for (const r of LAB_RANGES) assert.equal(routes.has(r), routesBefore.has(r), `blackhole ${r} as it was before`);
  }
}

describe("lab up failures", { skip: labSkip("the lab creates network namespaces"), timeout: 120_000 }, () => {
  afterEach(async () => {
    for (const prefix of used.splice(0)) await labDown(prefix);
  });

  test("a server that dies at start: lab up fails at once with its exit code and the end of its log", async () => {
    const prefix = prefixFor("s");
    routesBefore = await blackholeRanges();
    // The CLI refuses such strategies up front; labUp itself still meets a server that dies.
    const input = { prefix, nodes: 1, proxyStrategies: "bogus" };
    const startedAt = Date.now();
    await assert.rejects(labUp(input, await labCertificates(planLab(input)), { repoRoot: repo, nodeBin: process.execPath }), (err: Error) => {
      assert.match(err.message, /^the server \(pid \d+\) exited with code [1-9]\d* while lab waited for the server's health port; the end of its log /);
      assert.match(err.message, /--proxy-strategies: unknown strategy "bogus"/, "the server's own error, from its log");
      return true;
    });
    assert.ok(Date.now() - startedAt < 15_000, `failed after ${Date.now() - startedAt} ms, not at the server's exit`);
    await assertNothingLeft(prefix);
  });

  test("lab up --proxy-strategies bogus is refused before anything is built, with the server's message", async () => {
    const prefix = prefixFor("v");
    routesBefore = await blackholeRanges();
    const r = await labCli("up", "--prefix", prefix, "--nodes", "1", "--proxy-strategies", "bogus");
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'nodetunnel lab up: --proxy-strategies: unknown strategy "bogus" (known: default, destHost, defaultRoute)\n');
    await assertNothingLeft(prefix);
  });

  for (const { signal, code, when } of [
    { signal: "SIGINT", code: 130, when: /lab: starting the kubelet on node-1/ },
    { signal: "SIGTERM", code: 143, when: /lab: creating namespaces/ },
  ] as const) {
    test(`${signal} during lab up (at "${when.source.replace(/^lab: /, "")}"): tears down what was built, exits ${code}`, async () => {
      const prefix = prefixFor(signal === "SIGINT" ? "i" : "t");
      routesBefore = await blackholeRanges();
      const up = startLabCli(["up", "--prefix", prefix, "--nodes", "1"]);
      const deadline = Date.now() + 30_000;
      while (!when.test(up.stderr()) && Date.now() < deadline && up.child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
      assert.match(up.stderr(), when);
      up.child.kill(signal);
      const r = await up.done;
      assert.deepEqual({ code: r.code, signal: r.signal }, { code, signal: null }, r.stderr);
      assert.match(r.stderr, new RegExp(`lab: lab up interrupted by ${signal}: tearing down what was built`));
      assert.match(r.stderr, new RegExp(`nodetunnel lab up: interrupted by ${signal}; tore down what was built\\n$`));
      await assertNothingLeft(prefix);
    });
  }
});
