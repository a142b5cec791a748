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
  it("an undecidable rule that cannot change the outcome leaves the verdict decided, with an assumption", () => {
    const r = checkIptables(save("-A INPUT -m set --match-set allow src -j ACCEPT"), flow);
    assert.equal(r.verdict, "allowed");
    assert.ok(r.assumptions.some((a) => /INPUT rule 1 could not be decided/.test(a)));
  });
  it("an undecidable rule that decides makes the verdict indeterminate and names it", () => {
    const r = checkIptables(save("-A INPUT -m recent --rcheck --name bad -j DROP"), flow);
    assert.equal(r.verdict, "indeterminate");
    assert.equal(r.status, "indeterminate");
    assert.deepEqual(r.decidedBy, { chain: "INPUT", rule: 1, target: "DROP", policy: null, text: "-A INPUT -m recent --rcheck --name bad -j DROP" });
    assert.match(r.summary, /If it applies the flow ends in drop, otherwise in accept/);
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
  it("a nat DNAT of the port is flagged in the assumptions", () => {
    const text = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -m tcp --dport 10250 -j DNAT --to-destination 10.9.9.9\nCOMMIT\n" + save("");
    assert.ok(checkIptables(text, flow).assumptions.some((a) => /DNAT/.test(a)));
  });
  it("a rule in a ufw chain is fixed through ufw, not iptables --delete", () => {
    const r = checkIptables(save("-A INPUT -j ufw-user-input\n-A ufw-user-input -p tcp -m tcp --dport 10250 -j DROP", "DROP", "ufw-user-input"), flow);
    assert.deepEqual(r.fixes.map((f) => f.command), ["ufw insert 1 allow from 10.1.2.3 to any port 10250 proto tcp"]);
  });
});
