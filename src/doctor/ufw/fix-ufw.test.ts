import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { checkUfw } from "./check-ufw.js";

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "../../../test/fixtures/doctor/ufw", name), "utf8");

// What `ufw insert N <rule>` / `ufw prepend <rule>` / `ufw <rule>` / `ufw --force delete N` does to the
// rule table of `ufw status` (plain, verbose or numbered) for IPv4 allows: a row ahead of the Nth
// rule row (or first), after the last IPv4 inbound row, or the Nth row removed; numbered output is
// renumbered as ufw would. Only the forms fixUfw writes.
function applyUfwCommand(text: string, command: string): string {
  const lines = text.split("\n");
  const first = lines.findIndex((l) => l.startsWith("--") || l.startsWith("     --")) + 1;
  let end = first;
  while (end < lines.length && lines[end]!.trim() !== "") end++;
  const numbered = /^\[\s*\d+\]/.test(lines[first] ?? "");
  const rows = lines.slice(first, end).map((r) => (numbered ? r.replace(/^\[\s*\d+\] /, "") : r));
  const del = /^ufw --force delete (\d+)$/.exec(command);
  if (del) {
    assert.ok(Number(del[1]) <= rows.length, `no rule ${del[1]}: ${command}`);
    rows.splice(Number(del[1]) - 1, 1);
  } else {
    const m = /^ufw (?:insert (\d+) |(prepend) )?allow from (\S+) to (\S+) port (\d+) proto (tcp|udp)$/.exec(command);
    assert.ok(m, `not a command this helper applies: ${command}`);
    const [, at, prepend, from, to, port, proto] = m;
    const row = `${`${to === "any" ? "" : `${to} `}${port}/${proto}`.padEnd(26)} ${"ALLOW IN".padEnd(12)}${from!.padEnd(26)}`;
    const index = prepend ? 0 : at === undefined ? rows.filter((r) => !r.includes("(v6)")).length : Number(at) - 1;
    rows.splice(index, 0, row);
  }
  const out = numbered ? rows.map((r, i) => `[${String(i + 1).padStart(2)}] ${r}`) : rows;
  return [...lines.slice(0, first), ...out, ...lines.slice(end)].join("\n");
}

const rowsOf = (text: string) => text.split("\n").filter((l) => /\b(ALLOW|DENY|REJECT|LIMIT)( IN)?\b/.test(l));

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

  // ufw renumbers on insert: once the allow is in at N, the blocking rule is N+1, and `ufw delete N`
  // would delete the allow just inserted (the audit's paste: insert 1, delete 1 → blocked again).
  for (const name of ["generated/a7.status.txt", "generated/a7.verbose.txt", "generated/a7.numbered.txt", "generated/default-allow.verbose.txt", "hand/crlf-windows-paste.status.txt"]) {
    it(`run in order, the fixes for a rule block leave the allow and remove only the blocking rule (${name})`, () => {
      const text = fixture(name).replace(/\r\n/g, "\n");
      const ufwFlow = { source: "10.224.0.5", port: 10250, protocol: "tcp" as const, inInterface: "eth0" };
      const r = checkUfw(text, ufwFlow);
      const blocking = (r.decidedBy as { text: string }).text;
      assert.equal(r.fixes.length, 2, JSON.stringify(r.fixes));
      const fixed = r.fixes.reduce((t, f) => applyUfwCommand(t, f.command), text);
      assert.equal(checkUfw(fixed, ufwFlow).verdict, "allowed", r.fixes.map((f) => f.command).join(" ; "));
      const inserted = rowsOf(fixed).filter((row) => /ALLOW IN\s+10\.224\.0\.5\s*$/.test(row));
      assert.equal(inserted.length, 1, "the inserted allow is still there");
      assert.equal(rowsOf(fixed).some((row) => row.replace(/^\[\s*\d+\] /, "").trim() === blocking.replace(/^\[\s*\d+\] /, "").trim()), false, "the blocking rule is gone");
      assert.equal(rowsOf(fixed).length, rowsOf(text).length, "one rule in, one rule out");
    });
  }
});
