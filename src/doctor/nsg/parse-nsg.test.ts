import { test } from "node:test";
import assert from "node:assert/strict";
import { DoctorInputError } from "../input-error.js";
import { parseNsg } from "./parse-nsg.js";

const rule = (over: Record<string, unknown>) => ({
  name: "R1", priority: 200, direction: "Inbound", access: "Deny", protocol: "Tcp",
  sourceAddressPrefix: "*", sourcePortRange: "*", destinationAddressPrefix: "*", destinationPortRange: "10250", ...over,
});
const show = (rules: unknown[]) => JSON.stringify({ name: "n1", resourceGroup: "rg1", securityRules: rules }, null, 2);

function inputError(fn: () => unknown): DoctorInputError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof DoctorInputError, String(err));
    return err;
  }
  assert.fail("expected a DoctorInputError");
}

test("text that is not JSON is an input error with its line", () => {
  const e = inputError(() => parseNsg('{\n  "name": "x",\n  oops\n}', "f.json"));
  assert.match(e.message, /not JSON/);
  assert.equal(e.line, 3);
});

test("a syntax error Node 20 gives no position for still names its line", () => {
  assert.equal(inputError(() => parseNsg('{"name": "x", "securityRules": [ }', "f.json")).line, 1);
  assert.equal(inputError(() => parseNsg('{\n  "name": "x",\n  "securityRules": [ }\n}\n', "f.json")).line, 3);
  assert.equal(inputError(() => parseNsg('[\n  {"name": "a",\n', "f.json")).line, 2, "truncated: the last line");
});

test("a missing priority names the JSON path and the rule's line", () => {
  const text = show([rule({}), rule({ name: "NoPrio", priority: undefined })]);
  const e = inputError(() => parseNsg(text, "f.json"));
  assert.match(e.message, /\$\.securityRules\[1\]\.priority: missing priority/);
  assert.equal(e.line, text.split("\n").findIndex((l) => l.includes('"NoPrio"')) + 1);
});

test("a bad CIDR in a plural list names its index", () => {
  const e = inputError(() => parseNsg(show([rule({ sourceAddressPrefix: null, sourceAddressPrefixes: ["10.0.0.0/8", "10.0.0.0/33"] })]), "f"));
  assert.match(e.message, /sourceAddressPrefixes\[1\]: invalid value "10.0.0.0\/33"/);
});

test("a bad port range and a bad IP are input errors", () => {
  assert.match(inputError(() => parseNsg(show([rule({ destinationPortRange: "10250-80" })]), "f")).message, /destinationPortRange/);
  assert.match(inputError(() => parseNsg(show([rule({ sourceAddressPrefix: "10.0.0.300" })]), "f")).message, /sourceAddressPrefix/);
});

test("two rules with one priority in one direction are rejected; across directions they are fine", () => {
  assert.match(inputError(() => parseNsg(show([rule({}), rule({ name: "R2" })]), "f")).message, /share priority 200/);
  assert.equal(parseNsg(show([rule({}), rule({ name: "R2", direction: "Outbound" })]), "f").rules.length, 2 + 6);
});

test("JSON that is not an NSG is an input error", () => {
  assert.match(inputError(() => parseNsg('{"name": "vm1"}', "f")).message, /not an NSG/);
  assert.match(inputError(() => parseNsg("42", "f")).message, /expected a JSON object/);
});

test("singular and plural forms, empty lists and nulls are merged", () => {
  const nsg = parseNsg(show([rule({ sourceAddressPrefix: "", sourceAddressPrefixes: ["10.1.0.0/16", "10.2.0.0/16"], destinationPortRange: null, destinationPortRanges: ["80", "10250-10255"] })]), "f");
  const r = nsg.rules[0]!;
  assert.deepEqual(r.sourcePrefixes, ["10.1.0.0/16", "10.2.0.0/16"]);
  assert.deepEqual(r.destinationPorts, ["80", "10250-10255"]);
});

test("nsg show without defaultSecurityRules gets the six defaults, and says which", () => {
  const nsg = parseNsg(show([rule({})]), "f");
  assert.equal(nsg.addedDefaults.length, 6);
  assert.ok(nsg.rules.some((r) => r.name === "DenyAllInBound" && r.priority === 65500 && r.isDefault));
});

test("rule list: NSG name and resource group come from the rule ids; effective-rule name prefixes are stripped", () => {
  const id = "/subscriptions/s/resourceGroups/MyRg/providers/Microsoft.Network/networkSecurityGroups/my-nsg/securityRules/R1";
  const nsg = parseNsg(JSON.stringify([rule({ id, name: "securityRules/R1" })]), "list.json");
  assert.equal(nsg.name, "my-nsg");
  assert.equal(nsg.resourceGroup, "MyRg");
  assert.equal(nsg.shape, "rule-list");
  assert.equal(nsg.rules[0]!.name, "R1");
});

