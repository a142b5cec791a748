// `nodetunnel doctor iptables` on an audit's reproductions (test/fixtures/doctor/iptables-audit/):
// a cut-off dump, nat PREROUTING rewrites, marks and blocks in the tables before filter INPUT, the
// iptables-legacy warning, `-L` without -v, and an option order iptables accepts. Each was once
// judged wrongly; the expectations are doctor-cli.md's and troubleshooting.md §4's.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { runDoctor } from "./helpers/run-doctor.js";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/doctor/iptables-audit/${name}`, import.meta.url));
interface Decided { table?: string; chain: string; rule: number | null; target: string; policy: string | null; text: string; ruleTarget?: string }
interface Report { status: string; verdict: string; effect: string | null; summary: string; fixes: { description: string; command: string }[]; decidedBy: Decided; assumptions: string[] }
const run = async (file: string, ...flags: string[]) => {
  const r = await runDoctor(["iptables", "--file", fixture(file), "--source", "10.1.2.3", ...flags, "--output", "json"]);
  return { code: r.code, stderr: r.stderr, json: (r.stdout === "" ? {} : JSON.parse(r.stdout)) as Report & { error?: { line: number; message: string; expected: string } } };
};
const commands = (j: Report) => j.fixes.map((f) => f.command);

describe("doctor iptables: a dump cut off before COMMIT is an input error (exit 2)", () => {
  it("the spec's §4.1 example cut after the INPUT rules, once allowed (the full dump is blocked)", async () => {
    const r = await runDoctor(["iptables", "--file", fixture("spec-trunc.save"), "--source", "10.1.2.3"]);
    assert.equal(r.code, 2, r.stdout);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^nodetunnel doctor iptables: .*spec-trunc\.save:13: table filter \(\*filter at line 2\) has no COMMIT .*looks truncated .*4 KiB.*\(expected .*COMMIT\)\n$/);
  });

  it("a dump cut mid-rule (--dpo) is caught too, in JSON with the line", async () => {
    const { code, json } = await run("trunc.save");
    assert.equal(code, 2);
    assert.equal(json.error?.line, 5);
    assert.match(json.error!.message, /table filter .* no COMMIT/);
  });

  it("a table cut off before the next one starts names that line", async () => {
    const text = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j REDIRECT --to-ports 8080\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
    const r = await runDoctor(["iptables", "--file", "-", "--source", "10.1.2.3"], { stdin: text });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /<stdin>:4: table nat \(\*nat at line 1\) has no COMMIT before \*filter opens the next table/);
  });

  it("iptables -S (no *table lines, no COMMIT) and complete dumps are still read", async () => {
    for (const stdin of ["-P INPUT ACCEPT\n-A INPUT -p tcp -m tcp --dport 10250 -j DROP\n", readFileSync(fixture("redirect.save"), "utf8")]) {
      const r = await runDoctor(["iptables", "--file", "-", "--source", "10.1.2.3"], { stdin });
      assert.equal(r.code, 1, r.stderr);
    }
  });
});

