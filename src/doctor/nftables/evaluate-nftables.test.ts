import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkNftables } from "./check-nftables.js";

const flow = { source: "10.1.2.3", destination: "10.0.0.4", port: 10250, protocol: "tcp" as const, inInterface: "eth0" };
/** One inet input chain as `nft list ruleset` prints it. */
const inet = (rules: string[], policy = "drop") =>
  `table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy ${policy};\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n}\n`;
const decided = (r: ReturnType<typeof checkNftables>) => [r.verdict, r.effect, r.decidedBy?.rule ?? null];

describe("nftables: matches on another protocol than the flow's", () => {
  const basic = inet([
    "ct state established,related accept",
    "ct state invalid drop",
    'iifname "lo" accept',
    "icmp type echo-request accept",
    "icmpv6 type { nd-neighbor-solicit, nd-router-advert, nd-neighbor-advert } accept",
    "meta l4proto ipv6-icmp accept",
    "tcp dport 22 accept",
    "ip saddr 10.0.0.0/8 tcp dport 10250 accept",
  ]);

  it("an icmp or icmpv6 rule does not match a TCP SYN, so the kubelet rule decides", () => {
    assert.deepEqual(decided(checkNftables(basic, flow)), ["allowed", "accept", 8]);
    assert.deepEqual(decided(checkNftables(basic, { ...flow, source: "192.168.1.1" })), ["blocked", "drop", null]);
  });

  it("icmp and icmpv6 rules are decided for IPv6 and UDP flows too", () => {
    assert.deepEqual(decided(checkNftables(basic, { ...flow, source: "fd00::5", destination: "fd00::4" })), ["blocked", "drop", null]);
    assert.deepEqual(decided(checkNftables(basic, { ...flow, protocol: "udp" })), ["blocked", "drop", null]);
  });

  it("udp, udplite, sctp and dccp matches never match a TCP SYN, negated or compared", () => {
    const r = checkNftables(inet(["udp dport >= 1024 drop", "udp dport != 53 drop", "sctp dport 10250 drop", "udplite dport 10250 drop", "dccp dport 10250 drop", "udp length 20 drop"], "accept"), flow);
    assert.deepEqual(decided(r), ["allowed", "accept", null]);
  });

  it("a udp comparison still decides a UDP flow", () => {
    assert.deepEqual(decided(checkNftables(inet(["udp dport >= 1024 drop"], "accept"), { ...flow, protocol: "udp" })), ["blocked", "drop", 1]);
  });

  it("meta l4proto, ip protocol and meta nfproto are decided both ways", () => {
    assert.deepEqual(decided(checkNftables(inet(["meta l4proto { icmp, ipv6-icmp, udp } drop", "ip protocol icmp drop", "meta nfproto ipv6 drop", "meta l4proto tcp accept"]), flow)), ["allowed", "accept", 4]);
    assert.deepEqual(decided(checkNftables(inet(["ip protocol tcp accept"]), flow)), ["allowed", "accept", 1]);
    assert.deepEqual(decided(checkNftables(inet(["ip protocol tcp accept"]), { ...flow, source: "fd00::5", destination: "fd00::4" })), ["blocked", "drop", null]);
  });

  it("a rate limit after an icmp match cannot matter for TCP; an unknown expression on its own stays indeterminate", () => {
    assert.deepEqual(decided(checkNftables(inet(["icmp type echo-request limit rate 5/second accept", "tcp dport 10250 accept"]), flow)), ["allowed", "accept", 2]);
    assert.deepEqual(decided(checkNftables(inet(["ct count over 10 drop", "tcp dport 10250 accept"]), flow)), ["indeterminate", null, 1]);
  });

  it("the JSON listing (nft -j) decides icmp, icmpv6 and sctp payload matches the same way", () => {
    const rule = (handle: number, expr: unknown[]) => ({ rule: { family: "inet", table: "filter", chain: "input", handle, expr } });
    const payload = (protocol: string, field: string, right: unknown) => ({ match: { op: "==", left: { payload: { protocol, field } }, right } });
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.6", release_name: "Lester Gooch #5", json_schema_version: 1 } },
        { table: { family: "inet", name: "filter", handle: 1 } },
        { chain: { family: "inet", table: "filter", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "drop" } },
        rule(2, [payload("icmp", "type", "echo-request"), { accept: null }]),
        rule(3, [payload("icmpv6", "type", { set: ["nd-neighbor-solicit", "nd-router-advert"] }), { accept: null }]),
        rule(4, [payload("sctp", "dport", 10250), { drop: null }]),
        rule(5, [{ match: { op: "==", left: { meta: { key: "l4proto" } }, right: "ipv6-icmp" } }, { accept: null }]),
        rule(6, [payload("ip", "saddr", { prefix: { addr: "10.0.0.0", len: 8 } }), payload("tcp", "dport", 10250), { accept: null }]),
      ],
    });
    const r = checkNftables(json, flow);
    assert.deepEqual(decided(r), ["allowed", "accept", 5]);
    assert.equal(r.decidedBy?.text, "ip saddr 10.0.0.0/8 tcp dport 10250 accept");
    assert.deepEqual(decided(checkNftables(json, { ...flow, source: "192.168.1.1" })), ["blocked", "drop", null]);
  });
});

describe("nftables: tcp flags, decided for a new connection's SYN", () => {
  const hardening = [
    "ct state established,related accept",
    "tcp flags & (fin|syn|rst|ack) != syn ct state new drop",
    "tcp flags & (syn|ack) == syn|ack ct state new reject",
    "tcp flags & (fin|syn) == fin|syn drop",
    "tcp flags ! syn ct state new drop",
    "tcp flags != syn / fin,syn,rst,ack drop",
  ];

  it("hardening rules that drop malformed or non-SYN segments do not stop the SYN", () => {
    const r = checkNftables(inet([...hardening, "ip saddr 10.0.0.0/8 tcp dport 10250 accept"]), flow);
    assert.deepEqual(decided(r), ["allowed", "accept", 7]);
    assert.ok(r.assumptions.some((a) => /first TCP segment: tcp flags syn/.test(a)), r.assumptions.join("\n"));
    assert.deepEqual(decided(checkNftables(inet(hardening), flow)), ["blocked", "drop", null]);
  });

  it("a rule that picks the SYN out decides it", () => {
    assert.deepEqual(decided(checkNftables(inet(["tcp flags syn / fin,syn,rst,ack tcp dport 10250 reject with tcp reset"], "accept"), flow)), ["blocked", "reject", 1]);
    assert.deepEqual(decided(checkNftables(inet(["tcp flags & (fin | syn | rst | ack) == syn ip saddr 10.1.2.3 drop"], "accept"), flow)), ["blocked", "drop", 1]);
  });

  it("a flags match never matches UDP", () => {
    assert.deepEqual(decided(checkNftables(inet(["tcp flags ! syn drop", "tcp flags syn drop"], "accept"), { ...flow, protocol: "udp" })), ["allowed", "accept", null]);
  });

  it("with something still unknown the rule stays undecidable, unless the flags rule it out", () => {
    const mss = checkNftables(inet(["tcp flags syn tcp option maxseg size 1-535 drop", "tcp dport 10250 accept"]), flow);
    assert.deepEqual(decided(mss), ["indeterminate", null, 1]);
    assert.equal(mss.decidedBy?.verdict, "drop");
    assert.deepEqual(decided(checkNftables(inet(["tcp flags ! syn tcp option maxseg size 1-535 drop", "tcp option maxseg size 1-535 tcp flags ack drop", "tcp dport 10250 accept"]), flow)), ["allowed", "accept", 3]);
  });

  it("the JSON listing decides the same rules", () => {
    const rule = (handle: number, expr: unknown[]) => ({ rule: { family: "inet", table: "filter", chain: "input", handle, expr } });
    const flagsMatch = (op: string, mask: unknown, right: unknown) => ({ match: { op, left: mask === null ? { payload: { protocol: "tcp", field: "flags" } } : { "&": [{ payload: { protocol: "tcp", field: "flags" } }, mask] }, right } });
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.6", release_name: "Lester Gooch #5", json_schema_version: 1 } },
        { table: { family: "inet", name: "filter", handle: 1 } },
        { chain: { family: "inet", table: "filter", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "drop" } },
        rule(2, [flagsMatch("!=", ["fin", "syn", "rst", "ack"], "syn"), { match: { op: "in", left: { ct: { key: "state" } }, right: "new" } }, { drop: null }]),
        rule(3, [flagsMatch("==", { "|": ["syn", "ack"] }, { "|": ["syn", "ack"] }), { reject: null }]),
        rule(4, [flagsMatch("in", null, "syn"), { match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 10250 } }, { accept: null }]),
      ],
    });
    const r = checkNftables(json, flow);
    assert.deepEqual(decided(r), ["allowed", "accept", 3]);
    assert.equal(r.decidedBy?.text, "tcp flags syn tcp dport 10250 accept");
  });
});

