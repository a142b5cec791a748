import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { checkNftables } from "./check-nftables.js";

const flow = { source: "10.224.0.5", port: 10250, protocol: "tcp" as const, inInterface: "eth0" };

// `nft -a list ruleset` of two input base chains: `early` drops the flow, and `late`, which runs
// after it whatever `early` accepts (doctor-cli.md: "`accept` ends only its base chain"), drops
// everything but ssh by its policy.
const twoBlockers = `table ip custom { # handle 7
\tchain early { # handle 1
\t\ttype filter hook input priority -10; policy accept;
\t\tip saddr 10.224.0.5 tcp dport 10250 drop # handle 3
\t}
\tchain late { # handle 2
\t\ttype filter hook input priority 10; policy drop;
\t\ttcp dport 22 accept # handle 4
\t}
}
`;

/** The ruleset after running the given `nft ...` commands, as nft -f would read them after it. */
const after = (text: string, commands: readonly string[]) => `${text}\n${commands.map((c) => c.replace(/^nft /, "")).join("\n")}\n`;

describe("nftables fixes: every base chain that blocks gets one", () => {
  const r = checkNftables(twoBlockers, flow);
  const commands = r.fixes.map((f) => f.command);

  it("lists a fix for the later base chain's drop policy too, and says so in the summary", () => {
    assert.deepEqual([r.verdict, r.decidedBy?.chain, r.decidedBy?.rule], ["blocked", "early", 1]);
    assert.deepEqual(commands, [
      "nft insert rule ip custom early ip saddr 10.224.0.5 tcp dport 10250 accept",
      "nft delete rule ip custom early handle 3",
      "nft insert rule ip custom late ip saddr 10.224.0.5 tcp dport 10250 accept",
    ]);
    assert.match(r.summary, /the policy \(drop\) of ip custom chain late blocks them too, so apply every fix listed\.$/);
    assert.ok(r.details?.some((d) => d.startsWith("More than one base chain blocks this flow")));
  });

  it("the fixes open the flow, either way for the first chain; the first chain's fix alone does not", () => {
    const [insertEarly, deleteEarly, insertLate] = commands as [string, string, string];
    for (const applied of [[insertEarly, insertLate], [deleteEarly, insertLate]]) {
      assert.equal(checkNftables(after(twoBlockers, applied), flow).verdict, "allowed", applied.join("; "));
    }
    for (const applied of [[insertEarly], [deleteEarly]]) {
      const still = checkNftables(after(twoBlockers, applied), flow);
      assert.deepEqual([still.verdict, still.decidedBy?.chain, still.decidedBy?.rule], ["blocked", "late", null], applied.join("; "));
    }
  });

  it("offers deleting a rule only where that opens the chain as the accept does", () => {
    // Two drops in one chain: deleting the first alone leaves the second.
    const twoDrops = twoBlockers.replace("\t\tip saddr 10.224.0.5 tcp dport 10250 drop # handle 3\n", "\t\tip saddr 10.224.0.5 tcp dport 10250 drop # handle 3\n\t\ttcp dport 10250 drop # handle 5\n");
    const fixes = checkNftables(twoDrops, flow).fixes.map((f) => f.command);
    assert.deepEqual(fixes, [
      "nft insert rule ip custom early ip saddr 10.224.0.5 tcp dport 10250 accept",
      "nft insert rule ip custom late ip saddr 10.224.0.5 tcp dport 10250 accept",
    ]);
    assert.equal(checkNftables(after(twoDrops, fixes), flow).verdict, "allowed");
  });

  it("one blocker still gets the accept or the delete, and nothing more", () => {
    const one = twoBlockers.replace("policy drop;", "policy accept;");
    const r1 = checkNftables(one, flow);
    assert.deepEqual(r1.fixes.map((f) => f.command), ["nft insert rule ip custom early ip saddr 10.224.0.5 tcp dport 10250 accept", "nft delete rule ip custom early handle 3"]);
    assert.doesNotMatch(r1.summary, /too/);
  });
});