describe("doctor iptables: nat PREROUTING rewrites what filter INPUT sees (§4.3)", () => {
  it("REDIRECT 10250→8080 with INPUT dropping 8080: blocked at INPUT rule 1, naming the REDIRECT", async () => {
    const { code, json } = await run("redirect.save");
    assert.equal(code, 1);
    assert.deepEqual([json.status, json.verdict, json.effect], ["problem", "blocked", "drop"]);
    assert.deepEqual(json.decidedBy, { table: "filter", chain: "INPUT", rule: 1, target: "DROP", policy: null, text: "-A INPUT -p tcp -m tcp --dport 8080 -j DROP" });
    assert.match(json.summary, /nat PREROUTING rule 1 .* rewrote it to this node's port 8080 \(REDIRECT\)/);
    assert.equal(commands(json)[0], "iptables --delete INPUT 1");
  });

  it("DNAT to another host: indeterminate (exit 3), no INPUT rule blamed and no delete offered", async () => {
    for (const flags of [[], ["--destination", "10.224.0.5"]]) {
      const { code, json } = await run("dnat.save", ...flags);
      assert.equal(code, 3, flags.join(" "));
      assert.deepEqual([json.status, json.verdict], ["indeterminate", "indeterminate"]);
      assert.deepEqual([json.decidedBy.table, json.decidedBy.chain, json.decidedBy.rule, json.decidedBy.target, json.decidedBy.ruleTarget], ["nat", "PREROUTING", 1, "policy", "DNAT"]);
      assert.match(json.summary, /forwards it to 10\.224\.0\.99:8080 \(DNAT\) .*the FORWARD chain and that host decide/);
      assert.deepEqual(json.fixes, []);
    }
  });

  it("DNAT to the node's own address (--destination): filter INPUT judges port 8080", async () => {
    const { code, json } = await run("dnat.save", "--destination", "10.224.0.99");
    assert.equal(code, 0);
    assert.deepEqual([json.verdict, json.decidedBy.rule], ["allowed", null]);
  });
});

describe("doctor iptables: raw and mangle before filter INPUT", () => {
  it("a mark set in mangle PREROUTING is seen by filter's -m mark: blocked, not allowed", async () => {
    const { code, json } = await run("mangle.save");
    assert.equal(code, 1);
    assert.deepEqual([json.decidedBy.table, json.decidedBy.chain, json.decidedBy.rule, json.decidedBy.target], ["filter", "INPUT", 1, "DROP"]);
    assert.ok(json.assumptions.some((a) => /mangle PREROUTING rule 1 .* sets the packet mark to 0x8000/.test(a)), json.assumptions.join("\n"));
  });

  it("a mark that may be set (an undecidable match) makes filter's -m mark undecidable, naming that rule", async () => {
    const text = readFileSync(fixture("mangle.save"), "utf8").replace("--dport 10250 -j MARK", "--dport 10250 -m set --match-set m src -j MARK");
    const r = await runDoctor(["iptables", "--file", "-", "--source", "10.1.2.3", "--output", "json"], { stdin: text });
    assert.equal(r.code, 3, r.stderr);
    const json = JSON.parse(r.stdout) as Report;
    assert.deepEqual([json.decidedBy.table, json.decidedBy.chain, json.decidedBy.rule], ["filter", "INPUT", 1]);
    assert.ok(json.assumptions.some((a) => /mangle PREROUTING rule 1 .* may change the packet mark/.test(a)), json.assumptions.join("\n"));
  });

  for (const [file, table] of [["rawdrop.save", "raw"], ["mangledrop.save", "mangle"]] as const) {
    it(`a DROP in ${table} PREROUTING decides: blocked, decidedBy names the ${table} rule, the fix deletes it there`, async () => {
      const { code, json } = await run(file);
      assert.equal(code, 1);
      assert.deepEqual([json.status, json.verdict, json.effect], ["problem", "blocked", "drop"]);
      assert.deepEqual([json.decidedBy.table, json.decidedBy.chain, json.decidedBy.rule, json.decidedBy.target], [table, "PREROUTING", 1, "DROP"]);
      assert.match(json.summary, new RegExp(`at ${table} PREROUTING rule 1, before filter INPUT sees it .*fix: iptables -t ${table} --delete PREROUTING 1\\.$`));
      assert.deepEqual(commands(json), [`iptables -t ${table} --delete PREROUTING 1`, "iptables-save > /etc/iptables/rules.v4", "iptables-save > /etc/sysconfig/iptables"]);
    });
  }

  it("a DROP in mangle INPUT decides too; one that may apply is only an assumption", async () => {
    const mangle = (rule: string) => `*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n${rule}\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n`;
    const certain = await runDoctor(["iptables", "--file", "-", "--source", "10.1.2.3", "--output", "json"], { stdin: mangle("-A INPUT -s 10.0.0.0/8 -j REJECT --reject-with icmp-port-unreachable") });
    assert.equal(certain.code, 1);
    const c = JSON.parse(certain.stdout) as Report;
    assert.deepEqual([c.decidedBy.table, c.decidedBy.chain, c.decidedBy.rule, c.effect], ["mangle", "INPUT", 1, "reject"]);
    // Not specific to the port: an ACCEPT for the flow before it, in mangle INPUT.
    assert.equal(commands(c)[0], "iptables -t mangle --insert INPUT 1 -p tcp --dport 10250 -s 10.1.2.3 -j ACCEPT");
    const maybe = await runDoctor(["iptables", "--file", "-", "--source", "10.1.2.3", "--output", "json"], { stdin: mangle("-A INPUT -m set --match-set bad src -j DROP") });
    assert.equal(maybe.code, 0);
    const m = JSON.parse(maybe.stdout) as Report;
    assert.equal(m.verdict, "allowed");
    assert.ok(m.assumptions.some((a) => /mangle INPUT rule 1 .* may drop this connection before filter INPUT sees it/.test(a)), m.assumptions.join("\n"));
  });
});

describe("doctor iptables: the iptables-legacy warning", () => {
  it("blocked by the rules shown stays a problem, with an assumption naming iptables-legacy-save", async () => {
    const { code, json } = await run("legacywarn.save");
    assert.equal(code, 1);
    assert.deepEqual([json.status, json.decidedBy.rule], ["problem", 5]);
    assert.ok(json.assumptions.some((a) => /iptables-legacy tables are present too.* iptables-legacy-save .*ip6tables-legacy-save/.test(a)), json.assumptions.join("\n"));
  });

  it("allowed by the rules shown is a warning (exit 0): the legacy rules may still drop it", async () => {
    const { code, json } = await run("legacywarn.save", "--in-interface", "eth1");
    assert.equal(code, 0);
    assert.deepEqual([json.status, json.verdict], ["warning", "allowed"]);
    assert.match(json.summary, /iptables-legacy tables are present too .*iptables-legacy-save/);
    const list = await run("legacywarn.txt");
    assert.deepEqual([list.code, list.json.status], [0, "warning"]);
  });
});

describe("doctor iptables: -L without -v, an undecidable jump (list.txt)", () => {
  it("decidedBy.target stays in the contract's set (policy, the jump's own target in ruleTarget), and the summary says what each way may end in", async () => {
    const { code, json } = await run("list.txt");
    assert.equal(code, 3);
    assert.deepEqual([json.decidedBy.chain, json.decidedBy.rule, json.decidedBy.target, json.decidedBy.policy, json.decidedBy.ruleTarget], ["INPUT", 6, "policy", null, "CUSTOM-BLOCK"]);
    assert.doesNotMatch(json.summary, /ends in indeterminate/);
    assert.match(json.summary, /If it applies, CUSTOM-BLOCK rule 1 cannot be decided either .*may be accepted, dropped or rejected; if not, INPUT rule 7 cannot be decided either .*may be accepted or rejected\.$/);
  });
});

describe("doctor iptables: options after another module's, as iptables parses them", () => {
  it("-m conntrack ! --ctstate ... -p tcp --dport 10250 is tcp's --dport: decided like the canonical order", async () => {
    const { code, json } = await run("negct.save");
    assert.equal(code, 1);
    assert.deepEqual([json.decidedBy.rule, json.decidedBy.target], [1, "DROP"]);
    assert.equal(commands(json)[0], "iptables --delete INPUT 1");
  });
});
