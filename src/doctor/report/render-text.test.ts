import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { CheckResult } from "./check-result.js";
import { renderText } from "./render-text.js";

const blocked: CheckResult = {
  check: "iptables",
  status: "problem",
  summary: "iptables drops new TCP connections from 10.224.0.7 to port 10250 at INPUT rule 3.",
  fixes: [{ description: "Delete INPUT rule 3", command: "iptables --delete INPUT 3" }],
  assumptions: ["the packet arrives on eth0"],
  flow: { protocol: "tcp", source: "10.224.0.7", destination: "10.224.0.5", port: 10250 },
  verdict: "blocked",
  effect: "drop",
  decidedBy: { chain: "INPUT", rule: 3, target: "DROP", policy: null, text: "-A INPUT -p tcp -m tcp --dport 10250 -j DROP" },
  details: ["walked INPUT → KUBE-FIREWALL → INPUT"],
};

describe("renderText", () => {
  it("puts the verdict first, then summary, deciding rule, details, fix, assumptions", () => {
    const text = renderText(blocked, { color: false });
    assert.equal(text, [
      "BLOCKED  tcp 10.224.0.7 → 10.224.0.5:10250 (drop: the client sees an i/o timeout)",
      "iptables drops new TCP connections from 10.224.0.7 to port 10250 at INPUT rule 3.",
      "",
      "Decided by: chain INPUT, rule 3",
      "    -A INPUT -p tcp -m tcp --dport 10250 -j DROP",
      "",
      "  walked INPUT → KUBE-FIREWALL → INPUT",
      "",
      "Fix:",
      "  # Delete INPUT rule 3",
      "  iptables --delete INPUT 3",
      "",
      "Assumed:",
      "  - the packet arrives on eth0",
      "",
    ].join("\n"));
  });

  it("colours only when asked", () => {
    assert.doesNotMatch(renderText(blocked, { color: false }), /\u001b\[/);
    const coloured = renderText(blocked, { color: true });
    assert.match(coloured, /^\u001b\[1;31mBLOCKED\u001b\[0m {2}tcp/);
  });

  it("names a policy, an undecided rule, and says what a reject looks like to the client", () => {
    const policy = renderText({ ...blocked, decidedBy: { chain: "INPUT", rule: null, target: "policy", policy: "DROP", text: ":INPUT DROP [0:0]" } }, { color: false });
    assert.match(policy, /Decided by: chain INPUT policy DROP\n {4}:INPUT DROP \[0:0\]/);
    const undecided = renderText({ ...blocked, status: "indeterminate", verdict: "indeterminate", effect: null }, { color: false });
    assert.match(undecided, /^INDETERMINATE {2}tcp .*\(depends on something the input does not show\)\n.*\n\nUndecided at: chain INPUT, rule 3/m);
    const reject = renderText({ ...blocked, effect: "reject" }, { color: false });
    assert.match(reject, /\(reject: the client sees connection refused or no route to host\)/);
  });

  it("ufw inactive: allowed, no effect, nothing decided", () => {
    const text = renderText({
      check: "ufw", status: "ok", summary: "ufw is inactive: it filters nothing.", fixes: [], assumptions: [],
      flow: { protocol: "tcp", source: "10.224.0.7", destination: null, port: 10250 }, verdict: "allowed", effect: null, decidedBy: null,
    }, { color: false });
    assert.equal(text, "ALLOWED  tcp 10.224.0.7 → port 10250\nufw is inactive: it filters nothing.\n\nDecided by: nothing (no rule applies)\n");
  });

  it("an NSG rule as a table line", () => {
    const text = renderText({
      ...blocked, check: "nsg", details: undefined,
      decidedBy: { nsg: "aks-subnet-nsg", attachment: "dest-subnet", direction: "inbound", rule: "DenyKubelet", priority: 200, access: "Deny" },
      path: [{ nsg: "aks-subnet-nsg", attachment: "dest-subnet", direction: "inbound", rule: "DenyKubelet", priority: 200, access: "Deny" }],
    }, { color: false });
    assert.match(text, /Decided by:\n {4}NSG +Attachment +Direction +Priority +Name +Access\n {4}-+ .*\n {4}aks-subnet-nsg +dest-subnet +inbound +200 +DenyKubelet +Deny\n/);
    assert.match(text, /Every NSG on the path:/);
  });

  it("a report of several findings for node", () => {
    const text = renderText({
      check: "node", status: "problem", summary: "1 of 2 checks found a problem.", fixes: [], assumptions: [],
      findings: [blocked, { check: "egress", status: "ok", summary: "tunnel.example:443 is reachable from here.", fixes: [], assumptions: [] }],
    }, { color: false });
    const lines = text.split("\n");
    assert.equal(lines[0], "PROBLEM  node");
    assert.ok(lines.includes("    BLOCKED  tcp 10.224.0.7 → 10.224.0.5:10250 (drop: the client sees an i/o timeout)"));
    assert.ok(lines.includes("    OK  egress"));
  });

  it("snat arithmetic and churn in columns", () => {
    const text = renderText({
      check: "snat", status: "problem", summary: "52 nodes need more ports than 1 IP has.", fixes: [], assumptions: [],
      portsPerNode: 512, requiredPorts: 27136, availablePorts: 64000, capacityNodes: 125, nextBoundary: 101,
      churn: [{ destination: "20.1.2.3:443", connections: 900, timeWait: 850 }],
    }, { color: false });
    assert.match(text, /SNAT ports per node: 512\n/);
    assert.match(text, /Most nodes supported: 125\n/);
    assert.match(text, /halves next at: 101 nodes/);
    assert.match(text, /20\.1\.2\.3:443 +900 +850/);
  });

  it("snat: the most nodes supported is the smaller of capacityNodes and the default table's end", () => {
    const text = (capacityNodes: number | null) => renderText({
      check: "snat", status: "warning", summary: "900 nodes get 32 ports each.", fixes: [], assumptions: [],
      portsPerNode: capacityNodes === null ? null : 32, capacityNodes, defaultPoolLimit: 1000, nextBoundary: null,
    }, { color: false });
    assert.match(text(2000), /Most nodes supported: 1000\n/);
    assert.match(text(62), /Most nodes supported: 62\n/);
    assert.match(text(null), /Most nodes supported: 1000\n/);
  });
});
