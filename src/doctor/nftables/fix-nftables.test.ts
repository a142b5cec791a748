import assert from "node:assert/strict";
import { describe, it } from "node:test";
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
