// findOutputBlock: the node's filter OUTPUT chain walked for a connection the node opens (the
// agent's to the tunnel server), and the fix on the node, through ufw where ufw owns the chains.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findOutputBlock } from "./check-output.js";

const flow = { source: "10.224.0.5", destination: "10.225.0.4", port: 8132, protocol: "tcp" as const, outInterface: "eth0" };

// ufw 0.36's OUTPUT frame (before.rules), with `ufw deny out to 10.225.0.4 port 8132 proto tcp`.
const ufwSave = (beforeRules: string[], userRules: string[]) => `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ufw-before-output - [0:0]
:ufw-user-output - [0:0]
-A OUTPUT -j ufw-before-output
-A ufw-before-output -o lo -j ACCEPT
-A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
${beforeRules.map((r) => `-A ufw-before-output ${r}\n`).join("")}-A ufw-before-output -j ufw-user-output
${userRules.map((r) => `-A ufw-user-output ${r}\n`).join("")}COMMIT
`;

describe("findOutputBlock", () => {
  it("a ufw deny out is fixed through ufw, with an allow out that is reached before it", () => {
    const block = findOutputBlock(ufwSave([], ["-d 10.225.0.4/32 -p tcp -m tcp --dport 8132 -j DROP"]), flow)!;
    assert.equal(block.where, "iptables ufw-user-output rule 1 (-A ufw-user-output -d 10.225.0.4/32 -p tcp -m tcp --dport 8132 -j DROP)");
    assert.deepEqual(block.steps, ["ufw insert 1 allow out to 10.225.0.4 port 8132 proto tcp"]);
  });

  it("a DROP in ufw's before.rules is not reached by any ufw allow: the fix edits the file", () => {
    const block = findOutputBlock(ufwSave(["-d 10.225.0.0/24 -j DROP"], []), flow)!;
    assert.equal(block.decidedBy.chain, "ufw-before-output");
    assert.deepEqual(block.fixes.map((f) => f.command), ["${EDITOR:-vi} /etc/ufw/before.rules && ufw reload"]);
    assert.match(block.fixes[0]!.description, /add "-A ufw-before-output -d 10\.225\.0\.4 -p tcp --dport 8132 -j ACCEPT" in \/etc\/ufw\/before\.rules/);
  });

  it("a DNAT in nat OUTPUT that may rewrite the server's address comes before filter: no verdict; kube-proxy's service portals for other addresses change nothing", () => {
    const filter = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 10.225.0.4/32 -j DROP\nCOMMIT\n";
    const nat = (rules: string[]) => `*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A OUTPUT -j KUBE-SERVICES\n${rules.map((r) => `-A KUBE-SERVICES ${r}\n`).join("")}COMMIT\n`;
    assert.equal(findOutputBlock(nat(["-d 10.225.0.4/32 -p tcp -m tcp --dport 8132 -j DNAT --to-destination 10.225.0.7:8132"]) + filter, flow), null);
    const services = nat(["-d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.224.0.10:6443"]);
    assert.equal(findOutputBlock(services + filter, flow)!.where, "iptables OUTPUT rule 1 (-A OUTPUT -d 10.225.0.4/32 -j DROP)");
  });

  it("an accepted or other-family flow is no block; a REJECT is one, with its effect", () => {
    assert.equal(findOutputBlock(ufwSave([], []), flow), null);
    // iptables-save with no table loaded prints nothing: no rule, no block (not an unreadable dump).
    assert.equal(findOutputBlock("", flow), null);
    assert.equal(findOutputBlock(" \n\n", flow), null);
    // An IPv4 dump (its addresses show it) says nothing about an IPv6 flow.
    assert.equal(findOutputBlock(ufwSave([], ["-d 10.225.0.4/32 -j DROP"]), { ...flow, source: "fd00::5", destination: "fd00::4" }), null);
    const reject = findOutputBlock("*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp -m tcp --dport 8132 -j REJECT --reject-with tcp-reset\nCOMMIT\n", flow)!;
    assert.equal(reject.effect, "reject");
    assert.deepEqual(reject.steps, ["iptables --delete OUTPUT 1"]);
  });
});
