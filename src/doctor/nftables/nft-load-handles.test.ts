import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TableHandles, anonymousSetCount } from "./nft-load-handles.js";

// Each count is what nft 1.0.6 did: the handles `nft -a list ruleset` showed after loading the
// rule into a throw-away namespace, one more than the rule before it per anonymous set.
describe("anonymous sets nft makes for a rule", () => {
  it("counts sets and maps of more than one element, concatenations and every vmap", () => {
    assert.equal(anonymousSetCount("ip saddr { 1.1.1.1, 2.2.2.2 } tcp dport { 1, 2 } accept"), 2);
    assert.equal(anonymousSetCount("meta l4proto { tcp, udp } th dport vmap { 53 : accept }"), 2);
    assert.equal(anonymousSetCount("ip saddr . tcp dport { 10.0.0.1 . 22 } accept"), 1);
    assert.equal(anonymousSetCount("tcp dport vmap { 22 : accept }"), 1);
    assert.equal(anonymousSetCount("ct state { established, related } accept"), 1);
  });

  it("counts no set for one element, which nft turns into a value, nor for a set statement's key", () => {
    for (const rule of ["tcp dport != { 22 } accept", 'iifname { "eth*" } accept', "tcp dport { 22, } accept", "tcp dport { 1-5 } accept", "ip saddr { 10.0.0.0/8 } accept", "add @s { ip saddr } accept", "tcp dport 5 accept"]) {
      assert.equal(anonymousSetCount(rule), 0, rule);
    }
  });

  it("cannot count a meter, an anonymous chain or braces within braces", () => {
    assert.equal(anonymousSetCount("tcp dport 22 meter ssh { ip saddr limit rate 10/second } accept"), null);
    assert.equal(anonymousSetCount("tcp dport 22 jump { accept }"), null);
    assert.equal(anonymousSetCount("ip saddr { { 1.1.1.1, 2.2.2.2 } } accept"), null);
  });
});

describe("a table's handle counter", () => {
  it("gives rules the handles left after chains, sets and objects, and after each rule's anonymous sets", () => {
    const h = new TableHandles();
    h.skip(2);
    assert.equal(h.rule("tcp dport 22 accept", 1), 3);
    assert.equal(h.rule("tcp dport { 80, 443 } accept", 2), 5);
    h.anonymousSets("tcp dport { 1, 2 } drop", 3);
    assert.equal(h.rule("drop", 4), 7);
    assert.equal(h.lost, null);
  });

  it("stops numbering at a rule it cannot count, and says where and why", () => {
    const h = new TableHandles();
    assert.equal(h.rule("tcp dport 22 meter ssh { ip saddr limit rate 10/second } accept", 7), null);
    assert.equal(h.rule("drop", 8), null);
    assert.equal(h.lost?.line, 7);
    assert.match(h.lost?.reason ?? "", /meter ssh/);
  });
});
