import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { destinationPortsOf, isDeletableBlocker } from "./is-deletable-blocker.js";
import { parseIptables } from "./parse-iptables.js";

const ruleOf = (spec: string) =>
  parseIptables(`*filter\n:INPUT ACCEPT [0:0]\n:X - [0:0]\n-A INPUT ${spec}\nCOMMIT\n`).tables.get("filter")!.chains.get("INPUT")!.rules[0]!;

describe("isDeletableBlocker: only a rule that blocks exactly the flow's port may be deleted", () => {
  const deletable = [
    "-p tcp -m tcp --dport 10250 -j DROP",
    "-s 10.224.0.0/16 -p tcp -m tcp --dport 10250 -j DROP",
    "-i eth0 -p tcp -m tcp --dport 10250 -j REJECT --reject-with tcp-reset",
    "-p tcp -m multiport --dports 10250 -j DROP",
    "-p tcp -m tcp --dport 10000:11000 -m multiport --dports 10250,30000 -j DROP",
    "-p tcp -m tcp --dport 10250 -m set --match-set bad src -j DROP",
  ];
  const kept = [
    ["-j REJECT --reject-with icmp-host-prohibited", "RHEL's final catch-all"],
    ["-j DROP", "a catch-all"],
    ["-s 10.224.0.7/32 -j DROP", "every port from one source"],
    ["-p tcp -j DROP", "every TCP port"],
    ["-m set --match-set bad src -j DROP", "every port from an ipset"],
    ["-p tcp -m tcp --dport 10000:11000 -j DROP", "a port range"],
    ["-p tcp -m multiport --dports 10250,10255 -j DROP", "a port list"],
    ["-p tcp -m multiport ! --dports 22 -j DROP", "every port but one"],
    ["-p tcp -m multiport --ports 10250 -j DROP", "--ports also matches a source port"],
  ] as const;
  for (const spec of deletable) it(`deletes: ${spec}`, () => assert.equal(isDeletableBlocker(ruleOf(spec), 10250), true));
  for (const [spec, why] of kept) it(`keeps (${why}): ${spec}`, () => assert.equal(isDeletableBlocker(ruleOf(spec), 10250), false));

  it("reads the destination ports of all the rule's matches together", () => {
    assert.equal(destinationPortsOf(ruleOf("-j DROP")), null);
    assert.deepEqual(destinationPortsOf(ruleOf("-p tcp -m multiport ! --dports 0:10249,10251:65535 -j DROP")), [[10250, 10250]]);
    assert.deepEqual(destinationPortsOf(ruleOf("-p tcp -m tcp --dport 10250:10260 -m multiport ! --dports 10251:10260 -j DROP")), [[10250, 10250]]);
  });
});