// doctor-cli.md: an undecidable match makes the verdict indeterminate and names the rule, unless
// an earlier rule already decided, also where both ways end alike: `eitherWay` and the summary
// keep what the flow ends in whichever way it matches.
const eitherWay = (r: ReturnType<typeof checkNftables>) => {
  const e = r.eitherWay as { verdict: string; effect: string | null; decidedBy: { chain: string; rule: number | null; verdict: string; policy: string | null } };
  return [e.verdict, e.effect, e.decidedBy.rule];
};

describe("nftables: an undecidable rule is followed both ways", () => {
  /** Tables of base chains, each `[name, priority, policy, rules]`, plus user chains `[name, rules]`. */
  const chains = (bases: [string, number, string, string[]][], users: [string, string[]][] = []) =>
    `table inet filter {\n${[
      ...bases.map(([name, prio, policy, rules]) => `\tchain ${name} {\n\t\ttype filter hook input priority ${prio}; policy ${policy};\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n`),
      ...users.map(([name, rules]) => `\tchain ${name} {\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n`),
    ].join("\n")}}\n`;

  it("an undecidable accept before the rule that accepts anyway: indeterminate, allowed either way by the certain rule", () => {
    const r = checkNftables(inet(["limit rate 10/second accept", "tcp dport 10250 accept"]), flow);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.equal(r.status, "indeterminate");
    assert.deepEqual(eitherWay(r), ["allowed", "accept", 2]);
    assert.match(r.summary, /depends on rule 1 .*; but the flow is allowed whichever way it matches: .*rule 1 "limit rate 10\/second accept" in inet filter chain input, which could not be decided, may accept them first/);
    assert.ok(r.assumptions.some((a) => /rule 1 "limit rate 10\/second accept" .* could not be decided \(the evaluator cannot decide "limit rate 10\/second"\); if it applies, it decides first, with the same verdict/.test(a)), r.assumptions.join("\n"));
  });

  it("an undecidable drop in a chain whose policy drops anyway: indeterminate, blocked either way by the policy, with the fix", () => {
    const r = checkNftables(inet(["ip saddr 10.1.2.3 limit rate over 5/second drop", "tcp dport 22 accept"]), flow);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.deepEqual(eitherWay(r), ["blocked", "drop", null]);
    const e = r.eitherWay as { decidedBy: { verdict: string; policy: string } };
    assert.deepEqual([e.decidedBy.verdict, e.decidedBy.policy], ["policy", "drop"]);
    assert.match(r.summary, /rule 1 .* which could not be decided, may drop them first/);
    assert.equal(r.fixes[0]?.command, "nft insert rule inet filter input ip saddr 10.1.2.3 tcp dport 10250 accept");
  });

  it("ways that end differently stay indeterminate, and the summary says where each ends", () => {
    const r = checkNftables(inet(["ct count over 10 drop", "tcp dport 10250 accept"]), flow);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.match(r.summary, /If it applies they are dropped, otherwise accepted\./);
    // drop versus reject is a different effect for the client: still indeterminate.
    assert.deepEqual(decided(checkNftables(inet(["limit rate 10/second reject", "tcp dport 10250 drop"], "accept"), flow)), ["indeterminate", null, 1]);
  });

  it("follows an undecidable accept into the next base chain, which decides either way", () => {
    const blocked = checkNftables(chains([["early", 0, "accept", ["limit rate 10/second accept"]], ["late", 10, "drop", ["tcp dport 22 accept"]]]), flow);
    assert.deepEqual([blocked.verdict, blocked.decidedBy?.chain, blocked.decidedBy?.rule], ["indeterminate", "early", 1]);
    assert.deepEqual([...eitherWay(blocked), (blocked.eitherWay as { decidedBy: { chain: string } }).decidedBy.chain], ["blocked", "drop", null, "late"]);
    const allowed = checkNftables(chains([["early", 0, "accept", ["limit rate 10/second accept"]], ["late", 10, "drop", ["tcp dport 10250 accept"]]]), flow);
    assert.deepEqual([allowed.verdict, allowed.decidedBy?.chain, allowed.decidedBy?.rule], ["indeterminate", "early", 1]);
    assert.deepEqual([...eitherWay(allowed), (allowed.eitherWay as { decidedBy: { chain: string } }).decidedBy.chain], ["allowed", "accept", 1, "late"]);
  });

  it("an undecidable jump into a chain that drops, in a chain whose policy drops: the assumptions name the rule that would decide", () => {
    const r = checkNftables(chains([["input", 0, "drop", ["limit rate 10/second jump kubelet", "tcp dport 22 accept"]]], [["kubelet", ["tcp dport 10250 drop"]]]), flow);
    assert.deepEqual([r.verdict, r.effect, r.decidedBy?.chain, r.decidedBy?.rule], ["indeterminate", null, "input", 1]);
    assert.deepEqual(eitherWay(r), ["blocked", "drop", null]);
    assert.ok(r.assumptions.some((a) => /rule 1 "limit rate 10\/second jump kubelet" .* if it applies, rule 1 "tcp dport 10250 drop" in inet filter chain kubelet decides first/.test(a)), r.assumptions.join("\n"));
  });

  it("gives up as indeterminate past the bound on walks, naming the first undecidable rule", () => {
    // Each `limit ... jump noop` leads on both ways: n of them need 2^n walks.
    const jumps = (n: number) => chains([["input", 0, "drop", [...Array.from({ length: n }, () => "limit rate 10/second jump noop"), "tcp dport 10250 accept"]]], [["noop", ["counter"]]]);
    const four = checkNftables(jumps(4), flow);
    assert.deepEqual([decided(four), eitherWay(four)], [["indeterminate", null, 1], ["allowed", "accept", 5]]);
    const many = checkNftables(jumps(9), flow);
    assert.deepEqual(decided(many), ["indeterminate", null, 1]);
    // A row of undecidable drops costs one walk each, so a long one is still decided.
    const row = checkNftables(inet([...Array.from({ length: 40 }, (_, i) => `ip saddr 10.1.2.${i} limit rate over 5/second drop`), "tcp dport 22 accept"]), flow);
    assert.deepEqual([decided(row), eitherWay(row)], [["indeterminate", null, 4], ["blocked", "drop", null]]);
  });

  it("a verdict map that cannot be looked up is indeterminate, not skipped", () => {
    const vmap = inet(["ip daddr . tcp dport vmap { 10.0.0.4 . 10250 : drop }", "tcp dport 10250 accept"]);
    assert.deepEqual(decided(checkNftables(vmap, flow)), ["blocked", "drop", 1]);
    const { destination: _, ...noDestination } = flow;
    const r = checkNftables(vmap, noDestination);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.equal((r.decidedBy as { ruleVerdict?: string } | null)?.ruleVerdict, "vmap");
  });
});

describe("nftables: decidedBy for an indeterminate verdict", () => {
  it("names the undecidable rule with that rule's own verdict, in the shape of a decided one", () => {
    const r = checkNftables(inet(["ct count over 10 drop", "tcp dport 10250 accept"]), flow);
    assert.equal(r.verdict, "indeterminate");
    assert.deepEqual(r.decidedBy, { table: "inet filter", chain: "input", rule: 1, verdict: "drop", policy: null, text: "ct count over 10 drop" });
    assert.equal(checkNftables(inet(["limit rate 10/second accept"]), flow).decidedBy?.verdict, "accept");
    assert.equal(checkNftables(inet(["limit rate 10/second reject with tcp reset"]), flow).decidedBy?.verdict, "reject");
  });

  it("a rule that passes control on is verdict \"policy\" (the contract's word; which policy is not known) and says how in ruleVerdict", () => {
    const jumps = `table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tlimit rate 10/second jump kubelet\n\t}\n\n\tchain kubelet {\n\t\tct count over 5 return\n\t\tdrop\n\t}\n}\n`;
    const at = (r: ReturnType<typeof checkNftables>) => {
      const d = r.decidedBy as { chain?: string; rule?: number | null; verdict?: string; policy?: string | null; ruleVerdict?: string } | null;
      return [d?.chain, d?.rule, d?.verdict, d?.policy, d?.ruleVerdict];
    };
    assert.deepEqual(at(checkNftables(jumps, flow)), ["input", 1, "policy", null, "jump"]);
    const direct = jumps.replace("limit rate 10/second jump kubelet", "tcp dport 10250 goto kubelet");
    assert.deepEqual(at(checkNftables(direct, flow)), ["kubelet", 1, "policy", null, "return"]);
  });

  it("a jump loop names the jump rule, not a policy of a chain that has none", () => {
    const loop = `table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tjump a\n\t}\n\n\tchain a {\n\t\tjump a\n\t}\n}\n`;
    const r = checkNftables(loop, flow);
    assert.equal(r.verdict, "indeterminate");
    assert.deepEqual([r.decidedBy?.chain, r.decidedBy?.rule, r.decidedBy?.verdict, (r.decidedBy as { ruleVerdict?: string } | null)?.ruleVerdict, r.decidedBy?.text], ["a", 1, "policy", "jump", "jump a"]);
  });

  it("an undecidable rule whose verdict is continue changes nothing", () => {
    assert.deepEqual(decided(checkNftables(inet(["limit rate 10/second continue", "tcp dport 10250 drop"], "accept"), flow)), ["blocked", "drop", 2]);
  });
});

describe("nftables: queue hands the packet to userspace", () => {
  const json = (exprs: unknown[][]) => JSON.stringify({
    nftables: [
      { table: { family: "inet", name: "filter", handle: 1 } },
      { chain: { family: "inet", table: "filter", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "accept" } },
      ...exprs.map((expr, i) => ({ rule: { family: "inet", table: "filter", chain: "input", handle: i + 2, expr } })),
    ],
  });
  const dport = { match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 10250 } };

  it("a matching queue rule makes the verdict indeterminate and names it, in every form nft lists", () => {
    for (const q of ["queue", "queue num 3", "queue to 1-3 bypass", "queue flags bypass,fanout to 1-3", "queue num 2 fanout"]) {
      const r = checkNftables(inet([`tcp dport 10250 ${q}`, "tcp dport 10250 accept"], "accept"), flow);
      assert.deepEqual(decided(r), ["indeterminate", null, 1], q);
      assert.equal(r.status, "indeterminate");
      assert.deepEqual([r.decidedBy?.verdict, r.decidedBy?.policy, r.decidedBy?.ruleVerdict, r.decidedBy?.text], ["policy", null, "queue", `tcp dport 10250 ${q}`], q);
      assert.match(r.summary, /userspace program/);
    }
  });

  it("a queue rule that does not match changes nothing", () => {
    assert.deepEqual(decided(checkNftables(inet(["tcp dport 22 queue num 3", "tcp dport 10250 accept"]), flow)), ["allowed", "accept", 2]);
  });

  it("the JSON listing's queue statement is the same verdict", () => {
    const r = checkNftables(json([[dport, { queue: { num: 3, flags: ["bypass"] } }], [dport, { drop: null }]]), flow);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.equal(r.decidedBy?.text, "tcp dport 10250 queue flags bypass num 3");
    assert.deepEqual(decided(checkNftables(json([[dport, { queue: null }]]), flow)), ["indeterminate", null, 1]);
  });
});

describe("nftables: the packet mark", () => {
  it("a mark set by one rule is read by a later rule's meta mark match", () => {
    const r = checkNftables(inet(["tcp dport 10250 meta mark set 0x00008000", "meta mark 0x00008000 drop"], "accept"), flow);
    assert.deepEqual(decided(r), ["blocked", "drop", 2]);
    assert.equal(r.status, "problem");
  });

  it("follows mark set mark or/and/xor and matches with a mask, !=, sets and ranges", () => {
    const cases: [string[], unknown[]][] = [
      [["mark set mark or 0x8000", "meta mark & 0x00008000 == 0x00008000 drop"], ["blocked", "drop", 2]],
      [["meta mark set 0x00c0", "meta mark set meta mark and 0xffbf or 0x4000", "meta mark and 0x4000 != 0x4000 drop", "meta mark 0x4080 reject"], ["blocked", "reject", 4]],
      [["meta mark set meta mark xor 0x3", "meta mark { 0x1, 0x3 } drop"], ["blocked", "drop", 2]],
      [["meta mark set 0x5", "meta mark 0x1-0x4 drop", "meta mark != 0x5 drop", "meta mark 0x1-0x7 reject"], ["blocked", "reject", 4]],
      [["meta mark 0x0 accept"], ["allowed", "accept", 1]],
    ];
    for (const [rules, expect] of cases) assert.deepEqual(decided(checkNftables(inet(rules, "accept"), flow)), expect, rules.join(" ; "));
  });

  it("the mark stays on the packet across jumps, gotos and into later base chains", () => {
    const text = `table inet filter {
\tchain set-mark {
\t\tmeta mark set 0x8000
\t}
\tchain goto-mark {
\t\tmeta mark set mark or 0x1
\t\treturn
\t}
\tchain early {
\t\ttype filter hook prerouting priority -150; policy accept;
\t\ttcp dport 10250 jump set-mark
\t\tmeta mark 0x8000 goto goto-mark
\t\tdrop
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tmeta mark 0x8001 drop
\t}
}
`;
    const r = checkNftables(text, flow);
    assert.deepEqual([r.verdict, r.decidedBy?.chain, r.decidedBy?.rule], ["blocked", "input", 1]);
  });

  it("a mark the doctor cannot compute makes a later mark match undecidable", () => {
    for (const set of ["meta mark set ct mark", "meta mark set ct mark and 0xff", "meta mark set tcp dport map { 10250 : 0x1, 22 : 0x2 } counter"]) {
      const r = checkNftables(inet([`tcp dport 10250 ${set}`, "meta mark 0x00008000 drop"], "accept"), flow);
      assert.deepEqual(decided(r), ["indeterminate", null, 2], set);
      assert.match(r.summary, /packet mark/);
    }
  });

  it("ct mark set changes the connection's mark, not the packet's", () => {
    assert.deepEqual(decided(checkNftables(inet(["tcp dport 10250 ct mark set 0x8000", "meta mark 0x8000 drop"], "accept"), flow)), ["allowed", "accept", null]);
  });

  it("a mark set by a rule whose match cannot be decided is followed both ways", () => {
    const r = checkNftables(inet(["tcp dport 10250 limit rate 10/second meta mark set 0x8000", "meta mark 0x8000 drop"], "accept"), flow);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.deepEqual([r.decidedBy?.verdict, r.decidedBy?.ruleVerdict], ["policy", "continue"]);
  });

  it("the JSON listing's mangle statement and masked match are the same", () => {
    const mark = { meta: { key: "mark" } };
    const dport = { match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 10250 } };
    const json = (exprs: unknown[][]) => JSON.stringify({
      nftables: [
        { table: { family: "inet", name: "filter", handle: 1 } },
        { chain: { family: "inet", table: "filter", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "accept" } },
        ...exprs.map((expr, i) => ({ rule: { family: "inet", table: "filter", chain: "input", handle: i + 2, expr } })),
      ],
    });
    const set = (value: unknown) => [dport, { mangle: { key: mark, value } }];
    const r = checkNftables(json([set(32768), [{ match: { op: "==", left: mark, right: 32768 } }, { drop: null }]]), flow);
    assert.deepEqual(decided(r), ["blocked", "drop", 2]);
    const masked = checkNftables(json([set({ "|": [{ "&": [mark, 0xffff7fff] }, 0x8000] }), [{ match: { op: "==", left: { "&": [mark, 0x8000] }, right: 0x8000 } }, { drop: null }]]), flow);
    assert.deepEqual(decided(masked), ["blocked", "drop", 2]);
    assert.equal(masked.decidedBy?.text, "meta mark & 0x00008000 == 32768 drop");
    const ct = checkNftables(json([set({ ct: { key: "mark" } }), [{ match: { op: "==", left: mark, right: 32768 } }, { drop: null }]]), flow);
    assert.deepEqual(decided(ct), ["indeterminate", null, 2]);
  });
});

