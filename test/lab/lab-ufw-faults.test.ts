// The ufw faults set exactly the state they claim, whatever ran before: after ufw-deny on and off
// (which switched the node's default to allow incoming), ufw-default still makes the kernel drop
// incoming traffic, and every off switch leaves the node's ufw as `lab up` made it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { labDown, setFault } from "../../src/lab/index.js";
import { onNode, nodeEtc } from "../../src/lab/node-exec.js";
import { readState, type LabState } from "../../src/lab/lab-state.js";
import { run } from "../../src/lab/run-command.js";
import { bareLab, labSkip } from "./bare-lab.js";

const prefix = `nt-u${process.pid % 100000}`;
const skip = labSkip("creates a network namespace and runs ufw in it");
let state: LabState;

before(async () => {
  if (skip) return;
  await labDown(prefix);
  state = await bareLab({ prefix, nodes: 2 }, { nodeNamespaces: true });
});
after(async () => {
  if (!skip) await labDown(prefix);
});

const node2 = () => state.plan.nodes[1]!;
const onNode2 = async (argv: string[]) => (await run(onNode(prefix, node2(), argv))).stdout;
const inputPolicy = async () => /^-P INPUT (\w+)/m.exec(await onNode2(["iptables", "-S", "INPUT"]))?.[1];
const etcFiles = () => {
  const etc = nodeEtc(prefix, node2());
  return { defaults: readFileSync(etc.defaultUfw, "utf8"), userRules: readFileSync(join(etc.ufw, "user.rules"), "utf8"), conf: readFileSync(join(etc.ufw, "ufw.conf"), "utf8") };
};
const fault = (name: "ufw-default" | "ufw-deny", on: boolean) => setFault(readState(prefix)!, name, "node-2", on);

test("ufw-default after ufw-deny on and off: default deny incoming, for real; the off switches leave ufw as the lab found it", { skip, timeout: 60_000 }, async () => {
  const asBuilt = etcFiles();
  assert.equal(await inputPolicy(), "ACCEPT");

  await fault("ufw-deny", true);
  assert.match(await onNode2(["ufw", "status", "verbose"]), /Default: allow \(incoming\)/);
  assert.match(await onNode2(["iptables", "-S", "ufw-user-input"]), /--dport 10250 -j DROP/);
  await fault("ufw-deny", false);
  assert.deepEqual(etcFiles(), asBuilt, "ufw-deny off leaves the node's ufw files as lab up made them");
  assert.equal(await inputPolicy(), "ACCEPT");

  const on = await fault("ufw-default", true);
  assert.match(on.detail, /deny incoming/);
  assert.match(await onNode2(["ufw", "status", "verbose"]), /Default: deny \(incoming\)/);
  assert.equal(await inputPolicy(), "DROP", "the kernel drops incoming traffic, as the fault says");

  await fault("ufw-default", false);
  assert.deepEqual(etcFiles(), asBuilt, "ufw-default off leaves the node's ufw files as lab up made them");
  assert.equal(await inputPolicy(), "ACCEPT");
  assert.match(await onNode2(["ufw", "status"]), /Status: inactive/);
});
