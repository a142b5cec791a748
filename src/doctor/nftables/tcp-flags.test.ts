import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseNftStatements } from "./parse-nft-statements.js";
import { jsonRuleStatements } from "./parse-nft-json.js";
import { synMatches, tcpFlagsText } from "./tcp-flags.js";
import type { TcpFlagsMatch } from "./tcp-flags.js";

/** The tcp-flags statement the text parser reads from a rule, or null if it kept it unknown. */
const fromText = (rule: string): TcpFlagsMatch | null =>
  (parseNftStatements(rule).statements.find((s) => s.kind === "tcp-flags") as TcpFlagsMatch | undefined) ?? null;
const flags = { payload: { protocol: "tcp", field: "flags" } };
const fromJson = (op: string, left: unknown, right: unknown): TcpFlagsMatch | null =>
  (jsonRuleStatements([{ match: { op, left, right } }, { drop: null }]).statements.find((s) => s.kind === "tcp-flags") as TcpFlagsMatch | undefined) ?? null;

describe("tcp flags: a new connection's SYN (flags byte 0x02)", () => {
  const cases: [string, boolean][] = [
    // The hardening rules of common rulesets: none of them matches a SYN.
    ["tcp flags & (fin|syn|rst|ack) != syn ct state new drop", false],
    ["tcp flags & (fin | syn | rst | ack) != syn drop", false],
    ["tcp flags != syn / fin,syn,rst,ack ct state new drop", false],
    ["tcp flags & (syn|ack) == syn|ack ct state new reject", false],
    ["tcp flags & (syn | ack) == syn | ack ct state new reject with tcp reset", false],
    ["tcp flags & (fin|syn) == fin|syn drop", false],
    ["tcp flags fin,syn / fin,syn drop", false],
    ["tcp flags & (fin | syn | rst | psh | ack | urg) == 0x0 drop", false],
    ["tcp flags ! syn ct state new drop", false],
    ["tcp flags ack drop", false],
    ["tcp flags == 0xff drop", false],
    ["tcp flags != syn drop", false],
    // ...and the ones that pick the SYN out.
    ["tcp flags syn / fin,syn,rst,ack accept", true],
    ["tcp flags & (fin | syn | rst | ack) == syn accept", true],
    ["tcp flags & (fin|syn|rst|ack) syn accept", true],
    ["tcp flags syn accept", true],
    ["tcp flags syn,ack accept", true],
    ["tcp flags ! fin,rst accept", true],
    ["tcp flags == syn accept", true],
    ["tcp flags eq 0x02 accept", true],
    ["tcp flags { syn, syn | ack } accept", true],
    ["tcp flags != { fin, urg, ecn, cwr } accept", true],
    ["tcp flags & (fin | syn | rst | psh | ack | urg) == { fin, ack, psh | ack, fin | psh | ack } drop", false],
  ];
  for (const [rule, syn] of cases) {
    it(`${syn ? "matches" : "does not match"}: ${rule}`, () => {
      const m = fromText(rule);
      assert.ok(m, "read as a tcp flags match");
      assert.equal(synMatches(m), syn);
    });
  }

  it("ends the flags expression where the next statement starts", () => {
    assert.deepEqual(parseNftStatements("tcp flags & (fin|syn|rst|ack) != syn ct state new counter drop").statements.map((s) => s.kind), ["tcp-flags", "match", "nop", "verdict"]);
    assert.deepEqual(parseNftStatements("tcp flags syn / fin,syn,rst,ack tcp option maxseg size 1-535 drop").statements.map((s) => s.kind), ["tcp-flags", "unknown", "verdict"]);
    // An unknown expression before the flags ends where `tcp flags` starts, so the flags still count.
    assert.deepEqual(parseNftStatements("tcp option maxseg size 1-535 tcp flags ! syn drop").statements.map((s) => s.kind), ["unknown", "tcp-flags", "verdict"]);
  });

  it("keeps forms whose meaning is not certain as unknown expressions", () => {
    for (const rule of ["tcp flags == syn,ack drop", "tcp flags & (fin | syn) ! syn drop", "tcp flags & (syn | ack) == syn / syn drop", "tcp flags & (syn drop", "tcp flags bogus drop"]) {
      assert.equal(fromText(rule), null, rule);
      assert.ok(parseNftStatements(rule).statements.some((s) => s.kind === "unknown"), rule);
    }
  });

  it("reads the nft -j forms: & with a list or | mask, in, ==, != and sets", () => {
    const and = (mask: unknown) => ({ "&": [flags, mask] });
    const json: [TcpFlagsMatch | null, boolean][] = [
      [fromJson("==", and(["fin", "syn", "rst", "ack"]), "syn"), true],
      [fromJson("!=", and(["fin", "syn", "rst", "ack"]), "syn"), false],
      [fromJson("==", and({ "|": ["syn", "ack"] }), { "|": ["syn", "ack"] }), false],
      [fromJson("==", and(["fin", "syn"]), ["fin", "syn"]), false],
      [fromJson("==", and("syn"), 0), false],
      [fromJson("in", flags, "syn"), true],
      [fromJson("in", flags, ["syn", "ack"]), true],
      [fromJson("in", flags, "ack"), false],
      [fromJson("==", flags, "syn"), true],
      [fromJson("!=", flags, "cwr"), true],
      [fromJson("==", flags, { set: [{ "|": ["syn", "ack"] }, "syn"] }), true],
      [fromJson("==", and(["fin", "syn", "rst", "psh", "ack", "urg"]), { set: ["fin", "ack", { "|": ["psh", "ack"] }] }), false],
    ];
    json.forEach(([m, syn], n) => {
      assert.ok(m, `case ${n} read`);
      assert.equal(synMatches(m), syn, `case ${n}`);
    });
    assert.equal(fromJson("==", and(["fin", "bogus"]), "syn"), null);
    assert.equal(fromJson("<", flags, "syn"), null);
  });

  it("renders the JSON form as nft's text", () => {
    assert.equal(jsonRuleStatements([{ match: { op: "!=", left: { "&": [flags, ["fin", "syn", "rst", "ack"]] }, right: "syn" } }, { drop: null }]).text, "tcp flags & (fin | syn | rst | ack) != syn drop");
    assert.equal(tcpFlagsText(fromText("tcp flags syn,ack drop")!), "tcp flags syn,ack");
    assert.equal(tcpFlagsText(fromText("tcp flags ! syn drop")!), "tcp flags ! syn");
    assert.equal(tcpFlagsText(fromText("tcp flags { syn, syn | ack } drop")!), "tcp flags == { syn, syn | ack }");
  });
});