// The ingress hook (netdev tables, and inet ones since nft 1.0.1) runs on the packet's device
// before prerouting: a drop there stops the connection before any input chain sees it.
describe("nftables: ingress chains come first, on their device", () => {
  const netdev = (device: string, rules: string[], policy = "accept") =>
    `table netdev nd {\n\tchain ingress {\n\t\ttype filter hook ingress ${device} priority filter; policy ${policy};\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n}\n`;
  const dropSource = netdev('device "eth0"', ["ip saddr 10.1.2.3 drop"]);

  it("a drop in a netdev ingress chain on the packet's device blocks the flow", () => {
    const r = checkNftables(dropSource, flow);
    assert.deepEqual([...decided(r), r.decidedBy?.table, r.decidedBy?.chain, r.status], ["blocked", "drop", 1, "netdev nd", "ingress", "problem"]);
    assert.ok(r.assumptions.some((a) => /arrives on eth0 \(--in-interface\), so ingress chain netdev nd ingress sees it/.test(a)), r.assumptions.join("\n"));
    assert.equal(r.fixes[0]?.command, "nft insert rule netdev nd ingress ip saddr 10.1.2.3 tcp dport 10250 accept");
    // `ip saddr` matches IPv4 packets only, in netdev as anywhere.
    assert.deepEqual(decided(checkNftables(dropSource, { ...flow, source: "fd00::5", destination: "fd00::4" })), ["allowed", "accept", null]);
  });

  it("runs before prerouting and input, whatever their priorities, and its accept ends only itself", () => {
    const input = inet(["tcp dport 10250 accept"], "drop").replace("priority filter", "priority -400");
    const r = checkNftables(dropSource + input, flow);
    assert.deepEqual([...decided(r), r.decidedBy?.table], ["blocked", "drop", 1, "netdev nd"]);
    const acceptThenDrop = checkNftables(netdev('device "eth0"', ["ip saddr 10.1.2.3 accept"]) + inet([], "drop"), flow);
    assert.deepEqual([...decided(acceptThenDrop), acceptThenDrop.decidedBy?.table], ["blocked", "drop", null, "inet filter"]);
  });

  it("an inet table's ingress chain is walked too; devices = { ... } lists several", () => {
    const inetIngress = "table inet raw {\n\tchain ingress {\n\t\ttype filter hook ingress devices = { eth1, eth0 } priority -500; policy accept;\n\t\ttcp dport 10250 drop\n\t}\n}\n";
    assert.deepEqual(decided(checkNftables(inetIngress, flow)), ["blocked", "drop", 1]);
  });

  it("a chain on another device does not see the packet, and the assumptions say so", () => {
    const r = checkNftables(dropSource, { ...flow, inInterface: "eth1" });
    assert.deepEqual(decided(r), ["allowed", null, null]);
    assert.ok(r.assumptions.some((a) => /arrives on eth1 \(--in-interface\), so ingress chain netdev nd ingress, attached to eth0, does not see it/.test(a)), r.assumptions.join("\n"));
    assert.doesNotMatch(r.summary, /has no filter chain/);
  });

  it("a chain whose device the input does not show is followed both ways: indeterminate, not allowed", () => {
    const json = (rules: unknown[][], dev?: string) => JSON.stringify({
      nftables: [
        { table: { family: "netdev", name: "nd", handle: 1 } },
        { chain: { family: "netdev", table: "nd", name: "ingress", handle: 1, type: "filter", hook: "ingress", prio: 0, policy: "accept", ...(dev ? { dev } : {}) } },
        ...rules.map((expr, i) => ({ rule: { family: "netdev", table: "nd", chain: "ingress", handle: i + 2, expr } })),
      ],
    });
    const drop = [{ match: { op: "==", left: { payload: { protocol: "ip", field: "saddr" } }, right: "10.1.2.3" } }, { drop: null }];
    const unknown = checkNftables(json([drop]), flow);
    assert.deepEqual([...decided(unknown), unknown.status, unknown.decidedBy?.chain], ["indeterminate", null, null, "indeterminate", "ingress"]);
    assert.match(unknown.summary, /depends on whether ingress chain netdev nd ingress sees the packet: the ingress chain's device is not in the input.* If it applies they are dropped, otherwise accepted\./);
    const known = checkNftables(json([drop], "eth0"), flow);
    assert.deepEqual(decided(known), ["blocked", "drop", 1]);
    assert.equal(known.decidedBy?.text, 'ip saddr 10.1.2.3 drop');
    // Allowed whichever way: still indeterminate (doctor-cli.md), saying it is allowed either way.
    const harmless = checkNftables(json([drop]), { ...flow, source: "10.9.9.9" });
    assert.deepEqual([harmless.verdict, (harmless.eitherWay as { verdict: string }).verdict], ["indeterminate", "allowed"]);
  });

  it("conntrack has not run at ingress: a ct state match there is undecidable", () => {
    const r = checkNftables(netdev('device "eth0"', ["ct state established,related accept", "tcp dport 10250 drop"]), flow);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.match(r.summary, /conntrack has not seen the packet yet at the ingress hook/);
  });
});

describe("nftables: ct status dnat|snat is decided from the ruleset's own NAT rules", () => {
  // firewalld's filter_INPUT: `ct status dnat accept` early, a catch-all reject at the end.
  const input = ["ct status dnat accept", "tcp dport 10250 reject with icmpx admin-prohibited"];
  const nat = (hook: string, rules: string[], family = "ip") =>
    `table ${family} nat {\n\tchain PREROUTING {\n\t\ttype nat hook ${hook} priority ${hook === "input" ? "srcnat" : "dstnat"}; policy accept;\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n\tchain DOCKER {\n\t\ttcp dport 10250 dnat to 172.17.0.2:10250\n\t}\n}\n`;
  const firewalld = inet(input, "accept");

  it("with no dnat or redirect anywhere, a connection sent to the node has no ct status dnat: the reject decides", () => {
    const r = checkNftables(firewalld, flow);
    assert.deepEqual(decided(r), ["blocked", "reject", 2]);
    assert.ok(r.assumptions.some((a) => /no ct status dnat/.test(a)), r.assumptions.join("\n"));
    // A table of another kind than nat on prerouting is no NAT: still decided.
    assert.deepEqual(decided(checkNftables(firewalld + nat("prerouting", ["tcp dport 10250 accept"]).replace("type nat", "type filter"), flow)), ["blocked", "reject", 2]);
  });

  it("a dnat elsewhere, or one that may apply, makes it indeterminate, naming the nat rule; a redirect to the node gives the connection ct status dnat", () => {
    // The connection is forwarded (evaluate-nftables.ts applyRewrite), or may be: the input chain
    // that would see it is not to blame.
    for (const [rule, why] of [
      ["tcp dport 10250 dnat to 10.0.0.9:8080", /forwards new TCP connections .* to 10\.0\.0\.9:8080: rule 1 .* in ip nat chain PREROUTING/],
      ["tcp dport 10250 xt target \"DNAT\"", /rule 1 .* in ip nat chain PREROUTING: .*xt target DNAT/],
      ["limit rate 5/second dnat to 10.0.0.9", /rule 1 .* in ip nat chain PREROUTING: .*limit rate 5\/second/],
      ["fib daddr type local jump DOCKER", /forwards new TCP connections .* to 172\.17\.0\.2:10250: rule 1 .* in ip nat chain DOCKER/],
    ] as const) {
      const r = checkNftables(firewalld + nat("prerouting", [rule]), flow);
      assert.deepEqual(decided(r), ["indeterminate", null, 1], rule);
      assert.equal(r.decidedBy?.table, "ip nat", rule);
      assert.match(r.summary, why, rule);
    }
    // Redirected to the node itself, the connection carries ct status dnat: firewalld accepts it.
    const redirected = checkNftables(firewalld + nat("prerouting", ["redirect to :8080"]), flow);
    assert.deepEqual([...decided(redirected), redirected.decidedBy?.chain], ["allowed", "accept", 1, "input"]);
    assert.ok(redirected.assumptions.some((a) => /ct status dnat: rule 1 "redirect to :8080"/.test(a)), redirected.assumptions.join("\n"));
    // Without --destination, an `ip daddr` match before the dnat cannot rule it out.
    const { destination: _, ...noDestination } = flow;
    assert.equal(checkNftables(firewalld + nat("prerouting", ["ip daddr 10.0.0.4 dnat to 10.0.0.9"]), noDestination).verdict, "indeterminate");
  });

  it("a dnat that cannot apply (another port, address, family, or not reached) leaves the verdict decided", () => {
    for (const rules of [["tcp dport 80 dnat to 10.0.0.9:8080"], ["ip daddr 10.96.0.1 dnat to 10.0.0.9"], ["udp dport 10250 redirect to :8080"], ["tcp dport 8080 jump DOCKER"], ["iifname \"docker0\" jump DOCKER"]]) {
      assert.deepEqual(decided(checkNftables(firewalld + nat("prerouting", rules), flow)), ["blocked", "reject", 2], rules.join());
    }
    assert.deepEqual(decided(checkNftables(firewalld + nat("prerouting", ["dnat to 10.0.0.9"], "ip6"), flow)), ["blocked", "reject", 2]);
    // DOCKER holds a dnat, but only a jump from a nat chain could reach it; output-hook dnat is for local traffic.
    assert.deepEqual(decided(checkNftables(firewalld + nat("output", ["dnat to 10.0.0.9"]), flow)), ["blocked", "reject", 2]);
  });

  it("a verdict map in a nat chain is looked up: only the chain it picks for the connection counts", () => {
    const vmap = "ip daddr . meta l4proto . th dport vmap { 10.0.0.10 . tcp . 10250 : jump DOCKER }";
    assert.deepEqual(decided(checkNftables(firewalld + nat("prerouting", [vmap]), flow)), ["blocked", "reject", 2]);
    assert.deepEqual(decided(checkNftables(firewalld + nat("prerouting", [vmap]), { ...flow, destination: "10.0.0.10" })), ["indeterminate", null, 1]);
    // Without --destination the lookup cannot be made: every chain the map names counts.
    const { destination: _, ...noDestination } = flow;
    assert.deepEqual(decided(checkNftables(firewalld + nat("prerouting", [vmap]), noDestination)), ["indeterminate", null, 1]);
  });

  it("where the input cannot be the whole ruleset (a jump to a chain it lacks), it stays indeterminate", () => {
    const r = checkNftables(inet([...input, "jump filter_INPUT_ZONES"], "accept"), flow);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.match(r.summary, /refers to chain filter_INPUT_ZONES .* not the whole ruleset/);
    assert.match(checkNftables(inet([...input, "ip saddr @allowed accept"], "accept"), flow).summary, /refers to set @allowed/);
  });

  it("where iptables-legacy rules apply too, their nat table may set it: indeterminate", () => {
    const r = checkNftables(firewalld, { ...flow, legacyRulesPresent: true });
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
    assert.match(r.summary, /iptables-legacy/);
  });

  it("ct status snat: decided where no snat or masquerade can apply on the input hook", () => {
    const snat = inet(["ct status snat accept", "tcp dport 10250 drop"], "accept");
    assert.deepEqual(decided(checkNftables(snat, flow)), ["blocked", "drop", 2]);
    assert.deepEqual(decided(checkNftables(snat + nat("postrouting", ["masquerade"]), flow)), ["blocked", "drop", 2]);
    assert.deepEqual(decided(checkNftables(snat + nat("input", ["ip saddr 10.0.0.0/8 snat to 10.0.0.1"]), flow)), ["indeterminate", null, 1]);
  });

  it("still undecidable at ingress, where conntrack has not run", () => {
    const r = checkNftables(`table netdev edge {\n\tchain in {\n\t\ttype filter hook ingress device "eth0" priority 0; policy accept;\n\t\tct status dnat accept\n\t\ttcp dport 10250 drop\n\t}\n}\n`, flow);
    assert.deepEqual(decided(r), ["indeterminate", null, 1]);
  });

  it("the JSON listing (nft -j) decides the same: a {\"dnat\": ...} statement keeps it open", () => {
    const rule = (table: string, chain: string, handle: number, expr: unknown[]) => ({ rule: { family: table === "nat" ? "ip" : "inet", table, chain, handle, expr } });
    const ctStatus = { match: { op: "in", left: { ct: { key: "status" } }, right: "dnat" } };
    const dport = { match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 10250 } };
    const items = (natRule: unknown[] | null) => JSON.stringify({
      nftables: [
        { table: { family: "inet", name: "firewalld", handle: 1 } },
        { chain: { family: "inet", table: "firewalld", name: "filter_INPUT", handle: 1, type: "filter", hook: "input", prio: 10, policy: "accept" } },
        rule("firewalld", "filter_INPUT", 2, [ctStatus, { accept: null }]),
        rule("firewalld", "filter_INPUT", 3, [{ reject: { type: "icmpx", expr: "admin-prohibited" } }]),
        ...(natRule === null ? [] : [
          { table: { family: "ip", name: "nat", handle: 2 } },
          { chain: { family: "ip", table: "nat", name: "PREROUTING", handle: 1, type: "nat", hook: "prerouting", prio: -100, policy: "accept" } },
          rule("nat", "PREROUTING", 2, natRule),
        ]),
      ],
    });
    assert.deepEqual(decided(checkNftables(items(null), flow)), ["blocked", "reject", 2]);
    assert.deepEqual(decided(checkNftables(items([dport, { dnat: { addr: "10.0.0.9", port: 8080 } }]), flow)), ["indeterminate", null, 1]);
    assert.deepEqual(decided(checkNftables(items([{ ...dport, match: { ...dport.match, right: 80 } }, { dnat: { addr: "10.0.0.9", port: 8080 } }]), flow)), ["blocked", "reject", 2]);
  });
});

