// findNftOutputBlock: the nftables walk of a connection the node opens itself (the agent's to its
// server), on the output and postrouting hooks (and netdev egress), with the fix that opens it.
// The kernel agrees with it: test/doctor-nftables-output-kernel.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findNftOutputBlock, type NftOutputFlow } from "./check-output.js";
import { checkNftables } from "./check-nftables.js";

const flow: NftOutputFlow = { source: "10.224.0.5", destination: "10.225.0.4", port: 8132, protocol: "tcp", outInterface: "eth0" };
const table = (family: string, name: string, ...chains: string[]) => `table ${family} ${name} {\n${chains.join("")}}\n`;
const chain = (name: string, head: string, rules: string[]) =>
  `\tchain ${name} {\n\t\t${head}\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n`;
const output = (rules: string[], policy = "accept") => chain("output", `type filter hook output priority filter; policy ${policy};`, rules);
const input = (rules: string[], policy = "drop") => chain("input", `type filter hook input priority filter; policy ${policy};`, rules);

describe("nftables output path", () => {
  it("a drop of the server's port on the output hook is the block; the fix accepts the connection at the top of that chain, or deletes the rule", () => {
    const text = table("inet", "filter", output(["oifname \"lo\" accept", "ip daddr 10.225.0.4 tcp dport 8132 drop # handle 7"]));
    const b = findNftOutputBlock(text, flow)!;
    assert.equal(b.effect, "drop");
    assert.equal(b.where, "nft inet filter output rule 2 (ip daddr 10.225.0.4 tcp dport 8132 drop)");
    assert.deepEqual(b.rule, { command: "nft", table: "inet filter", chain: "output", rule: 2, text: "ip daddr 10.225.0.4 tcp dport 8132 drop", handle: 7 });
    assert.deepEqual(b.fixes.map((f) => f.command), [
      "nft insert rule inet filter output ip daddr 10.225.0.4 tcp dport 8132 accept",
      "nft delete rule inet filter output handle 7",
    ]);
    assert.match(b.fixes[0]!.description, /^Accept the connection to 10\.225\.0\.4 port 8132\/tcp at the top of inet filter output, ahead of the rule that drops it/);
    assert.deepEqual(b.steps, ["nft insert rule inet filter output ip daddr 10.225.0.4 tcp dport 8132 accept"]);
  });

  it("the output chain's drop policy blocks what no rule accepts; established traffic and other servers' accepts do not help a new connection", () => {
    const text = table("inet", "filter", output(["ct state established,related accept", "ip daddr 10.225.0.9 accept"], "drop"));
    const b = findNftOutputBlock(text, flow)!;
    assert.equal(b.where, "the nft inet filter output policy drop");
    assert.equal(b.rule.rule, null);
    assert.deepEqual(b.fixes.map((f) => f.command), ["nft insert rule inet filter output ip daddr 10.225.0.4 tcp dport 8132 accept"]);
  });

  it("oifname matches the interface the connection leaves by; iifname never matches a packet the node sends", () => {
    assert.equal(findNftOutputBlock(table("inet", "filter", output(['oifname "eth1" drop'])), flow), null);
    assert.equal(findNftOutputBlock(table("inet", "filter", output(['oifname "eth*" drop'])), flow)!.effect, "drop");
    assert.equal(findNftOutputBlock(table("inet", "filter", output(['iifname "eth0" drop'])), flow), null);
    assert.equal(findNftOutputBlock(table("inet", "filter", output(['iifname != "eth0" drop'])), flow)!.effect, "drop");
  });

  it("input, prerouting and forward chains do not see what the node sends; input-path checks ignore output chains", () => {
    const text = table("inet", "filter", input([]), chain("forward", "type filter hook forward priority filter; policy drop;", []), output([]));
    assert.equal(findNftOutputBlock(text, flow), null);
    const r = checkNftables(table("inet", "filter", input(["tcp dport 10250 accept"]), output([], "drop")), { source: "10.224.0.4", destination: "10.224.0.5", port: 10250, protocol: "tcp", inInterface: "eth0" });
    assert.equal(r.verdict, "allowed");
  });

  it("route chains on output and filter chains on postrouting block too, with reject's own effect", () => {
    const route = chain("mangle_out", "type route hook output priority mangle; policy accept;", ["tcp dport 8132 reject with tcp reset"]);
    const b = findNftOutputBlock(table("ip", "mangle", route), flow)!;
    assert.equal(b.effect, "reject");
    assert.equal(b.where, "nft ip mangle mangle_out rule 1 (tcp dport 8132 reject with tcp reset)");
    const post = chain("post", "type filter hook postrouting priority filter; policy accept;", ["ip daddr 10.225.0.0/16 drop"]);
    assert.equal(findNftOutputBlock(table("inet", "f", post), flow)!.where, "nft inet f post rule 1 (ip daddr 10.225.0.0/16 drop)");
    // An accept ends only its base chain: a later one still drops.
    const both = table("inet", "f", output(["tcp dport 8132 accept"]), post);
    assert.equal(findNftOutputBlock(both, flow)!.rule.chain, "post");
  });

  it("of two chains at one priority the one listed second runs first, as the kernel registers them (seen in a namespace)", () => {
    const a = chain("a", "type filter hook output priority filter; policy accept;", ["tcp dport 8132 drop"]);
    const b = chain("b", "type filter hook output priority filter; policy accept;", ["tcp dport 8132 reject with tcp reset"]);
    assert.equal(findNftOutputBlock(table("inet", "t", a, b), flow)!.rule.chain, "b");
    assert.equal(findNftOutputBlock(table("inet", "t", b, a), flow)!.rule.chain, "a");
    // The input path too: the later table's chain decides.
    const drop = table("inet", "t1", input(["tcp dport 10250 drop"], "accept"));
    const reject = table("inet", "t2", input(["tcp dport 10250 reject"], "accept"));
    const flowIn = { source: "10.224.0.4", destination: "10.224.0.5", port: 10250, protocol: "tcp" as const, inInterface: "eth0" };
    assert.equal(checkNftables(drop + reject, flowIn).effect, "reject");
    assert.equal(checkNftables(reject.replace("t2", "t0") + drop, flowIn).effect, "drop");
  });

  it("a netdev egress chain sees only its device's packets", () => {
    const egress = (device: string) => table("netdev", "edge", chain("out", `type filter hook egress device "${device}" priority filter; policy accept;`, ["ip daddr 10.225.0.4 drop"]));
    assert.equal(findNftOutputBlock(egress("eth0"), flow)!.rule.table, "netdev edge");
    assert.equal(findNftOutputBlock(egress("eth1"), flow), null);
  });

  it("a rule the walk cannot decide either way (the socket's owner) is no explanation: null", () => {
    assert.equal(findNftOutputBlock(table("inet", "filter", output(["meta skuid 0 drop"])), flow), null);
    // ...unless it changes nothing: the policy drops either way.
    assert.equal(findNftOutputBlock(table("inet", "filter", output(["meta skuid 0 drop"], "drop")), flow)!.where, "the nft inet filter output policy drop");
  });

  it("ct status dnat is decided from the nat chains on the output hook", () => {
    const rules = ["ct status dnat accept"];
    assert.equal(findNftOutputBlock(table("inet", "filter", output(rules, "drop")), flow)!.effect, "drop");
    const nat = table("ip", "nat", chain("out", "type nat hook output priority -100; policy accept;", ["tcp dport 8132 dnat to 10.225.0.7"]));
    assert.equal(findNftOutputBlock(nat + table("inet", "filter", output(rules, "drop")), flow), null, "a dnat on the output hook may let it through: undecided");
    // A dnat on prerouting never touches what the node sends.
    const pre = table("ip", "nat", chain("pre", "type nat hook prerouting priority -100; policy accept;", ["tcp dport 8132 dnat to 10.225.0.7"]));
    assert.equal(findNftOutputBlock(pre + table("inet", "filter", output(rules, "drop")), flow)!.effect, "drop");
  });

  it("a dnat on the output hook or an snat on postrouting may change what later chains see: their address and port matches are undecided", () => {
    const dnat = table("ip", "nat", chain("out", "type nat hook output priority -100; policy accept;", ["ip daddr 10.225.0.4 tcp dport 8132 dnat to 10.225.0.7"]));
    // Found by review in a namespace: the kernel connected, since filter saw 10.225.0.7.
    assert.equal(findNftOutputBlock(dnat + table("inet", "filter", output(["ip daddr 10.225.0.4 drop"])), flow), null);
    // A chain of an earlier priority than the nat chain sees the address as sent.
    const early = chain("early", "type filter hook output priority -200; policy accept;", ["ip daddr 10.225.0.4 drop"]);
    assert.equal(findNftOutputBlock(dnat + table("inet", "f", early), flow)!.rule.chain, "early");
    // A dnat for another address changes nothing for this connection.
    assert.equal(findNftOutputBlock(dnat.replace("10.225.0.4 tcp", "10.96.0.1 tcp") + table("inet", "filter", output(["ip daddr 10.225.0.4 drop"])), flow)!.effect, "drop");
    // Found by review too: a netdev egress chain sees the source after postrouting's snat.
    const snat = table("ip", "nat", chain("post", "type nat hook postrouting priority srcnat; policy accept;", ["oifname \"eth0\" snat to 10.224.0.9"]));
    const egress = table("netdev", "edge", chain("out", 'type filter hook egress device "eth0" priority filter; policy accept;', ["ip saddr 10.224.0.5 drop"]));
    assert.equal(findNftOutputBlock(snat + egress, flow), null);
    assert.equal(findNftOutputBlock(snat + egress.replace("ip saddr 10.224.0.5 drop", "ip daddr 10.225.0.4 drop"), flow)!.rule.table, "netdev edge", "the destination is not rewritten by an snat");
  });

  it("fib daddr type: the server is another machine (unicast), not a local address", () => {
    assert.equal(findNftOutputBlock(table("inet", "filter", output(["fib daddr type local drop"])), flow), null);
    assert.equal(findNftOutputBlock(table("inet", "filter", output(["fib daddr type unicast drop"])), flow)!.effect, "drop");
  });

  it("IPv6: ip6 tables and inet tables are walked for an IPv6 server, ip tables are not", () => {
    const v6: NftOutputFlow = { ...flow, source: "fd00::5", destination: "fd00:1::4" };
    assert.equal(findNftOutputBlock(table("ip", "f", output([], "drop")), v6), null);
    const b = findNftOutputBlock(table("ip6", "f", output([], "drop")), v6)!;
    assert.deepEqual(b.fixes.map((f) => f.command), ["nft insert rule ip6 f output ip6 daddr fd00:1::4 tcp dport 8132 accept"]);
    assert.equal(findNftOutputBlock(table("inet", "f", output([], "drop")), { ...flow, destination: "fd00:1::4" }), null, "families differ: no walk");
  });

  it("a block in firewalld's table gets firewalld's listing (its policies), never an nft change it would undo", () => {
    const text = table("inet", "firewalld", chain("filter_OUTPUT", "type filter hook output priority filter + 10; policy accept;", ["ip daddr 10.225.0.4 reject with icmpx admin-prohibited"]));
    const b = findNftOutputBlock(text, flow)!;
    assert.equal(b.fixes.length, 1);
    assert.equal(b.fixes[0]!.command, "firewall-cmd --list-all-policies; firewall-cmd --direct --get-all-rules");
    assert.match(b.fixes[0]!.description, /firewalld owns table inet firewalld/);
    assert.match(b.fixes[0]!.description, /destination address="10\.225\.0\.4" port port="8132" protocol="tcp" accept/);
  });

  it("iptables-nft's tables get iptables commands of the right family", () => {
    const b = findNftOutputBlock(table("ip", "filter", chain("OUTPUT", "type filter hook output priority filter; policy drop;", [])), flow)!;
    assert.deepEqual(b.fixes.map((f) => f.command), ["iptables -I OUTPUT -d 10.225.0.4 -p tcp --dport 8132 -j ACCEPT"]);
    const v6 = findNftOutputBlock(table("ip6", "filter", chain("OUTPUT", "type filter hook output priority filter; policy drop;", [])), { ...flow, source: "fd00::5", destination: "fd00:1::4" })!;
    assert.deepEqual(v6.fixes.map((f) => f.command), ["ip6tables -I OUTPUT -d fd00:1::4 -p tcp --dport 8132 -j ACCEPT"]);
    // The input path's fix names ip6tables for ip6 tables as well.
    const r = checkNftables(table("ip6", "filter", chain("INPUT", "type filter hook input priority filter; policy drop;", [])), { source: "fd00::4", destination: "fd00::5", port: 10250, protocol: "tcp", inInterface: "eth0" });
    assert.deepEqual(r.fixes.map((f) => f.command), ["ip6tables -I INPUT -s fd00::4 -p tcp --dport 10250 -j ACCEPT"]);
  });
});
