// `nodetunnel doctor nftables` on the inputs an audit found misjudged (fixtures/doctor/nftables/audit/):
// the exit code, the verdict and what the report or the error line says (doctor-cli.md common rules:
// 0 ok, 1 problem, 2 bad input naming file, line and what was expected, 3 indeterminate).
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runDoctor } from "./helpers/run-doctor.js";

const dir = join(import.meta.dirname, "fixtures/doctor/nftables/audit");
const run = (file: string) => runDoctor(["nftables", "--file", join(dir, file), "--source", "10.224.0.7", "--destination", "10.224.0.5", "--output", "json"]);
const report = (stdout: string) => JSON.parse(stdout) as { verdict: string; summary: string; assumptions: string[]; decidedBy: Record<string, unknown>; fixes: { command: string }[] };

describe("doctor nftables on the audit's inputs", () => {
  it("a host name where nft -N lists an address: indeterminate (exit 3), suggesting nft list ruleset without -N", async () => {
    const r = await run("host.nft");
    assert.equal(r.code, 3, r.stdout);
    const j = report(r.stdout);
    assert.deepEqual([j.verdict, j.decidedBy.rule], ["indeterminate", 1]);
    assert.match(j.summary, /aks-nodepool1-vmss000002 is a host name .*without -N/);
  });

  it("an address or port nft refuses: exit 2, one stderr line naming the file, the line and what was expected", async () => {
    for (const [file, what] of [["badip.nft", /badip\.nft:4: .*10\.0\.0\.300.*expected an IPv4 address/], ["badport.nft", /badport\.nft:4: .*99999 is more than 65535.*expected a port 0-65535/]] as const) {
      const r = await run(file);
      assert.equal(r.code, 2, file);
      assert.match(r.stderr, what);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  });

  it("a redirect of the port on prerouting: the input chain's drop of the new port blocks it (exit 1), and the report says so", async () => {
    const r = await run("redir.nft");
    assert.equal(r.code, 1, r.stdout);
    const j = report(r.stdout);
    assert.deepEqual([j.verdict, j.decidedBy.text], ["blocked", "tcp dport 8080 drop"]);
    assert.match(j.summary, /"tcp dport 10250 redirect to :8080" in ip nat chain prerouting redirects them to port 8080/);
    assert.ok(j.assumptions.some((a) => /nat rule's rewrite was applied/.test(a)));
    assert.equal(j.fixes[0]?.command, "nft insert rule inet filter input ip saddr 10.224.0.7 tcp dport 8080 accept");
  });

  it("a dnat to another host: indeterminate (exit 3), naming the nat rule and where it forwards them, not the input drop", async () => {
    const r = await run("nat.nft");
    assert.equal(r.code, 3, r.stdout);
    const j = report(r.stdout);
    assert.deepEqual([j.verdict, j.decidedBy.table, j.decidedBy.chain, j.decidedBy.rule], ["indeterminate", "ip nat", "prerouting", 1]);
    assert.match(j.summary, /forwards .* to 10\.224\.0\.99:8080: .*forward hook/);
  });

  it("a named counter only counts: the rule's drop decides (exit 1)", async () => {
    const r = await run("bad4.nft");
    assert.equal(r.code, 1, r.stdout);
    assert.deepEqual([report(r.stdout).verdict, report(r.stdout).decidedBy.rule], ["blocked", 1]);
  });
});

describe("doctor nftables on a flow of two families", () => {
  const ruleset = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\n";
  it("--source IPv6 and --destination IPv4: bad usage (exit 2) naming both, as doctor ufw and nsg say; a mapped IPv4 source is IPv4", async () => {
    const r = await runDoctor(["nftables", "--file", "-", "--source", "fd00:250::2", "--destination", "10.250.0.1"], { stdin: ruleset });
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /--source fd00:250::2 is IPv6 and --destination 10\.250\.0\.1 is IPv4/);
    const mapped = await runDoctor(["nftables", "--file", "-", "--source", "::ffff:10.250.0.2", "--destination", "10.250.0.1"], { stdin: ruleset });
    assert.equal(mapped.code, 0, mapped.stderr);
  });
});
