import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { destinationPortsOfNftRule, isDeletableNftBlocker } from "./is-deletable-nft-blocker.js";
import type { NftRule } from "./nft-model.js";
import { parseNftStatements } from "./parse-nft-statements.js";

const ruleOf = (text: string): NftRule => ({ index: 1, handle: null, text, line: null, statements: parseNftStatements(text).statements });
const flow = { port: 10250, protocol: "tcp" as const };

describe("isDeletableNftBlocker: only a rule that blocks exactly the flow's port and protocol may be deleted", () => {
  const deletable = [
    "tcp dport 10250 drop",
    "ip saddr 10.224.0.0/16 tcp dport 10250 drop",
    'iifname "eth0" tcp dport 10250 reject with tcp reset',
    "ct state new tcp dport { 10250 } counter drop",
    "meta l4proto tcp th dport 10250 drop",
    "tcp dport 10000-11000 tcp dport { 10250, 30000 } drop",
    "ip saddr . tcp dport { 10.224.0.5 . 10250, 10.224.0.6 . 10250 } drop",
    "tcp dport 10250 limit rate over 10/second drop",
  ];
  const kept = [
    ["reject with icmpx admin-prohibited", "firewalld's final catch-all"],
    ["drop", "a bare drop"],
    ['iifname "eth0" drop', "every port on an interface"],
    ["ct state new reject", "every new connection"],
    ["ip saddr 10.224.0.7 drop", "every port from one source"],
    ["meta l4proto tcp drop", "every TCP port"],
    ["tcp dport 10000-11000 drop", "a port range"],
    ["tcp dport { 10250, 10255 } drop", "a port set"],
    ["tcp dport != 22 drop", "every port but one"],
    ["tcp dport @blocked drop", "a named set, whose contents may change"],
    ["th dport 10250 drop", "UDP 10250 too"],
    ["udp dport 10250 drop", "another protocol (it does not block this flow)"],
    ["tcp dport vmap { 10250 : drop, 22 : accept }", "a verdict map holds other entries"],
  ] as const;
  for (const text of deletable) it(`deletes: ${text}`, () => assert.equal(isDeletableNftBlocker(ruleOf(text), flow), true));
  for (const [text, why] of kept) it(`keeps (${why}): ${text}`, () => assert.equal(isDeletableNftBlocker(ruleOf(text), flow), false));

  it("reads the destination ports of all the rule's matches together", () => {
    assert.equal(destinationPortsOfNftRule(ruleOf("drop")), null);
    assert.deepEqual(destinationPortsOfNftRule(ruleOf("tcp dport != { 0-10249, 10251-65535 } drop")), [[10250, 10250]]);
    assert.deepEqual(destinationPortsOfNftRule(ruleOf("tcp dport 10250-10260 tcp dport != 10251-10260 drop")), [[10250, 10250]]);
    assert.equal(destinationPortsOfNftRule(ruleOf("tcp dport < 1024 drop")), "many");
  });
});
