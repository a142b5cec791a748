import { describe, it, test } from "node:test";
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

// troubleshooting.md §2.2: default rules cannot be changed; Azure refuses `rule update` on them.
test("a default deny with every custom priority taken: no command Azure refuses; free a priority, with a read-only listing", () => {
  for (const name of ["DenyAllInBound", "DenyAllOutBound"]) {
    const deny = defaultRules.find((r) => r.name === name)!;
    const crowded = nsg(crowd().map((r) => ({ ...r, direction: deny.direction })));
    const fixes = fixNsg(crowded, deny, flow);
    assert.equal(fixes.length, 1, JSON.stringify(fixes));
    assert.doesNotMatch(fixes[0]!.command, /rule (update|create|delete)|--priority|<free priority>/, name);
    assert.equal(fixes[0]!.command, `az network nsg rule list --resource-group rg1 --nsg-name n1 --include-default --query "sort_by([?direction=='${deny.direction}'], &priority)" -o table`);
    assert.match(fixes[0]!.description, new RegExp(`^Every custom priority \\(100-4096\\) of NSG "n1" \\(${deny.direction}\\) is taken, and "${name}" \\(priority 65500\\) is a default rule`));
    assert.match(fixes[0]!.description, /Free one — delete a custom .* rule that is no longer needed, or merge two rules that do the same into one/);
  }
});

test("a default deny with one custom priority left: the allow takes it, as before", () => {
  const deny = defaultRules.find((r) => r.name === "DenyAllInBound")!;
  const fixes = fixNsg(nsg(crowd([2345])), deny, flow);
  assert.equal(fixes.length, 1);
  assert.match(fixes[0]!.command, /^az network nsg rule create .* --priority 2345 /);
});

test("the usual case: the highest free multiple of 10 below the deny", () => {
  const deny = custom("DenyKubelet", 300);
  const fixes = fixNsg(nsg([deny, custom("Other290", 290, "Allow")]), deny, flow);
  assert.match(fixes[0]!.command, / --priority 280 /);
  assertPrioritiesValid(fixes.map((f) => f.command));
});

describe("moving a deny up never puts it behind an allow that overlaps it", () => {
  // /tmp/audit-doctor/nsg-100.json: a kubelet deny at 100, an Internet-wide allow of every port at 101.
  const deny = custom("Deny-Kubelet", 100);
  const web = { ...custom("Allow-Web-From-Internet", 101, "Allow"), protocol: "*" as const, sourcePrefixes: ["Internet"], destinationPorts: ["*"] };

  it("with that allow right above it, the deny is not renumbered; the fix says what to decide and lists the rules", () => {
    const fixes = fixNsg(nsg([deny, web]), deny, flow);
    assert.equal(fixes.length, 1, JSON.stringify(fixes));
    assert.doesNotMatch(fixes[0]!.command, /rule (update|create)|--priority/);
    assert.match(fixes[0]!.command, /^az network nsg rule list --resource-group rg1 --nsg-name n1 --include-default --query "sort_by\(\[\?direction=='Inbound'\], &priority\)" -o table$/);
    assert.match(fixes[0]!.description, /cannot move to a higher number without passing "Allow-Web-From-Internet" \(priority 101, Allow\)/);
    assert.match(fixes[0]!.description, /Not renumbered/);
    assert.doesNotMatch(fixes[0]!.description, /free a priority below 100/, "nothing is below 100");
  });

  it("a free number before the overlapping allow is taken", () => {
    const fixes = fixNsg(nsg([deny, { ...web, priority: 102 }]), deny, flow);
    assert.match(fixes[0]!.command, /--name Deny-Kubelet --priority 101$/);
    assert.match(fixes[1]!.command, / --priority 100 /);
  });

  it("an allow that matches none of the deny's traffic, or another deny, may be passed", () => {
    const udp = { ...custom("Allow-Dns", 101, "Allow"), protocol: "Udp" as const, destinationPorts: ["53"] };
    const otherPort = { ...custom("Allow-Https", 102, "Allow"), destinationPorts: ["443"] };
    const otherSource = { ...custom("Allow-Office", 103, "Allow"), destinationPorts: ["*"], sourcePrefixes: ["192.168.0.0/16"] };
    const denyAgain = custom("Deny-More", 104);
    const narrow = { ...deny, sourcePrefixes: ["10.0.0.0/8"] };
    const fixes = fixNsg(nsg([narrow, udp, otherPort, otherSource, denyAgain, { ...web, priority: 106 }]), narrow, flow);
    assert.match(fixes[0]!.command, /--name Deny-Kubelet --priority 105$/);
    assert.match(fixes[0]!.description, /renumber "Deny-Kubelet" to 105, the first free number above it/);
    // The same allows with a source that overlaps the deny's stop it at the first one.
    assert.match(fixNsg(nsg([narrow, { ...otherSource, priority: 101, sourcePrefixes: ["10.224.0.0/16"] }]), narrow, flow)[0]!.command, /^az network nsg rule list /);
  });

  it("an allow whose overlap cannot be ruled out (a service tag, an ASG) is not passed", () => {
    const tag = { ...custom("Allow-Storage", 101, "Allow"), sourcePrefixes: ["Storage"] };
    const asg = { ...custom("Allow-Asg", 101, "Allow"), sourcePrefixes: [], sourceAsgs: ["asg-web"] };
    for (const allow of [tag, asg]) assert.match(fixNsg(nsg([deny, allow]), deny, flow)[0]!.command, /^az network nsg rule list /, allow.name);
  });
});

test("IPv6 endpoints are written [address]:port in the fix's text", () => {
  const v6: NsgFlow = { ...flow, source: "fd00:db8:deca::7", destination: "fd00:db8:deca::5" };
  const fixes = fixNsg(nsg([custom("DenyKubelet", 300)]), custom("DenyKubelet", 300), v6);
  assert.match(fixes[0]!.description, /fd00:db8:deca::7 → \[fd00:db8:deca::5\]:10250/);
  assert.match(fixes[0]!.command, /--destination-address-prefixes fd00:db8:deca::5 --destination-port-ranges 10250$/);
});

test("an NSG whose name the input does not show: <nsg-name> in the command, as <resource-group>", () => {
  const deny = custom("DenyKubelet", 300);
  const fixes = fixNsg({ ...nsg([deny]), name: null, resourceGroup: null }, deny, flow);
  assert.match(fixes[0]!.command, /--resource-group <resource-group> --nsg-name <nsg-name> /);
  assert.match(fixes[0]!.description, /in NSG "<nsg-name>"/);
});