test("ARM shape: fields nested under properties, at both levels", () => {
  const text = JSON.stringify({
    name: "arm-nsg", id: "/subscriptions/s/resourceGroups/rgA/providers/Microsoft.Network/networkSecurityGroups/arm-nsg",
    properties: { securityRules: [{ name: "R1", properties: { ...rule({}), name: undefined } }] },
  });
  const nsg = parseNsg(text, "f");
  assert.equal(nsg.resourceGroup, "rgA");
  assert.equal(nsg.rules[0]!.priority, 200);
  assert.equal(nsg.rules[0]!.protocol, "Tcp");
});

const ruleId = (rg: string, nsg: string, name: string) =>
  `/subscriptions/0/resourceGroups/${rg}/providers/Microsoft.Network/networkSecurityGroups/${nsg}/securityRules/${name}`;

test("a rule list takes the NSG's name from the first rule that has an id, not from the file name", () => {
  const text = JSON.stringify([rule({ name: "NoId" }), rule({ name: "R2", priority: 300, id: ruleId("rg1", "aks-nsg", "R2") })], null, 2);
  const nsg = parseNsg(text, "rules.json");
  assert.equal(nsg.name, "aks-nsg");
  assert.equal(nsg.resourceGroup, "rg1");
});

test("a rule list whose ids name two NSGs is an input error naming both, on the second one's line", () => {
  const text = JSON.stringify([
    rule({ name: "R1", id: ruleId("rg1", "nsg-a", "R1") }),
    rule({ name: "R2", priority: 300, id: ruleId("RG1", "NSG-A", "R2") }),
    rule({ name: "R3", priority: 400, id: ruleId("rg1", "nsg-b", "R3") }),
  ], null, 2);
  const e = inputError(() => parseNsg(text, "rules.json"));
  assert.match(e.message, /two NSGs: rule "R1" to NSG "nsg-a" \(resource group rg1\), rule "R3" to NSG "nsg-b"/);
  assert.equal(e.line, text.split("\n").findIndex((l) => l.includes('"R3"')) + 1);
});

test("a custom rule's priority outside 100-4096 is invalid input naming the rule, the range and its line", () => {
  for (const priority of [50, 99, 4097, 65000]) {
    const text = show([rule({}), rule({ name: "TooLow", priority })]);
    const e = inputError(() => parseNsg(text, "f.json"));
    assert.match(e.message, new RegExp(`\\$\\.securityRules\\[1\\]\\.priority: rule "TooLow" has priority ${priority}, outside 100-4096`));
    assert.match(e.expected ?? "", /100-4096/);
    assert.equal(e.line, text.split("\n").findIndex((l) => l.includes('"TooLow"')) + 1);
  }
  for (const priority of [100, 4096]) assert.equal(parseNsg(show([rule({ priority })]), "f").rules[0]!.priority, priority);
});

test("the default rules keep their priorities of 65000 and above", () => {
  const defaults = [
    { ...rule({ name: "AllowVnetInBound", priority: 65000, access: "Allow" }), type: "Microsoft.Network/networkSecurityGroups/defaultSecurityRules" },
    rule({ name: "DenyAllInBound", priority: 65500 }),
  ];
  const nsg = parseNsg(JSON.stringify({ name: "n1", securityRules: [rule({})], defaultSecurityRules: defaults }), "f");
  assert.ok(nsg.rules.some((r) => r.name === "AllowVnetInBound" && r.priority === 65000 && r.isDefault));
  assert.ok(nsg.rules.some((r) => r.name === "DenyAllInBound" && r.priority === 65500 && r.isDefault));
});

test("an input that does not name its NSG leaves the name null, never the file name", () => {
  // `az network nsg rule list` for an NSG with only the default rules prints [].
  assert.equal(parseNsg("[]", "/tmp/subnet-rules.json").name, null);
  assert.equal(parseNsg(JSON.stringify([rule({ name: "NoId" })]), "rules.json").name, null);
  assert.equal(parseNsg(JSON.stringify({ securityRules: [rule({})] }), "nsg.json").name, null);
  assert.equal(parseNsg(JSON.stringify({ name: "", securityRules: [] }), "nsg.json").name, null);
  // An id alone still names it.
  assert.equal(parseNsg(JSON.stringify({ id: "/subscriptions/s/resourceGroups/rgA/providers/Microsoft.Network/networkSecurityGroups/from-id", securityRules: [] }), "nsg.json").name, "from-id");
});
