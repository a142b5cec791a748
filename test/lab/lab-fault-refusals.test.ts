// Faults that would change nothing are refused, not recorded: nsg-deny with an NSG the evaluator
// cannot decide, agent-kill on a node without an agent. A --nsg file that is not JSON is an input
// error (exit 2) naming the file and the line. None of these needs the lab's network: a lab state
// is enough, since each refusal comes before anything is installed.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { labDown, setFault } from "../../src/lab/index.js";
import { readState, stateDir } from "../../src/lab/lab-state.js";
import { bareLab, labSkip } from "./bare-lab.js";
import { labCli } from "./lab-cli.js";

const prefix = `nt-f${process.pid % 100000}`;
const dir = mkdtempSync(join(tmpdir(), "lab-refusals-"));
// A deny that only an application security group's members decide (the lab knows none).
const asgNsg = join(dir, "asg-nsg.json");
writeFileSync(asgNsg, JSON.stringify({
  name: "aks-agentpool-nsg",
  securityRules: [{
    name: "deny-asg", priority: 200, direction: "Inbound", access: "Deny", protocol: "Tcp",
    sourceApplicationSecurityGroups: [{ id: "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/agents" }],
    sourcePortRange: "*", destinationAddressPrefix: "*", destinationPortRange: "10250",
  }],
}, null, 2));
const badNsg = join(dir, "bad.json");
writeFileSync(badNsg, '{\n  "name": "x",\n  "securityRules": [ {bad\n}\n');

describe("lab fault refusals", { skip: labSkip("the lab's state lives under /run"), timeout: 60_000 }, () => {
  before(async () => {
    await labDown(prefix);
    await bareLab({ prefix, nodes: 2, agents: ["node-1"] });
  });
  after(async () => {
    await labDown(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  test("nsg-deny with an indeterminate verdict: says so and why, installs and records nothing", async () => {
    await assert.rejects(
      setFault(readState(prefix)!, "nsg-deny", "node-2", true, { nsgText: readFileSync(asgNsg, "utf8") }),
      (err: Error) => {
        assert.match(err.message, /verdict for 10\.224\.0\.4, 10\.225\.0\.4 → 10\.224\.0\.5:10250 is indeterminate/);
        assert.match(err.message, /application security group "agents"/);
        assert.match(err.message, /Nothing installed; the fault is not on/);
        return true;
      },
    );
    assert.deepEqual(readState(prefix)!.faults, {});
    assert.equal(existsSync(join(stateDir(prefix), "nsg-node-2.json")), false);
  });

  test("lab fault nsg-deny --nsg with an indeterminate NSG exits non-zero and records nothing", async () => {
    const r = await labCli("fault", "nsg-deny", "node-2", "--prefix", prefix, "--nsg", asgNsg);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /indeterminate/);
    assert.doesNotMatch(r.stdout, /nsg-deny on/);
    assert.deepEqual(readState(prefix)!.faults, {});
  });

  test("lab fault nsg-deny --nsg with a file that is not JSON: exit 2, naming the file and the line", async () => {
    const r = await labCli("fault", "nsg-deny", "node-2", "--prefix", prefix, "--nsg", badNsg);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^nodetunnel lab fault: --nsg ${badNsg.replace(/[.]/g, "\\.")}:3: not JSON`, "m"));
    assert.deepEqual(readState(prefix)!.faults, {});
  });

  test("agent-kill on a node without an agent is refused: node-2 runs no agent", async () => {
    await assert.rejects(setFault(readState(prefix)!, "agent-kill", "node-2", true), /node-2 runs no agent \(agents run on node-1\)/);
    assert.deepEqual(readState(prefix)!.faults, {});
    const r = await labCli("fault", "agent-kill", "node-2", "--prefix", prefix);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /node-2 runs no agent/);
    assert.deepEqual(readState(prefix)!.faults, {});
  });
});
