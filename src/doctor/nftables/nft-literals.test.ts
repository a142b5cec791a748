import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DoctorInputError } from "../input-error.js";
import { checkNftables } from "./check-nftables.js";
import { parseNftRuleset } from "./parse-nft-ruleset.js";

const flow = { source: "10.1.2.3", destination: "10.0.0.4", port: 10250, protocol: "tcp" as const, inInterface: "eth0" };
/** One inet input chain as `nft list ruleset` prints it: the rules stand on lines 4, 5, ... */
const inet = (rules: string[], policy = "accept", sets = "") =>
  `table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy ${policy};\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n${sets}}\n`;
const decided = (r: ReturnType<typeof checkNftables>) => [r.verdict, r.effect, r.decidedBy?.rule ?? null];
const inputError = (line: number | undefined, what: RegExp) => (e: unknown) =>
  e instanceof DoctorInputError && e.line === line && what.test(`${e.message} ${e.expected ?? ""}`);

describe("nftables literals: an address or port nft would refuse is an input error on its line", () => {
  it("an IPv4 address with a number past 255, a port past 65535", () => {
    assert.throws(() => parseNftRuleset(inet(["tcp dport 22 accept", "ip saddr 10.0.0.300 drop"])), inputError(5, /ip saddr 10\.0\.0\.300: .*not an IPv4 address.*an IPv4 address, prefix/));
    assert.throws(() => parseNftRuleset(inet(["tcp dport 99999 drop"])), inputError(4, /tcp dport 99999: 99999 is more than 65535.*a port 0-65535/));
    assert.throws(() => parseNftRuleset(inet(["tcp sport 1024-70000 drop"])), inputError(4, /70000 is more than 65535/));
  });

  it("a prefix longer than the address, a range that starts past its end, an address of the other family", () => {
    assert.throws(() => parseNftRuleset(inet(["ip saddr 10.0.0.0/33 drop"])), inputError(4, /\/33 is not a prefix length .*0-32/));
    assert.throws(() => parseNftRuleset(inet(["ip saddr 10.0.0.0/x drop"])), inputError(4, /not a prefix length/));
    assert.throws(() => parseNftRuleset(inet(["ip saddr 10.0.0.9-10.0.0.1 drop"])), inputError(4, /starts past its end/));
    assert.throws(() => parseNftRuleset(inet(["tcp dport 11000-10000 drop"])), inputError(4, /starts past its end/));
    assert.throws(() => parseNftRuleset(inet(["ip saddr fd00::1 drop"])), inputError(4, /not an IPv4 address/));
    assert.throws(() => parseNftRuleset(inet(["ip6 saddr 10.0.0.1 drop"])), inputError(4, /not an IPv6 address/));
    assert.throws(() => parseNftRuleset(inet(["meta l4proto 300 drop"])), inputError(4, /300 is more than 255/));
  });

  it("in anonymous sets, concatenations, comparisons and verdict maps", () => {
    assert.throws(() => parseNftRuleset(inet(["ip saddr { 10.0.0.1, 10.0.0.256 } drop"])), inputError(4, /10\.0\.0\.256/));
    assert.throws(() => parseNftRuleset(inet(["ip saddr . tcp dport { 10.0.0.1 . 99999 } drop"])), inputError(4, /tcp dport 99999/));
    assert.throws(() => parseNftRuleset(inet(["tcp dport > 70000 drop"])), inputError(4, /70000 is more than 65535/));
    assert.throws(() => parseNftRuleset(inet(["tcp dport vmap { 22 : accept, 99999 : drop }"])), inputError(4, /tcp dport 99999/));
    assert.throws(() => parseNftRuleset(inet(["ip daddr 10.0.0.1.5 drop"])), inputError(4, /10\.0\.0\.1\.5 is not an address/));
  });

  it("in named sets and maps, by their type: on the elements' line, and on an add element command's", () => {
    const set = (type: string, elements: string) => `\tset allowed {\n\t\ttype ${type}\n\t\tflags interval\n\t\telements = { ${elements} }\n\t}\n`;
    // The set follows the chain (lines 1-5): its `elements` line is line 9.
    assert.throws(() => parseNftRuleset(inet(["ip saddr @allowed accept"], "drop", set("ipv4_addr", "10.0.0.0/8, 10.0.0.300"))), inputError(9, /set allowed: ipv4_addr 10\.0\.0\.300/));
    assert.throws(() => parseNftRuleset(inet(["ip saddr . tcp dport @allowed accept"], "drop", set("ipv4_addr . inet_service", "10.0.0.1 . 65536"))), inputError(9, /inet_service 65536/));
    assert.throws(() => parseNftRuleset(inet(["ip saddr @allowed accept"], "drop", set("typeof ip saddr", "10.0.0.0/40").replace("type typeof", "typeof"))), inputError(9, /\/40/));
    assert.throws(() => parseNftRuleset(inet(["tcp dport vmap @ports"], "drop", "\tmap ports {\n\t\ttype inet_service : verdict\n\t\telements = { 22 : accept, 70000 : drop }\n\t}\n")), inputError(8, /map ports: inet_service 70000/));
    const file = `table inet filter {\n\tset allowed {\n\t\ttype ipv4_addr\n\t}\n}\nadd element inet filter allowed { 10.0.0.1 }\nadd element inet filter allowed { 10.0.0.999 }\n`;
    assert.throws(() => parseNftRuleset(file), inputError(7, /10\.0\.0\.999/));
    // An element of a type the doctor does not check is left alone.
    assert.doesNotThrow(() => parseNftRuleset(inet(["meta mark @marks drop"], "accept", set("mark", "0x1, 0x2"))));
  });

  it("in the JSON listing: a match, a named set's element; the error names the item", () => {
    const json = (items: unknown[]) => JSON.stringify({ nftables: [
      { table: { family: "inet", name: "filter", handle: 1 } },
      { chain: { family: "inet", table: "filter", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "accept" } },
      ...items,
    ] }, null, 1);
    const match = (protocol: string, field: string, right: unknown) => ({ match: { op: "==", left: { payload: { protocol, field } }, right } });
    const rule = (expr: unknown[]) => ({ rule: { family: "inet", table: "filter", chain: "input", handle: 2, expr } });
    assert.throws(() => parseNftRuleset(json([rule([match("ip", "saddr", "10.0.0.300"), { drop: null }])])), (e: unknown) => e instanceof DoctorInputError && /item 3 of "nftables".*ip saddr 10\.0\.0\.300/.test(e.message) && e.line !== undefined && e.line > 1);
    assert.throws(() => parseNftRuleset(json([rule([match("tcp", "dport", { range: [10000, 70000] }), { drop: null }])])), (e: unknown) => e instanceof DoctorInputError && /tcp dport 10000-70000: 70000 is more than 65535/.test(e.message));
    assert.throws(() => parseNftRuleset(json([rule([match("ip", "saddr", { prefix: { addr: "10.0.0.0", len: 33 } }), { drop: null }])])), (e: unknown) => e instanceof DoctorInputError && /\/33/.test(e.message));
    assert.throws(() => parseNftRuleset(json([{ set: { family: "inet", table: "filter", name: "s", handle: 3, type: ["ipv4_addr", "inet_service"], elem: [{ concat: ["10.0.0.1", 99999] }] } }])), (e: unknown) => e instanceof DoctorInputError && /set s: inet_service 99999/.test(e.message));
  });

  it("a word nft has no symbol for (ct state neww, meta l4proto tcpp): nft refuses it, so it never silently fails to match", () => {
    assert.throws(() => parseNftRuleset(inet(["ct state neww drop"])), inputError(4, /ct state neww: neww is not a conntrack state nft knows.*a conntrack state \(invalid, established/));
    assert.throws(() => parseNftRuleset(inet(["ct state { established, relatd } accept"])), inputError(4, /relatd/));
    assert.throws(() => parseNftRuleset(inet(["ct status dnatt accept"])), inputError(4, /dnatt is not a conntrack status/));
    assert.throws(() => parseNftRuleset(inet(["fib daddr type locl accept"])), inputError(4, /locl is not a fib address type/));
    assert.throws(() => parseNftRuleset(inet(["meta nfproto ipv5 drop"])), inputError(4, /ipv5 is not a netfilter protocol/));
    // Protocol names come from the machine's /etc/protocols: an unknown one is undecidable, not an error.
    assert.deepEqual(decided(checkNftables(inet(["meta l4proto tcpp drop"]), flow)), ["indeterminate", null, 1]);
    for (const name of ["icmpv6", "comp", "hopopt", "ipv4"]) assert.deepEqual(decided(checkNftables(inet([`meta l4proto ${name} drop`]), flow)), ["allowed", "accept", null], name);
    assert.throws(() => parseNftRuleset(inet(["ct state vmap { established : accept, nwe : drop }"])), inputError(4, /nwe/));
  });

  it("the values nft lists as numbers (no symbol for them) are read as numbers", () => {
    // nft lists `ct state 0x100`, `meta nfproto 7`, `fib daddr type 12` for values without a name.
    assert.deepEqual(decided(checkNftables(inet(["ct state 0x100 drop", "meta nfproto 7 drop", "fib daddr type 12 drop", "meta l4proto 132 drop"]), flow)), ["allowed", "accept", null]);
    assert.deepEqual(decided(checkNftables(inet(["meta l4proto 6 tcp dport 10250 drop"]), flow)), ["blocked", "drop", 1]);
    assert.deepEqual(decided(checkNftables(inet(["ct state 0x9 drop"]), flow)), ["blocked", "drop", 1]); // new | invalid
    assert.deepEqual(decided(checkNftables(inet(["fib daddr type 2 drop"]), flow)), ["blocked", "drop", 1]); // local
    assert.deepEqual(decided(checkNftables(inet(["meta nfproto 2 tcp dport 10250 drop"]), flow)), ["blocked", "drop", 1]); // ipv4
    assert.deepEqual(decided(checkNftables(inet(["ct status 0x4 drop"]), flow)), ["allowed", "accept", null]); // assured: not a new connection's
  });

  it("a NAT target nft would refuse", () => {
    const nat = (rule: string) => `table ip nat {\n\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\t${rule}\n\t}\n}\n`;
    assert.throws(() => parseNftRuleset(nat("tcp dport 10250 dnat to 10.224.0.300:8080")), inputError(4, /dnat to 10\.224\.0\.300:8080/));
    assert.throws(() => parseNftRuleset(nat("tcp dport 10250 redirect to :80800")), inputError(4, /80800 is more than 65535/));
  });
});

describe("nftables literals: a host name (nft -N) is undecidable, never a non-match", () => {
  it("makes the rule indeterminate, naming it and suggesting nft list ruleset without -N", () => {
    const r = checkNftables(inet(["ip saddr aks-nodepool1-vmss000002 tcp dport 10250 drop"]), flow);
    assert.deepEqual([...decided(r), r.status, r.decidedBy?.verdict], ["indeterminate", null, 1, "indeterminate", "drop"]);
    assert.match(r.summary, /ip saddr aks-nodepool1-vmss000002 is a host name \(nft -N .*without -N \(nft list ruleset\)/);
    assert.match(r.summary, /If it applies they are dropped, otherwise accepted\./);
  });

  it("in a set, a range of names, a destination, and the JSON listing alike", () => {
    for (const rule of ["ip saddr { 192.168.9.9, node-7.internal } drop", "ip daddr aks-nodepool1-vmss000002 drop", "ip saddr aks-nodepool1-vmss000002/24 drop"]) {
      assert.deepEqual(decided(checkNftables(inet([rule]), flow)), ["indeterminate", null, 1], rule);
    }
    const json = JSON.stringify({ nftables: [
      { table: { family: "inet", name: "filter", handle: 1 } },
      { chain: { family: "inet", table: "filter", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "accept" } },
      { rule: { family: "inet", table: "filter", chain: "input", handle: 2, expr: [{ match: { op: "==", left: { payload: { protocol: "ip", field: "saddr" } }, right: "aks-nodepool1-vmss000002" } }, { drop: null }] } },
    ] });
    const r = checkNftables(json, flow);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.match(r.summary, /host name/);
  });

  it("does not matter where an earlier rule decided, or where an address of the set already matches", () => {
    assert.deepEqual(decided(checkNftables(inet(["tcp dport 10250 accept", "ip saddr aks-nodepool1-vmss000002 drop"]), flow)), ["allowed", "accept", 1]);
    assert.deepEqual(decided(checkNftables(inet(["ip saddr { 10.1.2.3, node-7 } drop"]), flow)), ["blocked", "drop", 1]);
    // Another protocol's rule never matches whatever its address.
    assert.deepEqual(decided(checkNftables(inet(["ip saddr node-7 udp dport 53 drop"]), flow)), ["allowed", "accept", null]);
  });

  it("a service name it does not know (nft -S) is undecidable too; ssh and https it knows", () => {
    const r = checkNftables(inet(["tcp dport kubelet drop"]), flow);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.match(r.summary, /service name .*without -S/);
    assert.deepEqual(decided(checkNftables(inet(["tcp dport { ssh, https } drop"]), flow)), ["allowed", "accept", null]);
  });
});
