import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkIptables } from "./check-iptables.js";

const flow = { source: "10.1.2.3", destination: "10.0.0.4", port: 10250, protocol: "tcp" as const, inInterface: "eth0", chain: "INPUT" };
const save = (rules: string, policy = "ACCEPT", chains = "") =>
  `*filter\n:INPUT ${policy} [0:0]\n${chains.split(" ").filter(Boolean).map((c) => `:${c} - [0:0]\n`).join("")}${rules}\nCOMMIT\n`;

describe("evaluate iptables", () => {
  it("a MARK set earlier is seen by a later -m mark", () => {
    const r = checkIptables(save("-A INPUT -j MARK --set-xmark 0x4000/0x4000\n-A INPUT -m mark --mark 0x4000/0x4000 -j DROP"), flow);
    assert.deepEqual([r.verdict, (r.decidedBy as { rule: number }).rule], ["blocked", 2]);
  });
  it("CONNMARK save then restore carries the mark through the connection mark", () => {
    const r = checkIptables(save("-A INPUT -j MARK --set-xmark 0x2/0xffffffff\n-A INPUT -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff\n-A INPUT -j MARK --set-xmark 0x0/0xffffffff\n-A INPUT -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff\n-A INPUT -m mark --mark 0x2 -j REJECT"), flow);
    assert.equal(r.effect, "reject");
  });
  it("an -o match never holds in INPUT, but its negation does", () => {
    assert.equal(checkIptables(save("-A INPUT -o eth0 -j DROP"), flow).verdict, "allowed");
    assert.equal(checkIptables(save("-A INPUT ! -o eth0 -j DROP"), flow).verdict, "blocked");
  });
  // doctor-cli.md: an undecidable match makes the verdict indeterminate and names the rule,
  // unless an earlier rule already decided — also where both ways end alike; the summary and
  // `eitherWay` keep what the flow ends in either way.
  it("an undecidable rule that cannot change the outcome still makes the verdict indeterminate, saying how it ends either way", () => {
    const r = checkIptables(save("-A INPUT -m set --match-set allow src -j ACCEPT"), flow);
    assert.deepEqual([r.verdict, r.status, r.effect], ["indeterminate", "indeterminate", null]);
    assert.deepEqual(r.decidedBy, { table: "filter", chain: "INPUT", rule: 1, target: "ACCEPT", policy: null, text: "-A INPUT -m set --match-set allow src -j ACCEPT" });
    assert.match(r.summary, /INPUT rule 1 .* depends on something the input does not show .*; but the flow is allowed whichever way it matches: iptables lets .* in: the INPUT policy ACCEPT accepts it/);
    assert.deepEqual(r.eitherWay, { verdict: "allowed", effect: "accept", decidedBy: { table: "filter", chain: "INPUT", rule: null, target: "policy", policy: "ACCEPT", text: ":INPUT ACCEPT [0:0]" }, rejectWith: null });
    assert.ok(r.assumptions.some((a) => /INPUT rule 1 could not be decided/.test(a)));
  });
  it("-L without -v: a hidden interface on the rule before the policy makes a policy block indeterminate, keeping the fix", () => {
    const list = "Chain INPUT (policy DROP)\nnum  target     prot opt source               destination\n1    ACCEPT     tcp  --  anywhere             anywhere             tcp dpt:22\n2    DROP       tcp  --  anywhere             anywhere             tcp dpt:10250\n";
    const r = checkIptables(list, flow);
    assert.deepEqual([r.verdict, r.status, r.effect], ["indeterminate", "indeterminate", null]);
    assert.deepEqual([(r.decidedBy as { rule: number }).rule, (r.decidedBy as { target: string }).target], [2, "DROP"]);
    assert.match(r.summary, /INPUT rule 2 .*iptables -L -n -v.*; but the flow is blocked whichever way it matches: iptables drops/);
    assert.deepEqual((r.eitherWay as { decidedBy: { text: string } }).decidedBy.text, "Chain INPUT (policy DROP)");
    assert.ok(r.fixes.some((f) => f.command.startsWith("iptables --insert INPUT")), JSON.stringify(r.fixes));
  });
  it("an undecidable rule that decides makes the verdict indeterminate and names it", () => {
    const r = checkIptables(save("-A INPUT -m recent --rcheck --name bad -j DROP"), flow);
    assert.equal(r.verdict, "indeterminate");
    assert.equal(r.status, "indeterminate");
    assert.deepEqual(r.decidedBy, { table: "filter", chain: "INPUT", rule: 1, target: "DROP", policy: null, text: "-A INPUT -m recent --rcheck --name bad -j DROP" });
    assert.match(r.summary, /If it applies, INPUT rule 1 drops it; if not, the INPUT policy ACCEPT accepts it\.$/);
  });
  it("names the undecidable rule, the rule that decides for certain either way, and fixes both", () => {
    // Both rules drop exactly this port, so both may be deleted (is-deletable-blocker.ts).
    const text = save("-A INPUT -p tcp -m tcp --dport 10250 -m set --match-set bad src -j DROP\n-A INPUT -p tcp -m tcp --dport 10250 -j DROP");
    const r = checkIptables(text, flow);
    assert.equal(r.verdict, "indeterminate");
    assert.deepEqual(r.decidedBy, { table: "filter", chain: "INPUT", rule: 1, target: "DROP", policy: null, text: "-A INPUT -p tcp -m tcp --dport 10250 -m set --match-set bad src -j DROP" });
    assert.deepEqual((r.eitherWay as { decidedBy: unknown }).decidedBy, { table: "filter", chain: "INPUT", rule: 2, target: "DROP", policy: null, text: "-A INPUT -p tcp -m tcp --dport 10250 -j DROP" });
    assert.match(r.summary, /blocked whichever way it matches: .*at INPUT rule 2 .*; INPUT rule 1, which could not be decided, may drop it first; more than one thing blocks it, so run every fix, in this order: iptables --delete INPUT 2, then iptables --delete INPUT 1\./);
    assert.ok(r.assumptions.some((a) => /^INPUT rule 1 could not be decided \(-m set .*\); if it applies, it decides first, with the same verdict\.$/.test(a)), r.assumptions.join("\n"));
    // Both are deleted, so the fix works whether or not the source is in the set.
    assert.deepEqual(r.fixes.map((f) => f.command).slice(0, 2), ["iptables --delete INPUT 2", "iptables --delete INPUT 1"]);
    assert.match(r.fixes[1]!.description, /which blocks the flow if it matches \(-m set/);
  });
  it("names the policy, either way, when only an undecidable rule would accept first", () => {
    const r = checkIptables(save("-A INPUT -p tcp -m tcp --dport 10250 -m limit --limit 10/sec -j ACCEPT"), flow);
    assert.deepEqual([r.verdict, (r.decidedBy as { rule: number }).rule, (r.eitherWay as { decidedBy: { target: string } }).decidedBy.target], ["indeterminate", 1, "policy"]);
    assert.match(r.summary, /the INPUT policy ACCEPT accepts it; INPUT rule 1, which could not be decided, may accept it first\./);
  });
  // An undecidable rule decided nothing: "policy" with its rule number would misname it (the
  // contract keeps "policy" for rule null). It is named by its own target as the input shows it.
  describe("decidedBy.target of an undecidable rule stays in the contract's set; its own target is ruleTarget", () => {
    it("an undecidable jump: the chain it jumps to; the summary says what each way ends in", () => {
      const r = checkIptables(save("-A INPUT -m set --match-set bad src -j CUSTOM-BLOCK\n-A CUSTOM-BLOCK -p tcp -m tcp --dport 10250 -j DROP", "ACCEPT", "CUSTOM-BLOCK"), flow);
      assert.equal(r.verdict, "indeterminate");
      assert.deepEqual(r.decidedBy, { table: "filter", chain: "INPUT", rule: 1, target: "policy", policy: null, text: "-A INPUT -m set --match-set bad src -j CUSTOM-BLOCK", ruleTarget: "CUSTOM-BLOCK" });
      assert.match(r.summary, /If it applies, CUSTOM-BLOCK rule 1 drops it; if not, the INPUT policy ACCEPT accepts it\.$/);
    });
    it("an undecidable RETURN in INPUT: RETURN, and the policy it hands the packet to in the summary", () => {
      const r = checkIptables(save("-A INPUT -m set --match-set skip src -j RETURN\n-A INPUT -p tcp -m tcp --dport 10250 -j ACCEPT", "DROP"), flow);
      assert.equal(r.verdict, "indeterminate");
      const d = r.decidedBy as Record<string, unknown>;
      assert.deepEqual([d.rule, d.target, d.policy, d.ruleTarget], [1, "policy", null, "RETURN"]);
      assert.match(r.summary, /If it applies, the INPUT policy DROP drops it; if not, INPUT rule 2 accepts it\.$/);
    });
    // `iptables -L INPUT` lists one chain; iptables-save declares every chain, so there the same
    // jump is invalid input (parse-iptables.test.ts).
    it("a jump to a chain the listing does not show: that chain's name", () => {
      const list = "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\nnum   pkts bytes target     prot opt in     out     source               destination\n1        0     0 NOSUCHCHAIN  tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:10250\n";
      const r = checkIptables(list, flow);
      assert.equal(r.verdict, "indeterminate");
      const d = r.decidedBy as Record<string, unknown>;
      assert.deepEqual([d.rule, d.target, d.policy, d.ruleTarget], [1, "policy", null, "NOSUCHCHAIN"]);
    });
    // Finding 6: `-L` without -v, every interface hidden; the summary once read "If it applies the
    // flow ends in indeterminate, otherwise in indeterminate."
    it("-L without -v, an undecidable jump whose both ways meet more undecidable rules: what each way may end in", () => {
      const list = [
        "Chain INPUT (policy ACCEPT)",
        "num  target     prot opt source               destination",
        "1    DROP       tcp  --  10.224.0.5           anywhere             tcp dpt:10250",
        "2    CUSTOM-BLOCK  tcp  --  anywhere             anywhere             multiport dports 10250,10255 /* block kubelet */",
        "3    REJECT     tcp  --  anywhere             anywhere             tcp dpt:10250 reject-with tcp-reset",
        "",
        "Chain CUSTOM-BLOCK (1 references)",
        "num  target     prot opt source               destination",
        "1    RETURN     all  --  10.0.0.0/8           anywhere",
        "2    DROP       all  --  anywhere             anywhere",
      ].join("\n");
      const { destination: _d, ...noDest } = flow;
      const r = checkIptables(list, noDest);
      assert.equal(r.verdict, "indeterminate");
      const d = r.decidedBy as Record<string, unknown>;
      assert.deepEqual([d.chain, d.rule, d.target, d.policy, (d as { ruleTarget?: string }).ruleTarget], ["INPUT", 2, "policy", null, "CUSTOM-BLOCK"]);
      assert.doesNotMatch(r.summary, /ends in indeterminate/);
      assert.match(r.summary, /If it applies, CUSTOM-BLOCK rule 1 cannot be decided either for the same reason, and the flow may be accepted, dropped or rejected; if not, INPUT rule 3 cannot be decided either for the same reason, and the flow may be accepted or rejected\.$/);
    });
    it("across jumps, gotos, RETURN, NFQUEUE, loops and hidden interfaces", () => {
      const texts = [
        save("-A INPUT -m limit --limit 1/sec -g CHK\n-A CHK -j RETURN", "DROP", "CHK"),
        save("-A INPUT -m recent --rcheck -j NFQUEUE --queue-num 1"),
        save("-A INPUT -m set --match-set a src -j MARK --set-xmark 0x1/0xffffffff\n-A INPUT -m mark --mark 0x1 -j DROP"),
        save("-A INPUT -j A\n-A A -j B\n-A B -j A", "ACCEPT", "A B"),
        "Chain INPUT (policy DROP)\nnum  target     prot opt source               destination\n1    KUBE-FIREWALL  all  --  anywhere             anywhere\n2    ACCEPT     tcp  --  anywhere             anywhere             tcp dpt:10250\n",
      ];
      for (const text of texts) {
        const r = checkIptables(text, flow);
        const d = r.decidedBy as { target: string; rule: number | null; text: string; ruleTarget?: string };
        assert.ok(["ACCEPT", "DROP", "REJECT", "policy"].includes(d.target), `${JSON.stringify(d)}\n${text}`);
        if (d.rule !== null && d.target === "policy") assert.ok(d.ruleTarget !== undefined && d.text.includes(d.ruleTarget), `${JSON.stringify(d)}\n${text}`);
      }
    });
  });
  it("a -d match without --destination is undecidable unless it is loopback", () => {
    const { destination: _d, ...noDest } = flow;
    assert.equal(checkIptables(save("-A INPUT -d 10.0.0.4/32 -j DROP"), noDest).verdict, "indeterminate");
    assert.equal(checkIptables(save("-A INPUT -d 127.0.0.0/8 -j DROP"), noDest).verdict, "allowed");
  });
  it("a loop of gotos does not hang", () => {
    const r = checkIptables(save("-A INPUT -g A\n-A A -g B\n-A B -j A", "ACCEPT", "A B"), flow);
    assert.equal(r.verdict, "indeterminate");
  });
  it("a jump to a chain the listing does not include is indeterminate only if it could matter", () => {
    const list = "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\nnum   pkts bytes target     prot opt in     out     source               destination\n1        0     0 KUBE-FIREWALL  all  --  *      *       0.0.0.0/0            0.0.0.0/0\n";
    const r = checkIptables(list, flow);
    assert.equal(r.verdict, "indeterminate");
    assert.match(r.summary, /KUBE-FIREWALL is not in the input/);
  });
  it("the REJECT type decides what the client sees", () => {
    const r = checkIptables(save("-A INPUT -p tcp -j REJECT --reject-with icmp-host-prohibited"), flow);
    assert.match(r.summary, /no route to host/);
    assert.match(checkIptables(save("-A INPUT -p tcp -j DROP"), flow).summary, /i\/o timeout/);
  });
  it("names the chain asked for, and refuses one the input lacks", () => {
    assert.throws(() => checkIptables(save(""), { ...flow, chain: "FORWARD" }), /chain FORWARD is not in the input/);
  });
  describe("nat PREROUTING before filter INPUT (§4.3)", () => {
    // iptables-save v1.8.9 with a nat table: the DNAT certainly takes every new TCP :10250 away.
    const natSave = (rules: string, chains = "", filterRules = "") => `# Generated by iptables-save v1.8.9 (nf_tables) on Wed Nov 25 13:23:09 2026
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
${chains.split(" ").filter(Boolean).map((c) => `:${c} - [0:0]\n`).join("")}${rules}
COMMIT
# Completed on Wed Nov 25 13:23:09 2026
# Generated by iptables-save v1.8.9 (nf_tables) on Wed Nov 25 13:23:09 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
${filterRules}COMMIT
# Completed on Wed Nov 25 13:23:09 2026
`;
    const dnat = "-A PREROUTING -p tcp -m tcp --dport 10250 -j DNAT --to-destination 10.0.0.9:8080";
    const { destination: _d, ...noDest } = flow;
    // Finding 2 (dnat.save): once BLOCKED by INPUT rule 1, with a delete that changed nothing.
    it("a DNAT to another host that certainly applies: filter INPUT never sees it, so no INPUT rule is blamed: indeterminate, the FORWARD chain and that host decide", () => {
      const r = checkIptables(natSave(dnat, "", "-A INPUT -p tcp -m tcp --dport 10250 -j DROP\n"), flow);
      assert.deepEqual([r.verdict, r.status, r.effect], ["indeterminate", "indeterminate", null]);
      assert.deepEqual(r.decidedBy, { table: "nat", chain: "PREROUTING", rule: 1, target: "policy", policy: null, text: dnat, ruleTarget: "DNAT" });
      assert.match(r.summary, /^filter INPUT never sees .*: nat PREROUTING rule 1 \("-A PREROUTING .*"\) forwards it to 10\.0\.0\.9:8080 \(DNAT\) before routing, so the FORWARD chain and that host decide\.$/);
      assert.deepEqual(r.fixes, []);
      // Without --destination the address may be the node's own: the summary says how to tell.
      assert.match(checkIptables(natSave(dnat), noDest).summary, /unless 10\.0\.0\.9 is this node's own address: give --destination to tell/);
      // Reached through a jump it is certain too.
      const jumped = checkIptables(natSave("-A PREROUTING -j KUBE-SERVICES\n-A KUBE-SERVICES -p tcp -m tcp --dport 10250 -j DNAT --to-destination 10.0.0.9", "KUBE-SERVICES"), flow);
      assert.deepEqual([jumped.verdict, (jumped.decidedBy as { chain: string }).chain], ["indeterminate", "KUBE-SERVICES"]);
    });
    // Finding 2 (redirect.save): once ALLOWED with a warning, though filter INPUT drops port 8080.
    it("a REDIRECT, or a DNAT to the node's own address, is walked through filter INPUT with the rewritten port", () => {
      for (const rule of [
        "-A PREROUTING -p tcp -m tcp --dport 10250 -j REDIRECT --to-ports 8080",
        "-A PREROUTING -p tcp -m tcp --dport 10250 -j DNAT --to-destination 10.0.0.4:8080",
        "-A PREROUTING -p tcp -m tcp --dport 10250 -j DNAT --to-destination :8080",
      ]) {
        const r = checkIptables(natSave(rule, "", "-A INPUT -p tcp -m tcp --dport 8080 -j DROP\n"), flow);
        assert.deepEqual([r.verdict, r.status, r.effect], ["blocked", "problem", "drop"], rule);
        assert.deepEqual(r.decidedBy, { table: "filter", chain: "INPUT", rule: 1, target: "DROP", policy: null, text: "-A INPUT -p tcp -m tcp --dport 8080 -j DROP" }, rule);
        assert.match(r.summary, /at INPUT rule 1, after nat PREROUTING rule 1 \(".*"\) rewrote it to .*8080 \((REDIRECT|DNAT)\)/, rule);
        assert.ok(r.assumptions.some((a) => /the walk used the rewritten connection \(port 8080, conntrack state DNAT\)/.test(a)), r.assumptions.join("\n"));
        // The rule drops exactly the rewritten port: deleting it opens the flow.
        assert.equal(r.fixes[0]!.command, "iptables --delete INPUT 1", rule);
      }
      const open = checkIptables(natSave("-A PREROUTING -p tcp -m tcp --dport 10250 -j REDIRECT --to-ports 8080"), flow);
      assert.deepEqual([open.verdict, open.status], ["allowed", "ok"]);
      assert.match(open.summary, /accepts it, after nat PREROUTING rule 1 .* rewrote it to this node's port 8080 \(REDIRECT\)/);
    });
    it("the rewritten connection has conntrack state DNAT, as kubelet's localnet rule reads it", () => {
      const r = checkIptables(natSave("-A PREROUTING -p tcp -m tcp --dport 10250 -j REDIRECT --to-ports 8080", "", "-A INPUT -m conntrack --ctstate DNAT -j ACCEPT\n-A INPUT -j DROP\n"), flow);
      assert.deepEqual([r.verdict, (r.decidedBy as { rule: number }).rule], ["allowed", 1]);
    });
    // The code's rule for what cannot be decided: followed both ways; where the ways end alike
    // the verdict stands, where they differ it depends on the rule, which is named.
    it("one that may apply and would change the outcome makes the verdict indeterminate, naming the nat rule", () => {
      for (const [rules, chain, rule] of [
        ["-A PREROUTING -p tcp -m tcp --dport 10250 -m set --match-set redirect src -j DNAT --to-destination 10.0.0.9:8080", "PREROUTING", 1],
        [`-A PREROUTING -m set --match-set skip src -j RETURN\n${dnat}`, "PREROUTING", 2],
        [`-A PREROUTING -m set --match-set skip src -j ACCEPT\n${dnat}`, "PREROUTING", 2],
        [`-A PREROUTING -m set --match-set svc src -j SVC\n-A SVC ${dnat.slice("-A PREROUTING ".length)}`, "SVC", 1],
      ] as const) {
        const r = checkIptables(natSave(rules, "SVC"), flow);
        assert.deepEqual([r.verdict, r.status], ["indeterminate", "indeterminate"], rules);
        const d = r.decidedBy as { table: string; chain: string; rule: number; target: string; ruleTarget: string };
        assert.deepEqual([d.table, d.chain, d.rule, d.target, d.ruleTarget], ["nat", chain, rule, "policy", "DNAT"], rules);
        assert.match(r.summary, /nat PREROUTING rule|nat SVC rule/, rules);
      }
    });
    it("one that may apply but ends the same stays an assumption and the status ok", () => {
      const r = checkIptables(natSave("-A PREROUTING -p tcp -m tcp --dport 10250 -m set --match-set r src -j REDIRECT --to-ports 8080"), flow);
      assert.deepEqual([r.verdict, r.status], ["allowed", "ok"]);
      assert.ok(r.assumptions.some((a) => /may rewrite .*the verdict is the same whether or not it applies/.test(a)), r.assumptions.join("\n"));
    });
    it("one that cannot apply is not mentioned: another interface, an earlier certain RETURN", () => {
      for (const rules of [`-A PREROUTING -i eth1 ${dnat.slice("-A PREROUTING ".length)}`, `-A PREROUTING -j RETURN\n${dnat}`]) {
        const r = checkIptables(natSave(rules), flow);
        assert.equal(r.status, "ok", rules);
        assert.ok(!r.assumptions.some((a) => /DNAT/.test(a)), rules);
      }
    });
  });
  it("a raw NOTRACK on another interface does not make the packet UNTRACKED", () => {
    const text = "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -i eth1 -p tcp -m tcp --dport 10250 -j CT --notrack\nCOMMIT\n" + save("-A INPUT -m conntrack --ctstate NEW -j ACCEPT", "DROP");
    assert.equal(checkIptables(text, flow).verdict, "allowed");
  });
  it("a rule in a ufw chain is fixed through ufw, not iptables --delete", () => {
    const r = checkIptables(save("-A INPUT -j ufw-user-input\n-A ufw-user-input -p tcp -m tcp --dport 10250 -j DROP", "DROP", "ufw-user-input"), flow);
    assert.deepEqual(r.fixes.map((f) => f.command), ["ufw insert 1 allow from 10.1.2.3 to any port 10250 proto tcp"]);
  });
});