// A rule that does not single out the flow (is-deletable-nft-blocker.ts) is never offered for
// deletion: deleting a catch-all opens every port it guards. The accept for the flow alone is.
describe("nftables fixes: a catch-all blocker gets an accept for the flow before it, never a delete", () => {
  const chainWith = (blocker: string) => `table inet filter { # handle 1
\tchain input { # handle 1
\t\ttype filter hook input priority filter; policy accept;
\t\ttcp dport 22 accept # handle 2
\t\t${blocker} # handle 3
\t}
}
`;
  for (const blocker of ["drop", "reject with icmpx admin-prohibited", 'iifname "eth0" drop', "ct state new drop", "ip saddr 10.224.0.0/16 drop", "tcp dport { 10250, 10255 } drop", "th dport 10250 drop"]) {
    it(`only the accept: ${blocker}`, () => {
      const r = checkNftables(chainWith(blocker), flow);
      assert.deepEqual([r.verdict, r.decidedBy?.rule], ["blocked", 2], blocker);
      assert.deepEqual(r.fixes.map((f) => f.command), ["nft insert rule inet filter input ip saddr 10.224.0.5 tcp dport 10250 accept"], blocker);
      assert.equal(checkNftables(after(chainWith(blocker), r.fixes.map((f) => f.command)), flow).verdict, "allowed", blocker);
    });
  }
  it("without handles, no listing step to find the catch-all's handle either", () => {
    const r = checkNftables(chainWith("drop").replace(/ # handle \d+/g, ""), flow);
    assert.deepEqual(r.fixes.map((f) => f.command), ["nft insert rule inet filter input ip saddr 10.224.0.5 tcp dport 10250 accept"]);
  });
  it("a rule that blocks just this flow's port still gets the delete as well", () => {
    const r = checkNftables(chainWith("tcp dport 10250 drop"), flow);
    assert.deepEqual(r.fixes.map((f) => f.command), ["nft insert rule inet filter input ip saddr 10.224.0.5 tcp dport 10250 accept", "nft delete rule inet filter input handle 3"]);
  });
});

// firewalld writes its tables anew on every reload: the fix is a firewall-cmd rich rule in the
// zone the packet lands in, never an nft command (firewalld-zone.ts).
describe("nftables fixes: a block in firewalld's table is fixed with firewall-cmd", () => {
  const layout = readFileSync(new URL("../../../test/fixtures/doctor/nftables/hand/firewalld-ct-status-dnat.txt", import.meta.url), "utf8");
  const fwFlow = { source: "20.1.1.1", port: 10255, protocol: "tcp" as const, inInterface: "eth0" };
  const rich = (zone: string, rule: string) => `firewall-cmd --permanent --zone=${zone} --add-rich-rule='${rule}' && firewall-cmd --reload`;
  /** What firewalld writes for an accept rich rule: a rule at the head of the zone's chain (`_allow`, or `_pre` with a priority below 0). */
  const withRichAccept = (text: string, chain: string, f: { readonly source: string; readonly port: number }) =>
    text.replace(new RegExp(`(chain ${chain} \\{\\n)`), `$1\t\t${f.source.includes(":") ? "ip6" : "ip"} saddr ${f.source} tcp dport ${f.port} accept\n`);

  it("the final catch-all reject: a rich rule in the zone filter_INPUT_ZONES sends eth0 to, and no nft delete", () => {
    const r = checkNftables(layout, fwFlow);
    assert.deepEqual([r.verdict, r.decidedBy?.table, r.decidedBy?.chain, r.decidedBy?.text], ["blocked", "inet firewalld", "filter_INPUT", "reject with icmpx admin-prohibited"]);
    assert.deepEqual(r.fixes.map((f) => f.command), [rich("public", 'rule family="ipv4" source address="20.1.1.1" port port="10255" protocol="tcp" accept')]);
    assert.match(r.fixes[0]!.description, /lost at the next firewall-cmd --reload/);
    assert.ok(!r.assumptions.some((a) => /zone/.test(a)), r.assumptions.join("\n"));
    assert.equal(checkNftables(withRichAccept(layout, "filter_IN_public_allow", fwFlow), fwFlow).verdict, "allowed");
  });

  it("the zone follows the ruleset's dispatch: by source address, by interface, else the default zone", () => {
    const zones = layout
      .replace("\t\tiifname \"eth0\" goto filter_IN_public\n", "\t\tiifname \"eth1\" goto filter_IN_public\n\t\tiifname \"eth0\" goto filter_IN_internal\n")
      .replace("\tchain filter_IN_trusted {\n\t\taccept\n\t}", "\tchain filter_IN_trusted {\n\t\tjump filter_IN_trusted_allow\n\t}\n\n\tchain filter_IN_trusted_allow {\n\t}\n\n\tchain filter_IN_internal {\n\t\tjump filter_IN_internal_allow\n\t}\n\n\tchain filter_IN_internal_allow {\n\t}");
    const cases: [typeof fwFlow, string][] = [
      [{ ...fwFlow, source: "10.224.0.9" }, "trusted"],
      [fwFlow, "internal"],
      [{ ...fwFlow, inInterface: "eth1" }, "public"],
      [{ ...fwFlow, inInterface: "eth7" }, "public"],
    ];
    for (const [f, zone] of cases) {
      const r = checkNftables(zones, f);
      assert.equal(r.verdict, "blocked", `${f.source} on ${f.inInterface}`);
      assert.deepEqual(r.fixes.map((x) => x.command), [rich(zone, `rule family="ipv4" source address="${f.source}" port port="10255" protocol="tcp" accept`)], `${f.source} on ${f.inInterface}`);
      assert.equal(checkNftables(withRichAccept(zones, `filter_IN_${zone}_allow`, f), f).verdict, "allowed", zone);
    }
  });

  it("an IPv6 flow gets an ipv6 rich rule", () => {
    const f = { ...fwFlow, source: "2001:db8::7" };
    // firewalld's IPv6 reverse-path check (fib) is one the evaluator cannot decide: left out here.
    const v6 = layout.replace("\t\tmeta nfproto ipv6 fib saddr . mark . iif oif missing drop\n", "");
    assert.deepEqual(checkNftables(v6, f).fixes.map((x) => x.command), [rich("public", 'rule family="ipv6" source address="2001:db8::7" port port="10255" protocol="tcp" accept')]);
  });

  it("a reject rich rule of the zone (its _deny chain) needs a priority that puts the accept in _pre, ahead of it", () => {
    const denied = layout.replace("\tchain filter_IN_public_deny {\n\t}", "\tchain filter_IN_public_deny {\n\t\tip saddr 20.1.1.0/24 tcp dport 10250-10260 reject with icmpx admin-prohibited\n\t}");
    const r = checkNftables(denied, fwFlow);
    assert.deepEqual([r.verdict, r.decidedBy?.chain], ["blocked", "filter_IN_public_deny"]);
    assert.deepEqual(r.fixes.map((x) => x.command), [rich("public", 'rule family="ipv4" priority="-32768" source address="20.1.1.1" port port="10255" protocol="tcp" accept')]);
    assert.equal(checkNftables(withRichAccept(denied, "filter_IN_public_allow", fwFlow), fwFlow).verdict, "blocked");
    assert.equal(checkNftables(withRichAccept(denied, "filter_IN_public_pre", fwFlow), fwFlow).verdict, "allowed");
  });

  it("where the input shows no zone dispatch, the fix assumes public and says how to find the real zone", () => {
    const bare = `table inet firewalld {\n\tchain filter_INPUT {\n\t\ttype filter hook input priority filter + 10; policy accept;\n\t\tct state { established, related } accept\n\t\treject with icmpx admin-prohibited\n\t}\n}\n`;
    const r = checkNftables(bare, fwFlow);
    assert.deepEqual(r.fixes.map((x) => x.command), [rich("public", 'rule family="ipv4" source address="20.1.1.1" port port="10255" protocol="tcp" accept')]);
    assert.ok(r.assumptions.some((a) => /assumes public/.test(a) && a.includes("firewall-cmd --get-active-zones") && /chains for zone public are not in the input/.test(a)), r.assumptions.join("\n"));
  });

  it("a block outside every zone's rules gets no rich rule that would not reach it, and no nft command", () => {
    const early = layout.replace("\t\tmeta nfproto ipv6 fib saddr . mark . iif oif missing drop\n", "\t\tip saddr 20.1.1.1 drop\n");
    const r = checkNftables(early, fwFlow);
    assert.deepEqual([r.verdict, r.decidedBy?.chain], ["blocked", "filter_PREROUTING"]);
    assert.ok(r.fixes.every((x) => x.command.startsWith("firewall-cmd ")), r.fixes.map((x) => x.command).join("\n"));
    assert.equal(r.fixes[0]?.command, "firewall-cmd --zone=public --list-all");
    assert.match(r.fixes[0]!.description, /no rich rule of zone public/);
    // The walk goes on past it: the final reject of filter_INPUT needs its rich rule too.
    assert.equal(r.fixes[1]?.command, rich("public", 'rule family="ipv4" source address="20.1.1.1" port port="10255" protocol="tcp" accept'));
  });
});
