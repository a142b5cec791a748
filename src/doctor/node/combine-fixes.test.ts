// combineFixes on findings whose fixes share an unnumbered command: the command runs once, and
// what each finding says to do in it is kept.
import assert from "node:assert/strict";
import { it } from "node:test";
import { checkIptables } from "../iptables/index.js";
import { combineFixes } from "./combine-fixes.js";

it("one edit of /etc/ufw/before.rules for two blocked sources keeps both sources' lines to add", () => {
  const dump = [
    "*filter", ":INPUT DROP [0:0]", ":ufw-after-input - [0:0]", ":ufw-before-input - [0:0]", ":ufw-user-input - [0:0]",
    "-A INPUT -j ufw-before-input", "-A INPUT -j ufw-after-input",
    "-A ufw-before-input -i lo -j ACCEPT",
    "-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A ufw-before-input -s 10.0.0.0/8 -j DROP",
    "-A ufw-before-input -j ufw-user-input",
    "-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT",
    "COMMIT", "",
  ].join("\n");
  const findings = ["10.1.0.5", "10.2.0.9"].map((source) => checkIptables(dump, { source, port: 10250, protocol: "tcp", inInterface: "eth0", chain: "INPUT" }));
  for (const f of findings) assert.equal(f.status, "problem");
  const fixes = combineFixes(findings);
  const edits = fixes.filter((f) => f.command.includes("/etc/ufw/before.rules"));
  assert.equal(edits.length, 1, fixes.map((f) => f.command).join("\n"));
  assert.match(edits[0]!.description, /-s 10\.1\.0\.5 -j ACCEPT/);
  assert.match(edits[0]!.description, /-s 10\.2\.0\.9 -j ACCEPT/);
});
