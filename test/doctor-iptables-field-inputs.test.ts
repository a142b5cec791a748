// `nodetunnel doctor iptables` on inputs as they come from the field (an audit's reproductions):
// stock RHEL rules, a block in ufw's before.rules, a support bundle holding iptables-save and
// ip6tables-save output in one file, and ip6tables -L from iptables 1.8.7. Each was once judged or
// fixed wrongly; the expectations are doctor-cli.md's and troubleshooting.md §3.2/§4's.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { runDoctor } from "./helpers/run-doctor.js";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/doctor/cli/${name}`, import.meta.url));
interface Report { status: string; verdict: string; summary: string; fixes: { description: string; command: string }[]; decidedBy: { chain: string; rule: number | null; target: string }; assumptions: string[] }
const run = async (file: string, source: string) => {
  const r = await runDoctor(["iptables", "--file", fixture(file), "--source", source, "--output", "json"]);
  return { code: r.code, stderr: r.stderr, json: JSON.parse(r.stdout) as Report };
};
const commands = (j: Report) => j.fixes.map((f) => f.command);

describe("doctor iptables on stock RHEL rules (a final -j REJECT --reject-with icmp-host-prohibited)", () => {
  it("names INPUT rule 5 and inserts an ACCEPT for the flow before it; it never deletes the catch-all", async () => {
    const { code, json } = await run("rhel-default.iptables-save.txt", "10.224.0.7");
    assert.equal(code, 1);
    assert.deepEqual([json.decidedBy.chain, json.decidedBy.rule, json.decidedBy.target], ["INPUT", 5, "REJECT"]);
    assert.deepEqual(commands(json), [
      "iptables --insert INPUT 5 -p tcp --dport 10250 -s 10.224.0.7 -j ACCEPT",
      "iptables-save > /etc/iptables/rules.v4",
      "iptables-save > /etc/sysconfig/iptables",
    ]);
    assert.doesNotMatch(json.summary, /--delete/);
  });
});

describe("doctor iptables on a DROP in ufw's before.rules", () => {
  it("offers no ufw allow (it would never be reached): the fix edits /etc/ufw/before.rules and reloads ufw", async () => {
    const { code, json } = await run("ufw-before-drop.iptables-save.txt", "10.224.0.7");
    assert.equal(code, 1);
    assert.deepEqual([json.decidedBy.chain, json.decidedBy.rule], ["ufw-before-input", 3]);
    assert.doesNotMatch(json.summary, /ufw (insert|allow)/);
    assert.ok(!json.fixes.some((f) => /\bufw (insert|allow|prepend)\b/.test(f.command)), JSON.stringify(json.fixes));
    // doctor-cli.md: every fix is { description, command }, both non-empty strings.
    for (const f of json.fixes) assert.ok(typeof f.description === "string" && f.description.length > 0 && typeof f.command === "string" && f.command.length > 0);
    assert.deepEqual(commands(json), ["${EDITOR:-vi} /etc/ufw/before.rules && ufw reload"]);
    assert.match(json.summary, /fix: edit \/etc\/ufw\/before\.rules .*ufw reload\.$/);
  });
});

describe("doctor iptables on iptables-save and ip6tables-save output in one file", () => {
  it("an IPv6 source is judged against the ip6tables-save dump alone (its policy DROP)", async () => {
    const { code, json } = await run("both-families.iptables-save.txt", "fd00::7");
    assert.equal(code, 1);
    assert.deepEqual([json.decidedBy.chain, json.decidedBy.rule, json.decidedBy.target], ["INPUT", null, "policy"]);
    assert.equal(commands(json)[0], "ip6tables --insert INPUT 2 -p tcp --dport 10250 -s fd00::7 -j ACCEPT");
    assert.ok(json.assumptions.some((a) => /lines 10-17\) is ip6tables-save \(IPv6\) output/.test(a)), json.assumptions.join("\n"));
  });

  it("an IPv4 source against the iptables-save dump alone: accepted by INPUT rule 1, or dropped by rule 2", async () => {
    const allowed = await run("both-families.iptables-save.txt", "10.224.0.7");
    assert.deepEqual([allowed.code, allowed.json.verdict, allowed.json.decidedBy.rule], [0, "allowed", 1]);
    const blocked = await run("both-families.iptables-save.txt", "192.168.1.1");
    assert.deepEqual([blocked.code, blocked.json.decidedBy.rule], [1, 2]);
    assert.equal(commands(blocked.json)[0], "iptables --delete INPUT 2");
  });

  it("two dumps without header lines, one of which shows no family: exit 2, asking for one dump per file", async () => {
    const text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
    const r = await runDoctor(["iptables", "--file", "-", "--source", "10.224.0.7"], { stdin: text });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^nodetunnel doctor iptables: <stdin>:5: the input holds 2 iptables-save dumps, .* \(expected one dump per file, /);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1);
  });
});

describe("doctor iptables on ip6tables -L from iptables 1.8.7 (blank opt column)", () => {
  it("-n: read like 1.8.9's listing (an interface it hides makes it indeterminate), not refused", async () => {
    const old = await run("ip6tables-1.8.7-list-n.txt", "fd00::7");
    const current = await run("ip6tables-1.8.9-list-n.txt", "fd00::7");
    assert.equal(old.code, 3, old.stderr);
    assert.deepEqual([old.json.verdict, old.json.decidedBy.rule], [current.json.verdict, current.json.decidedBy.rule]);
  });

  it("-n -v: DROP of 10250 on eth0 at INPUT rule 4", async () => {
    const { code, json } = await run("ip6tables-1.8.7-list-nv.txt", "fd00::7");
    assert.equal(code, 1);
    assert.deepEqual([json.decidedBy.chain, json.decidedBy.rule, json.decidedBy.target], ["INPUT", 4, "DROP"]);
    assert.equal(commands(json)[0], "ip6tables --delete INPUT 4");
  });
});

