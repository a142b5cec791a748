import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultRules } from "./default-rules.js";
import { fixNsg } from "./fix-nsg.js";
import type { Nsg, NsgFlow, NsgRule } from "./nsg-model.js";

const flow: NsgFlow = { protocol: "tcp", source: "10.224.0.7", destination: "10.224.0.5", port: 10250 };
const custom = (name: string, priority: number, access: NsgRule["access"] = "Deny"): NsgRule => ({
  name, priority, direction: "Inbound", access, protocol: "Tcp",
  sourcePrefixes: ["*"], sourceAsgs: [], sourcePorts: ["*"], destinationPrefixes: ["*"], destinationAsgs: [], destinationPorts: ["10250"],
  isDefault: false,
});
const nsg = (rules: NsgRule[]): Nsg => ({ name: "n1", resourceGroup: "rg1", label: "f", rules: [...rules, ...defaultRules], addedDefaults: [], shape: "nsg-show" });
/** Every other priority from 100 to 4096 is taken by an allow rule for another port. */
const crowd = (except: number[] = []) => Array.from({ length: 3997 }, (_, i) => 100 + i).filter((p) => !except.includes(p)).map((p) => custom(`Other${p}`, p, "Allow"));

// troubleshooting.md §2.1: custom rules have priority 100-4096; Azure rejects any other number.
function assertPrioritiesValid(commands: string[]): void {
  for (const c of commands) {
    for (const [, p] of c.matchAll(/--priority (\S+)/g)) {
      if (p!.startsWith("<")) continue;
      assert.ok(Number(p) >= 100 && Number(p) <= 4096, `${c}: priority ${p} is outside 100-4096`);
    }
  }
}

test("no free priority below a deny at 100: renumber it within 100-4096, then allow at 100", () => {
  const deny = custom("DenyKubelet", 100);
  const fixes = fixNsg(nsg([deny]), deny, flow);
  assert.equal(fixes.length, 2);
  assert.match(fixes[0]!.command, /--priority 101$/);
  assert.match(fixes[1]!.command, / --priority 100 /);
  assertPrioritiesValid(fixes.map((f) => f.command));
});

test("a deny at 4096 with nothing free: no priority above 4096 is proposed", () => {
  const deny = custom("DenyKubelet", 4096);
  const fixes = fixNsg(nsg([deny, ...crowd([4096])]), deny, flow);
  assert.match(fixes[0]!.command, /--priority <free priority>$/);
  assertPrioritiesValid(fixes.map((f) => f.command));
});

test("a default deny with every custom priority taken: the allow gets a placeholder, never 65500", () => {
  const deny = defaultRules.find((r) => r.name === "DenyAllInBound")!;
  const fixes = fixNsg(nsg(crowd()), deny, flow);
  assert.ok(fixes.every((f) => !/--priority 65500/.test(f.command)), JSON.stringify(fixes));
  assertPrioritiesValid(fixes.map((f) => f.command));
});

test("the usual case: the highest free multiple of 10 below the deny", () => {
  const deny = custom("DenyKubelet", 300);
  const fixes = fixNsg(nsg([deny, custom("Other290", 290, "Allow")]), deny, flow);
  assert.match(fixes[0]!.command, / --priority 280 /);
  assertPrioritiesValid(fixes.map((f) => f.command));
});