describe("nftables: tcp sport is decided against the client's ephemeral port range, as doctor iptables does", () => {
  it("a range that holds every ephemeral port, or none, decides; one that holds some stays undecidable", () => {
    assert.deepEqual(decided(checkNftables(inet(["tcp sport 1-1023 drop", "tcp dport 10250 accept"]), flow)), ["allowed", "accept", 2]);
    assert.deepEqual(decided(checkNftables(inet(["tcp sport { 22, 1024-65535 } accept"]), flow)), ["allowed", "accept", 1]);
    assert.deepEqual(decided(checkNftables(inet(["tcp sport != 53 tcp dport 10250 reject"], "accept"), flow)), ["blocked", "reject", 1]);
    assert.deepEqual(decided(checkNftables(inet(["tcp sport 40000-50000 drop", "tcp dport 10250 accept"]), flow)), ["indeterminate", null, 1]);
    assert.match(checkNftables(inet(["tcp sport 40000-50000 drop", "tcp dport 10250 accept"]), flow).summary, /source port, which is any of 32768-60999/);
  });

  it("comparisons too, and the assumption names the range", () => {
    const r = checkNftables(inet(["tcp sport < 1024 drop", "tcp sport >= 1024 accept"]), flow);
    assert.deepEqual(decided(r), ["allowed", "accept", 2]);
    assert.ok(r.assumptions.some((a) => /ephemeral one, in Linux's default range 32768-60999/.test(a)), r.assumptions.join("\n"));
    assert.deepEqual(decided(checkNftables(inet(["tcp sport > 40000 drop", "tcp dport 10250 accept"]), flow)), ["indeterminate", null, 1]);
    // A udp sport match never matches a TCP SYN.
    assert.deepEqual(decided(checkNftables(inet(["udp sport 40000-50000 drop", "tcp dport 10250 accept"]), flow)), ["allowed", "accept", 2]);
  });
});

describe("nftables: chains before conntrack", () => {
  // Conntrack takes the packet at priority -200 on prerouting: a chain of a lower priority sees no
  // entry, which nft reads as ct state invalid (found by test/doctor-nftables-input-kernel.test.ts).
  const pre = (priority: string, rule: string) =>
    `table inet filter {\n\tchain pre {\n\t\ttype filter hook prerouting priority ${priority}; policy accept;\n\t\t${rule}\n\t}\n}\n`;
  it("before conntrack a SYN is ct state invalid, with no status bits; after it, new", () => {
    assert.deepEqual(decided(checkNftables(pre("raw", "ct state invalid drop"), flow)), ["blocked", "drop", 1]);
    assert.deepEqual(decided(checkNftables(pre("raw", "ct state new drop"), flow)), ["allowed", "accept", null]);
    assert.deepEqual(decided(checkNftables(pre("raw", "ct status dnat drop"), flow)), ["allowed", "accept", null]);
    assert.deepEqual(decided(checkNftables(pre("mangle", "ct state invalid drop"), flow)), ["allowed", "accept", null]);
    assert.deepEqual(decided(checkNftables(pre("mangle", "ct state new drop"), flow)), ["blocked", "drop", 1]);
  });
  it("at conntrack's own priority it cannot be told", () => {
    assert.equal(checkNftables(pre("-200", "ct state new drop"), flow).verdict, "indeterminate");
  });
});

describe("nftables: a dnat or redirect on prerouting rewrites the destination the later chains see", () => {
  // The audit's inputs: a redirect of 10250 to 8080 and an input chain that drops 8080; a dnat to another host.
  const natTable = (rules: string[], priority = "dstnat", family = "ip") =>
    `table ${family} nat {\n\tchain prerouting {\n\t\ttype nat hook prerouting priority ${priority}; policy accept;\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n}\n`;
  const redirect = natTable(["tcp dport 10250 redirect to :8080"]);

  it("a redirect to another port: the input chain is walked with that port, and the summary and assumptions name the nat rule", () => {
    const r = checkNftables(redirect + inet(["tcp dport 8080 drop"], "accept"), flow);
    assert.deepEqual([...decided(r), r.decidedBy?.table, r.decidedBy?.text], ["blocked", "drop", 1, "inet filter", "tcp dport 8080 drop"]);
    assert.match(r.summary, /rule 1 "tcp dport 10250 redirect to :8080" in ip nat chain prerouting redirects them to port 8080, and rule 1 "tcp dport 8080 drop" in inet filter chain input decides/);
    assert.ok(r.assumptions.some((a) => /rewrite was applied: rule 1 "tcp dport 10250 redirect to :8080" .* port 8080 instead of 10250/.test(a)), r.assumptions.join("\n"));
    // The fix accepts what the chain sees: port 8080.
    assert.equal(r.fixes[0]?.command, "nft insert rule inet filter input ip saddr 10.1.2.3 tcp dport 8080 accept");
    // A rule for the original port no longer matches it; one for the new port accepts it.
    assert.deepEqual(decided(checkNftables(redirect + inet(["tcp dport 10250 drop"], "accept"), flow)), ["allowed", "accept", null]);
    const allowed = checkNftables(redirect + inet(["tcp dport 8080 accept"]), flow);
    assert.deepEqual(decided(allowed), ["allowed", "accept", 1]);
    assert.match(allowed.summary, /redirects them to port 8080, and every base chain on the path accepts them/);
  });

  it("a dnat to the node's own address (--destination) is followed like a redirect", () => {
    const r = checkNftables(natTable(["tcp dport 10250 dnat to 10.0.0.4:8080"]) + inet(["tcp dport 8080 drop"], "accept"), flow);
    assert.deepEqual(decided(r), ["blocked", "drop", 1]);
    assert.match(r.summary, /rewrites the destination of them to port 8080/);
  });

  it("a dnat to another address: indeterminate, naming the nat rule and where it forwards them, never an input rule", () => {
    const r = checkNftables(natTable(["tcp dport 10250 dnat to 10.224.0.99:8080"]) + inet(["tcp dport 10250 drop"], "accept"), flow);
    assert.deepEqual([...decided(r), r.status, r.decidedBy?.table, r.decidedBy?.chain, r.decidedBy?.ruleVerdict], ["indeterminate", null, 1, "indeterminate", "ip nat", "prerouting", "dnat"]);
    assert.match(r.summary, /forwards new TCP connections from 10\.1\.2\.3 to port 10250 to 10\.224\.0\.99:8080: rule 1 .* in ip nat chain prerouting .* the forward hook .* decide/);
    assert.doesNotMatch(r.summary, /inet filter/);
    assert.deepEqual(r.fixes, []);
    // Without --destination a dnat's address cannot be told from the node's own.
    const { destination: _, ...noDestination } = flow;
    const unknown = checkNftables(natTable(["tcp dport 10250 dnat to 10.0.0.4:8080"]) + inet(["tcp dport 8080 drop"], "accept"), noDestination);
    assert.deepEqual([...decided(unknown), unknown.decidedBy?.table], ["indeterminate", null, 1, "ip nat"]);
    assert.match(unknown.summary, /give --destination/);
  });

  it("the JSON listing (nft -j) gives the same verdicts", () => {
    const json = (nat: unknown) => JSON.stringify({ nftables: [
      { table: { family: "ip", name: "nat", handle: 1 } },
      { chain: { family: "ip", table: "nat", name: "prerouting", handle: 1, type: "nat", hook: "prerouting", prio: -100, policy: "accept" } },
      { rule: { family: "ip", table: "nat", chain: "prerouting", handle: 2, expr: [{ match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 10250 } }, nat] } },
      { table: { family: "inet", name: "filter", handle: 2 } },
      { chain: { family: "inet", table: "filter", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "accept" } },
      { rule: { family: "inet", table: "filter", chain: "input", handle: 2, expr: [{ match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 8080 } }, { drop: null }] } },
    ] });
    const redirected = checkNftables(json({ redirect: { port: 8080 } }), flow);
    assert.deepEqual([...decided(redirected), redirected.decidedBy?.table], ["blocked", "drop", 1, "inet filter"]);
    assert.match(redirected.summary, /"tcp dport 10250 redirect to :8080" in ip nat chain prerouting redirects them to port 8080/);
    const forwarded = checkNftables(json({ dnat: { addr: "10.224.0.99", port: 8080 } }), flow);
    assert.deepEqual([forwarded.verdict, forwarded.decidedBy?.table, forwarded.decidedBy?.text], ["indeterminate", "ip nat", "tcp dport 10250 dnat to 10.224.0.99:8080"]);
    // A target that is not one address (a range): where it goes is not known.
    assert.match(checkNftables(json({ dnat: { addr: { range: ["10.0.0.1", "10.0.0.5"] } } }), flow).summary, /does not show as one/);
  });

  it("one that may apply (an undecidable match before it) leaves the later matches undecided: indeterminate, naming it", () => {
    const r = checkNftables(natTable(["tcp dport 10250 limit rate 5/second redirect to :8080"]) + inet(["tcp dport 8080 drop"], "accept"), flow);
    assert.deepEqual([...decided(r), r.decidedBy?.table], ["indeterminate", null, 1, "ip nat"]);
    assert.match(r.summary, /If it applies they are dropped, otherwise accepted/);
  });

  it("chains before the nat chain's priority see the original port, chains after it the new one", () => {
    const pre = (priority: string, rule: string) => `table inet pre {\n\tchain pre {\n\t\ttype filter hook prerouting priority ${priority}; policy accept;\n\t\t${rule}\n\t}\n}\n`;
    // raw (-300) runs before dstnat (-100): it drops 10250 before the redirect.
    const raw = checkNftables(redirect + pre("raw", "tcp dport 10250 drop"), flow);
    assert.deepEqual([...decided(raw), raw.decidedBy?.table], ["blocked", "drop", 1, "inet pre"]);
    assert.doesNotMatch(raw.summary, /redirect/);
    // filter (0) runs after it: it sees 8080.
    assert.deepEqual(decided(checkNftables(redirect + pre("filter", "tcp dport 10250 drop"), flow)), ["allowed", "accept", null]);
    assert.deepEqual(decided(checkNftables(redirect + pre("filter", "tcp dport 8080 drop"), flow)), ["blocked", "drop", 1]);
    // A nat chain runs at dstnat whatever its own priority (seen in a namespace): one at 100 still
    // comes before a filter chain at -50, one at -150 still after a filter chain at -120.
    assert.deepEqual(decided(checkNftables(natTable(["tcp dport 10250 redirect to :8080"], "100") + pre("-50", "tcp dport 8080 drop"), flow)), ["blocked", "drop", 1]);
    assert.deepEqual(decided(checkNftables(natTable(["tcp dport 10250 redirect to :8080"], "-150") + pre("-120", "tcp dport 10250 drop"), flow)), ["blocked", "drop", 1]);
    assert.deepEqual(decided(checkNftables(natTable(["tcp dport 10250 redirect to :8080"], "-150") + pre("-120", "tcp dport 8080 drop"), flow)), ["allowed", "accept", null]);
  });

  it("only the first rewrite counts; a dnat for the other family, or another port, changes nothing", () => {
    const second = `table ip nat2 {\n\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat + 10; policy accept;\n\t\ttcp dport 8080 dnat to 10.224.0.99\n\t}\n}\n`;
    assert.deepEqual(decided(checkNftables(redirect + second + inet(["tcp dport 8080 drop"], "accept"), flow)), ["blocked", "drop", 1]);
    const inetNat = `table inet n {\n\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\ttcp dport 10250 dnat ip6 to [fd00::9]:8080\n\t}\n}\n`;
    assert.deepEqual(decided(checkNftables(inetNat + inet(["tcp dport 10250 drop"], "accept"), flow)), ["blocked", "drop", 1]);
    assert.deepEqual(decided(checkNftables(natTable(["tcp dport 80 dnat to 10.224.0.99"]) + inet(["tcp dport 10250 drop"], "accept"), flow)), ["blocked", "drop", 1]);
  });
});

