import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { checkUfw } from "./check-ufw.js";

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "../../../test/fixtures/doctor/ufw", name), "utf8");

// What `ufw insert N <rule>` / `ufw <rule>` does to `ufw status verbose` for an IPv4 allow: a row
// ahead of the Nth rule row, or after the last IPv4 inbound row. Only the forms fixUfw writes.
function applyUfwCommand(text: string, command: string): string {
  const m = /^ufw (?:insert (\d+) )?allow from (\S+) to (\S+) port (\d+) proto (tcp|udp)$/.exec(command);
  assert.ok(m, `not a command this helper applies: ${command}`);
  const [, at, from, to, port, proto] = m;
  const row = `${`${to === "any" ? "" : `${to} `}${port}/${proto}`.padEnd(26)} ${"ALLOW IN".padEnd(12)}${from!.padEnd(26)}`;
  const lines = text.split("\n");
  const first = lines.findIndex((l) => l.startsWith("--")) + 1;
  let end = first;
  while (end < lines.length && lines[end]!.trim() !== "") end++;
  const rows = lines.slice(first, end);
  const index = at === undefined ? rows.filter((r) => !r.includes("(v6)")).length : Number(at) - 1;
  rows.splice(index, 0, row);
  return [...lines.slice(0, first), ...rows, ...lines.slice(end)].join("\n");
}

describe("ufw fix", () => {
  const edge = fixture("hand/to-address-deny.verbose.txt");
  const flow = { source: "192.168.3.3", port: 10250, protocol: "tcp" as const, inInterface: "eth0" };

  it("goes ahead of a blocking rule the input cannot decide, so it works whichever way that rule goes", () => {
    const r = checkUfw(edge, flow);
    // doctor-cli.md: the undecidable DENY makes the verdict indeterminate; blocked either way, the fix stays.
    assert.deepEqual([r.verdict, (r.decidedBy as { rule: number; action: string }).action, (r.decidedBy as { rule: number }).rule], ["indeterminate", "DENY", 2]);
    assert.deepEqual([(r.eitherWay as { verdict: string }).verdict, (r.eitherWay as { decidedBy: { action: string } }).decidedBy.action], ["blocked", "policy"]);
    assert.match(r.summary, /depends on rule 2 .*; but the flow is blocked whichever way it matches: ufw drops/);
    const fixed = applyUfwCommand(edge, r.fixes[0]!.command);
    for (const destination of ["10.224.0.5", "10.224.0.6"]) {
      assert.equal(checkUfw(edge, { ...flow, destination }).verdict, "blocked", destination);
      assert.equal(checkUfw(fixed, { ...flow, destination }).verdict, "allowed", `${destination}: ${r.fixes[0]!.command}`);
    }
    // An appended allow (the earlier fix) comes after the DENY, which decides when the node is 10.224.0.5.
    const appended = applyUfwCommand(edge, "ufw allow from 192.168.3.3 to any port 10250 proto tcp");
    assert.equal(checkUfw(appended, { ...flow, destination: "10.224.0.5" }).verdict, "blocked");
  });

  it("prepends when the uncertain rule's number is not shown (an OUT rule makes verbose numbers inexact)", () => {
    const withOut = edge.replace("22/tcp (v6)", "1194/udp                   DENY OUT    Anywhere                  \n22/tcp (v6)");
    const r = checkUfw(withOut, flow);
    assert.equal(r.fixes[0]!.command, "ufw prepend allow from 192.168.3.3 to any port 10250 proto tcp");
  });

  it("a policy block with no uncertain rule still appends", () => {
    const r = checkUfw(edge, { ...flow, source: "172.16.0.9" });
    assert.deepEqual(r.fixes.map((f) => f.command), ["ufw allow from 172.16.0.9 to any port 10250 proto tcp"]);
  });
});