describe("nftables: statements that only count, and what a reject looks like to the client", () => {
  it("a named counter (counter name \"x\", counter \"x\") only counts: the rule's verdict applies", () => {
    const counter = "\tcounter kubelet_drops {\n\t\tpackets 0 bytes 0\n\t}\n";
    for (const rule of ['tcp dport 10250 counter name "kubelet_drops" drop', 'tcp dport 10250 counter "kubelet_drops" drop', "tcp dport 10250 counter name kubelet_drops drop"]) {
      const text = inet([rule], "accept").replace(/}\n$/, `${counter}}\n`);
      assert.deepEqual(decided(checkNftables(text, flow)), ["blocked", "drop", 1], rule);
    }
  });

  it("a tcp reset is connection refused, exactly; a host-unreachable is no route to host", () => {
    const reset = checkNftables(inet(["tcp dport 10250 reject with tcp reset"], "accept"), flow);
    assert.match(reset.summary, /rejected with tcp reset: the client sees connection refused\)/);
    assert.match(checkNftables(inet(["tcp dport 10250 reject with icmpx type port-unreachable"], "accept"), flow).summary, /the client sees connection refused\)/);
    assert.match(checkNftables(inet(["tcp dport 10250 reject"], "accept"), flow).summary, /the client sees connection refused\)/);
    assert.match(checkNftables(inet(["tcp dport 10250 reject with icmpx type host-unreachable"], "accept"), flow).summary, /the client sees no route to host\)/);
    assert.match(checkNftables(inet(["tcp dport 10250 reject with icmpx type admin-prohibited"], "accept"), flow).summary, /the client sees no route to host\)/);
  });
});

describe("nftables: notrack exempts the connection from conntrack", () => {
  // The audit's input (the kernel timed it out): raw's notrack makes the SYN untracked, so the
  // input chain's `ct state new` accept does not match and its policy drops it.
  const raw = (priority: string, rule: string, hook = "prerouting") =>
    `table inet raw {\n\tchain pre {\n\t\ttype filter hook ${hook} priority ${priority}; policy accept;\n\t\t${rule}\n\t}\n}\n`;
  const input = inet(["ct state established,related accept", "ct state new tcp dport 10250 accept"]);

  it("a notrack before conntrack: ct state new no longer matches, and the input chain's policy drops the flow", () => {
    const r = checkNftables(raw("raw", "tcp dport 10250 notrack") + input, flow);
    assert.deepEqual([...decided(r), r.decidedBy?.table], ["blocked", "drop", null, "inet filter"]);
    assert.ok(r.assumptions.some((a) => /"tcp dport 10250 notrack" in inet raw chain pre runs before conntrack: .*ct state is untracked/.test(a)), r.assumptions.join("\n"));
  });

  it("the same ruleset as nft -j lists it", () => {
    const json = JSON.stringify({ nftables: [
      { table: { family: "inet", name: "raw", handle: 1 } },
      { chain: { family: "inet", table: "raw", name: "pre", handle: 1, type: "filter", hook: "prerouting", prio: -300, policy: "accept" } },
      { rule: { family: "inet", table: "raw", chain: "pre", handle: 2, expr: [{ match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 10250 } }, { notrack: null }] } },
      { table: { family: "inet", name: "filter", handle: 2 } },
      { chain: { family: "inet", table: "filter", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "drop" } },
      { rule: { family: "inet", table: "filter", chain: "input", handle: 2, expr: [{ match: { op: "in", left: { ct: { key: "state" } }, right: "new" } }, { accept: null }] } },
    ] });
    assert.deepEqual(decided(checkNftables(json, flow)), ["blocked", "drop", null]);
  });

  it("ct state untracked then matches, ct status matches nothing (negated neither), and a notrack for another port changes nothing", () => {
    assert.deepEqual(decided(checkNftables(raw("raw", "notrack") + inet(["ct state untracked accept"]), flow)), ["allowed", "accept", 1]);
    assert.deepEqual(decided(checkNftables(raw("raw", "notrack") + inet(["ct status != dnat accept"]), flow)), ["blocked", "drop", null]);
    assert.deepEqual(decided(checkNftables(raw("raw", "tcp dport 22 notrack") + input, flow)), ["allowed", "accept", 2]);
    // In the raw chain itself, after the notrack.
    assert.deepEqual(decided(checkNftables(raw("-310", "notrack") + raw("raw", "ct state untracked drop").replace("chain pre", "chain pre2"), flow)), ["blocked", "drop", 1]);
  });

  it("with no conntrack entry yet, ct status != dnat does not match either: nft's ct expression ends the rule", () => {
    assert.deepEqual(decided(checkNftables(raw("raw", "ct status != dnat drop"), flow)), ["allowed", "accept", null]);
  });

  it("after conntrack (priority -150, the input hook) a notrack does nothing; at ingress it takes effect", () => {
    assert.deepEqual(decided(checkNftables(raw("-150", "notrack") + input, flow)), ["allowed", "accept", 2]);
    assert.deepEqual(decided(checkNftables(raw("-10", "notrack", "input").replace("chain pre", "chain in2") + input, flow)), ["allowed", "accept", 2]);
    const ingress = 'table netdev e {\n\tchain in {\n\t\ttype filter hook ingress device "eth0" priority 0; policy accept;\n\t\ttcp dport 10250 notrack\n\t}\n}\n';
    assert.deepEqual(decided(checkNftables(ingress + input, flow)), ["blocked", "drop", null]);
  });

  it("an untracked connection is not NATed: a redirect on prerouting does not apply", () => {
    const nat = "table ip nat {\n\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\ttcp dport 10250 redirect to :8080\n\t}\n}\n";
    const r = checkNftables(raw("raw", "notrack") + nat + inet(["tcp dport 8080 drop", "tcp dport 10250 accept"]), flow);
    assert.deepEqual(decided(r), ["allowed", "accept", 2]);
    assert.doesNotMatch(r.summary, /redirect/);
  });

  it("a notrack that may apply (an undecidable match before it, or conntrack's own priority): later ct matches cannot be decided", () => {
    const limited = checkNftables(raw("raw", "tcp dport 10250 limit rate 10/second notrack") + input, flow);
    assert.equal(limited.verdict, "indeterminate");
    assert.equal(limited.decidedBy?.text, "tcp dport 10250 limit rate 10/second notrack");
    assert.match(limited.summary, /If it applies they are dropped, otherwise accepted/);
    const tie = checkNftables(raw("-200", "notrack") + input, flow);
    assert.equal(tie.verdict, "indeterminate");
    assert.match(tie.summary, /conntrack's own priority/);
    // Where the flow ends the same either way, that is still said.
    assert.deepEqual(decided(checkNftables(raw("raw", "tcp dport 10250 limit rate 10/second notrack") + inet(["tcp dport 10250 accept"]), flow)).slice(0, 1), ["indeterminate"]);
  });
});
