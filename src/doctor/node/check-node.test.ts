// checkNode's findings logic with injected node state (what collect-node-state.ts would have read):
// which checks become findings, their ids and statuses, the node's status and summary, and which
// fixes reach the report.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { applyIptablesCommand } from "../iptables/apply-iptables-command.js";
import ipaddr from "ipaddr.js";
import { parseIptablesSave, walkChain } from "../iptables/index.js";
import type { CheckResult } from "../report/check-result.js";
import { checkNode, worstStatus } from "./check-node.js";
import type { NodeOptions, NodeState } from "./check-node.js";

const NODE_IP = "10.224.0.5";
const SOURCES = ["10.224.0.4", "10.224.0.6"];
const opts: NodeOptions = { sources: SOURCES, nodeIp: NODE_IP, port: 10250, inInterface: "eth0" };

const ok = (text: string) => ({ ok: true, text }) as const;
const failed = (reason: string) => ({ ok: false, reason }) as const;

const iptablesClean = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
const iptablesDrop = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -s 10.224.0.6/32 -p tcp -m tcp --dport 10250 -j DROP\nCOMMIT\n";
const ufwVerboseDeny = "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), disabled (routed)\nNew profiles: skip\n\n" +
  "To                         Action      From\n--                         ------      ----\n22/tcp                     ALLOW IN    Anywhere                  \n";
// Captured from a lab node: kubelet on 0.0.0.0:10250, agent health on 127.0.0.1:8093.
const procTcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
const kubeletListening = procTcpHeader +
  "   0: 00000000:280A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0\n" +
  "   1: 0100007F:1F9D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41250 1 0000000000000000 100 0 0 10 0\n";
const kubeletOnLoopbackOnly = procTcpHeader +
  "   0: 0100007F:280A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0\n";
const ssHeader = "State      Recv-Q Send-Q Local Address:Port  Peer Address:Port Process\n";
const ssQuiet = ssHeader + "ESTAB      0      0        10.224.0.5:41000   10.225.0.4:8132\n";
const egressOk: CheckResult = { check: "egress", status: "ok", summary: "10.225.0.4:8132 answered (TLS, ALPN konnectivity).", fixes: [], assumptions: [] };

function state(over: Partial<NodeState> = {}): NodeState {
  return {
    iptablesSave: ok(iptablesClean),
    ufwStatus: ok("Status: inactive\n"),
    nftRuleset: ok(""),
    procNetTcp: [kubeletListening],
    egress: egressOk,
    agentHealth: { kind: "ready", target: "http://127.0.0.1:8093" },
    ssTan: ok(ssQuiet),
    ...over,
  };
}

const ids = (r: CheckResult) => (r.findings as CheckResult[]).map((f) => `${String(f.id)}:${f.status}`);
const finding = (r: CheckResult, id: string) => (r.findings as CheckResult[]).filter((f) => f.id === id);

describe("checkNode", () => {
  test("a clean node: one finding per check, all ok, and a summary that says nothing blocks the tunnel", () => {
    const r = checkNode(state(), opts);
    assert.equal(r.check, "node");
    assert.equal(r.status, "ok");
    assert.deepEqual(ids(r), ["iptables:ok", "iptables:ok", "ufw:ok", "ufw:ok", "kubelet-listener:ok", "egress:ok", "agent-health:ok", "churn:ok"]);
    assert.equal(r.summary, "All 8 local checks passed: nothing on this node blocks the tunnel.");
    assert.deepEqual(r.fixes, []);
  });

  test("iptables is evaluated once per agent source: only the dropped source is a problem, and its fix reaches the report", () => {
    const r = checkNode(state({ iptablesSave: ok(iptablesDrop) }), opts);
    const ipt = finding(r, "iptables");
    assert.deepEqual(ipt.map((f) => [(f.flow as { source: string }).source, f.status, f.effect]), [["10.224.0.4", "ok", "accept"], ["10.224.0.6", "problem", "drop"]]);
    assert.equal((ipt[1]!.flow as { destination: string }).destination, NODE_IP, "the node's address is the destination");
    assert.equal(r.status, "problem");
    assert.equal(r.summary, ipt[1]!.summary, "one problem: its summary is the node's");
    assert.deepEqual(r.fixes, ipt[1]!.fixes);
    assert.match(r.fixes[0]!.command, /^iptables --delete INPUT 1$/);
  });

  test("an IPv6 source is judged by ip6tables-save, an IPv4 one by iptables-save; without ip6tables-save the IPv6 one is indeterminate", () => {
    const ip6Drop = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s fd00::6/128 -p tcp -m tcp --dport 10250 -j DROP\nCOMMIT\n";
    const both = { ...opts, sources: ["10.224.0.4", "fd00::6"] };
    const r = checkNode(state({ iptablesSave: ok(iptablesDrop), ip6tablesSave: ok(ip6Drop) }), both);
    const ipt = finding(r, "iptables");
    assert.deepEqual(ipt.map((f) => [(f.flow as { source: string }).source, f.status]), [["10.224.0.4", "ok"], ["fd00::6", "problem"]]);
    assert.match(ipt[1]!.fixes[0]!.command, /^ip6tables --delete INPUT 1$/);
    const unread = finding(checkNode(state({ iptablesSave: ok(iptablesClean) }), both), "iptables");
    assert.deepEqual(unread.map((f) => f.status), ["ok", "indeterminate"]);
    assert.match(unread[1]!.summary, /Could not read ip6tables-save: not read/);
  });

  test("iptables-save without a filter table is ok; an unreadable one is indeterminate with the reason", () => {
    assert.deepEqual(finding(checkNode(state({ iptablesSave: ok("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n") }), opts), "iptables").map((f) => [f.status, f.summary]),
      [["ok", "iptables has no filter rules on this node."], ["ok", "iptables has no filter rules on this node."]]);
  });

  test("iptables-save without a filter table still gives the flow fields of a flow check, per source (doctor-cli.md)", () => {
    const found = finding(checkNode(state({ iptablesSave: ok("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n") }), opts), "iptables");
    assert.deepEqual(found.map((f) => f.flow), SOURCES.map((source) => ({ protocol: "tcp", source, destination: NODE_IP, port: 10250 })));
    for (const f of found) {
      assert.equal(f.verdict, "allowed");
      assert.equal(f.effect, "accept");
      assert.deepEqual(f.decidedBy, { table: "filter", chain: "INPUT", rule: null, target: "policy", policy: "ACCEPT", text: "no filter rules (iptables-save printed no *filter table)" });
    }
  });

  test("iptables-save that cannot be read is indeterminate with the reason", () => {
    const r = checkNode(state({ iptablesSave: failed("iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)") }), opts);
    assert.deepEqual(finding(r, "iptables").map((f) => [f.status, f.summary]), [["indeterminate", "Could not read iptables-save: iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)."]]);
    assert.equal(r.status, "indeterminate");
  });

  test("a node without iptables (nftables only): iptables accepts, and every nft table is nftables' own, iptables-nft's names too", () => {
    const ipFilter = "table ip filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\ttcp dport 10250 ip saddr 10.224.0.4 drop\n\t}\n}\n";
    const r = checkNode(state({ iptablesSave: failed("iptables-save not found"), nftRuleset: ok(ipFilter) }), opts);
    const ipt = finding(r, "iptables");
    assert.deepEqual(ipt.map((f) => [f.status, f.verdict]), SOURCES.map(() => ["ok", "allowed"]));
    assert.equal(ipt[0]!.summary, "iptables-save is not installed: no iptables rules on this node.");
    assert.deepEqual(finding(r, "nftables").map((f) => [f.status, f.effect]), [["problem", "drop"], ["ok", "accept"]]);
    assert.equal(r.status, "problem", "an nft-only node can be judged: not indeterminate for want of iptables");
    // With nothing of nft's either, the node is clean.
    assert.equal(checkNode(state({ iptablesSave: failed("iptables-save not found"), nftRuleset: failed("nft not found") }), opts).status, "ok");
  });

  test("ufw: absent binary → no finding; another read error → indeterminate; default deny → a problem per source with an allow fix", () => {
    assert.deepEqual(finding(checkNode(state({ ufwStatus: failed("ufw not found") }), opts), "ufw"), []);
    assert.deepEqual(finding(checkNode(state({ ufwStatus: failed("ERROR: You need to be root to run this script") }), opts), "ufw").map((f) => f.status), ["indeterminate"]);
    const r = checkNode(state({ ufwStatus: ok(ufwVerboseDeny) }), opts);
    const ufw = finding(r, "ufw");
    assert.deepEqual(ufw.map((f) => [f.status, (f.decidedBy as { policy: string }).policy]), [["problem", "deny"], ["problem", "deny"]]);
    // The node's address is known, so the allow rule is as narrow as the flow.
    assert.deepEqual(r.fixes.map((f) => f.command), SOURCES.map((s) => `ufw allow from ${s} to ${NODE_IP} port 10250 proto tcp`));
    assert.equal(r.summary.startsWith("2 findings; first: "), true, r.summary);
  });

  test("nftables: tables iptables-nft made are skipped (iptables-save covered them); a table of its own is evaluated", () => {
    const iptNft = "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\n";
    assert.deepEqual(finding(checkNode(state({ nftRuleset: ok(iptNft) }), opts), "nftables"), []);
    assert.deepEqual(finding(checkNode(state({ nftRuleset: failed("nft not found") }), opts), "nftables"), []);
    const own = iptNft + "table inet guard {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 10250 ip saddr 10.224.0.4 reject\n\t}\n}\n";
    const nft = finding(checkNode(state({ nftRuleset: ok(own) }), opts), "nftables");
    assert.deepEqual(nft.map((f) => [f.status, f.effect]), [["problem", "reject"], ["ok", "accept"]]);
  });

  test("the kubelet listener: missing → problem naming a refused connection; loopback only → problem saying so; unreadable → indeterminate", () => {
    const none = finding(checkNode(state({ procNetTcp: [procTcpHeader] }), opts), "kubelet-listener")[0]!;
    assert.equal(none.status, "problem");
    assert.match(none.summary, /^Nothing listens on port 10250: the kubelet is down/);
    assert.match(none.fixes[0]!.command, /systemctl restart kubelet/);
    const loop = finding(checkNode(state({ procNetTcp: [kubeletOnLoopbackOnly] }), opts), "kubelet-listener")[0]!;
    assert.match(loop.summary, /listens only on a local address \(127\.0\.0\.1\), not on 10\.224\.0\.5/);
    const bad = finding(checkNode(state({ procNetTcp: ["garbage\n"] }), opts), "kubelet-listener")[0]!;
    assert.equal(bad.status, "indeterminate");
    // Without the node's address, any listener on the port counts.
    assert.equal(finding(checkNode(state({ procNetTcp: [kubeletOnLoopbackOnly] }), { ...opts, nodeIp: null }), "kubelet-listener")[0]!.status, "ok");
  });

  test("the kubelet bound to a local address only: the fix is its bind address, not a restart of a kubelet that runs", () => {
    const r = checkNode(state({ procNetTcp: [kubeletOnLoopbackOnly] }), opts);
    const loop = finding(r, "kubelet-listener")[0]!;
    assert.equal(loop.status, "problem");
    const text = loop.fixes.map((f) => `${f.description}\n${f.command}`).join("\n");
    assert.doesNotMatch(text, /check why it stopped|journalctl/);
    assert.match(loop.fixes[0]!.description, /--address flag, or `address:` in the config file its --config names/);
    assert.match(loop.fixes[0]!.command, /grep -n '\^address:' \/var\/lib\/kubelet\/config\.yaml/);
    assert.match(loop.fixes[1]!.description, /address: 0\.0\.0\.0.*--address=0\.0\.0\.0.*restart the kubelet/);
    assert.match(loop.fixes[1]!.command, /systemctl restart kubelet$/);
    assert.equal(loop.fixes.at(-1)!.command, "ss -ltn 'sport = :10250'");
    assert.match(loop.fixes.at(-1)!.description, /read-only/);
    // The node's Fix block carries them as they are.
    assert.deepEqual(r.fixes.map((f) => f.command), loop.fixes.map((f) => f.command));
  });

  test("egress is reported as given (id egress); without a server probe there is no egress finding", () => {
    const down: CheckResult = { check: "egress", status: "problem", summary: "10.225.0.4:8132 timed out", fixes: [{ description: "open egress", command: "x" }], assumptions: [] };
    const r = checkNode(state({ egress: down }), opts);
    assert.deepEqual(finding(r, "egress").map((f) => [f.check, f.status, f.summary]), [["egress", "problem", "10.225.0.4:8132 timed out"]]);
    assert.deepEqual(r.fixes, down.fixes);
    assert.deepEqual(finding(checkNode(state({ egress: null }), opts), "egress"), []);
  });

  describe("egress that times out: the node's own filter OUTPUT chain is walked for the agent's connection to the server", () => {
    const SERVER = "10.225.0.4";
    // checkEgress's result for a --server 10.225.0.4:8132 probe that timed out (check-egress.ts).
    const timedOut: CheckResult = {
      check: "egress", status: "problem",
      summary: "10.225.0.4:8132 timed out after 2001 ms: a firewall, NSG or route on the path drops the traffic silently; allow outbound TCP 8132 to it.",
      fixes: [{ description: "Allow outbound TCP 8132 to 10.225.0.4 on every hop (NSG, Azure Firewall or appliance, route table); use a priority number lower than the deny rule", command: "az network nsg rule create --resource-group <resource-group> --nsg-name <nsg-name> --name allow-tunnel-egress-8132 --priority <free-priority> --direction Outbound --access Allow --protocol Tcp --destination-address-prefixes 10.225.0.4 --destination-port-ranges 8132" }],
      assumptions: [],
      probes: [{ target: `${SERVER}:8132`, host: SERVER, port: 8132, result: "timeout", elapsedMs: 2001, tls: true, offeredAlpn: ["h2"], alpn: null, reason: "i/o timeout", certificate: null }],
    };
    const withOutput = (...rules: string[]) => `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${rules.map((r) => `-A OUTPUT ${r}\n`).join("")}COMMIT\n`;
    const saves = ["iptables-save > /etc/iptables/rules.v4", "iptables-save > /etc/sysconfig/iptables"];
    const egressOf = (text: string) => {
      const r = checkNode(state({ iptablesSave: ok(text), egress: timedOut }), opts);
      return { r, egress: finding(r, "egress")[0]! };
    };
    // Whether, after the node's iptables fixes, OUTPUT lets the agent's SYN out (as the node would send it).
    const opensAfter = (text: string, r: CheckResult) => {
      const table = r.fixes.filter((f) => /^iptables --/.test(f.command)).reduce((t, f) => applyIptablesCommand(t, f.command), parseIptablesSave(text).tables.get("filter")!);
      const o = walkChain(table, { protocol: 6, source: ipaddr.parse(NODE_IP), destination: ipaddr.parse(SERVER), port: 8132, inInterface: "", outInterface: "eth0", ctstates: new Set(["NEW"]) }, { chain: "OUTPUT" });
      return o.kind === "decided" && o.effect === "accept";
    };

    test("a DROP of exactly the server's port in OUTPUT is named as the cause (chain, number, text), and the fix deletes it on the node", () => {
      const text = withOutput("-o lo -j ACCEPT", "-d 10.225.0.4/32 -p tcp -m tcp --dport 8132 -j DROP");
      const { r, egress } = egressOf(text);
      assert.equal(egress.status, "problem");
      assert.match(egress.summary, /^10\.225\.0\.4:8132 timed out after 2001 ms: this node's own firewall drops the connection before it leaves the node, at iptables OUTPUT rule 2 \(-A OUTPUT -d 10\.225\.0\.4\/32 -p tcp -m tcp --dport 8132 -j DROP\); fix on this node: iptables --delete OUTPUT 2\.$/);
      assert.doesNotMatch(egress.summary, /NSG|route on the path/);
      assert.deepEqual(egress.fixes.map((f) => f.command), ["iptables --delete OUTPUT 2", ...saves]);
      assert.match(egress.fixes[0]!.description, /^Delete OUTPUT rule 2 \(-A OUTPUT -d 10\.225\.0\.4\/32/);
      assert.deepEqual(egress.blockedBy, { command: "iptables", table: "filter", chain: "OUTPUT", rule: 2, text: "-A OUTPUT -d 10.225.0.4/32 -p tcp -m tcp --dport 8132 -j DROP", effect: "drop" });
      assert.ok(!r.fixes.some((f) => f.command.startsWith("az ")), "no NSG fix in the node's Fix block");
      assert.deepEqual(r.fixes.map((f) => f.command), ["iptables --delete OUTPUT 2", ...saves]);
      assert.ok(opensAfter(text, r));
    });

    test("a catch-all DROP out of the default interface, after an addrtype LOCAL accept the server's address does not match, gets an ACCEPT inserted before it", () => {
      const text = withOutput("-m addrtype --dst-type LOCAL -j ACCEPT", "-o eth0 -j DROP", "-p tcp -m tcp --dport 22 -j ACCEPT");
      const { r, egress } = egressOf(text);
      assert.match(egress.summary, /own firewall drops the connection before it leaves the node, at iptables OUTPUT rule 2 \(-A OUTPUT -o eth0 -j DROP\); fix on this node: iptables --insert OUTPUT 2 -d 10\.225\.0\.4 -p tcp --dport 8132 -j ACCEPT\.$/);
      assert.deepEqual(egress.fixes.map((f) => f.command), ["iptables --insert OUTPUT 2 -d 10.225.0.4 -p tcp --dport 8132 -j ACCEPT", ...saves]);
      assert.match(egress.fixes[0]!.description, /^Do not delete OUTPUT rule 2 \(-A OUTPUT -o eth0 -j DROP\)/);
      assert.ok(opensAfter(text, r));
      // A plain catch-all as well, and OUTPUT's policy DROP.
      assert.deepEqual(egressOf(withOutput("-j DROP")).egress.fixes[0]!.command, "iptables --insert OUTPUT 1 -d 10.225.0.4 -p tcp --dport 8132 -j ACCEPT");
      const policy = egressOf(withOutput("-o lo -j ACCEPT").replace(":OUTPUT ACCEPT", ":OUTPUT DROP")).egress;
      assert.match(policy.summary, /at the iptables OUTPUT policy DROP; fix on this node: iptables --insert OUTPUT 2 -d 10\.225\.0\.4 -p tcp --dport 8132 -j ACCEPT\.$/);
    });

    test("two servers each dropped by its own OUTPUT rule: only the first block's numbered fix, then a fresh listing for the other, never a number that the first fix moved", () => {
      const second = "10.225.0.9";
      const probe1 = (timedOut.probes as readonly Record<string, unknown>[])[0]!;
      const probe2 = { ...probe1, target: `${second}:8132`, host: second };
      const nsg2 = { description: "Allow outbound TCP 8132 to 10.225.0.9", command: "az network nsg rule create ... 10.225.0.9" };
      const both: CheckResult = { ...timedOut, fixes: [...timedOut.fixes, nsg2], probes: [probe1, probe2] };
      const text = withOutput("-d 10.225.0.4/32 -p tcp -m tcp --dport 8132 -j DROP", "-d 10.225.0.9/32 -p tcp -m tcp --dport 8132 -j DROP");
      const r = checkNode(state({ iptablesSave: ok(text), egress: both }), opts);
      const egress = finding(r, "egress")[0]!;
      assert.match(egress.summary, /at iptables OUTPUT rule 1 .*fix on this node: iptables --delete OUTPUT 1 \(and 1 more of 2 targets failed\)\.$/);
      assert.deepEqual(egress.fixes.map((f) => f.command), ["iptables --delete OUTPUT 1", ...saves, "iptables -L OUTPUT -n --line-numbers"]);
      assert.match(egress.fixes.at(-1)!.description, /^10\.225\.0\.9:8132: this node's own firewall drops it too, at iptables OUTPUT rule 2 \(-A OUTPUT -d 10\.225\.0\.9\/32 .*\) as read; once the commands above have run/);
      assert.equal((egress.blockedBy as { rule?: number } | undefined)?.rule, 1);
      assert.ok(!r.fixes.some((f) => f.command === "iptables --delete OUTPUT 2"), "no delete by a number the first delete has moved");
    });

    test("with nothing in iptables' OUTPUT, nftables' own output chain is walked: its drop is named, with nft's fix", () => {
      const nft = "table inet filter {\n\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n\t\tip daddr 10.225.0.4 tcp dport 8132 drop # handle 4\n\t}\n}\n";
      const r = checkNode(state({ nftRuleset: ok(nft), egress: timedOut }), opts);
      const egress = finding(r, "egress")[0]!;
      assert.match(egress.summary, /^10\.225\.0\.4:8132 timed out after 2001 ms: this node's own firewall drops the connection before it leaves the node, at nft inet filter output rule 1 \(ip daddr 10\.225\.0\.4 tcp dport 8132 drop\); fix on this node: nft insert rule inet filter output ip daddr 10\.225\.0\.4 tcp dport 8132 accept\.$/);
      assert.deepEqual(egress.fixes.map((f) => f.command), ["nft insert rule inet filter output ip daddr 10.225.0.4 tcp dport 8132 accept", "nft delete rule inet filter output handle 4"]);
      assert.deepEqual(egress.blockedBy, { command: "nft", table: "inet filter", chain: "output", rule: 1, text: "ip daddr 10.225.0.4 tcp dport 8132 drop", handle: 4, effect: "drop" });
      assert.ok(egress.assumptions.some((a) => a.startsWith("nftables' output path (filter and route chains on the output and postrouting hooks) was walked for a new TCP connection from 10.224.0.5 to 10.225.0.4 port 8132 leaving by eth0")));
      assert.deepEqual(r.fixes.map((f) => f.command), egress.fixes.map((f) => f.command), "the node's fixes are the egress finding's");
      // iptables-nft's own tables alone are iptables-save's to show: not walked twice.
      const ipt = "table ip filter {\n\tchain OUTPUT {\n\t\ttype filter hook output priority filter; policy drop;\n\t}\n}\n";
      const only = finding(checkNode(state({ nftRuleset: ok(ipt), egress: timedOut }), opts), "egress")[0]!;
      assert.equal(only.summary, timedOut.summary);
      // A rule for another interface than the kernel's route to the server does not stop it.
      const eth1 = nft.replace("ip daddr 10.225.0.4 tcp dport 8132 drop", 'oifname "eth0" drop');
      const routed = finding(checkNode(state({ nftRuleset: ok(eth1), egress: timedOut, serverRoute: { host: "10.225.0.4", dev: "eth1", src: null } }), opts), "egress")[0]!;
      assert.equal(routed.summary, timedOut.summary);
    });

    test("a REJECT in OUTPUT explains a timeout too: a catch-all REJECT meets its own ICMP error on the way back (seen in a namespace: connect times out)", () => {
      const { egress } = egressOf(withOutput("-o lo -j ACCEPT", "-j REJECT --reject-with icmp-host-prohibited"));
      assert.match(egress.summary, /^10\.225\.0\.4:8132 timed out after 2001 ms: this node's own firewall rejects the connection before it leaves the node, at iptables OUTPUT rule 2 \(-A OUTPUT -j REJECT --reject-with icmp-host-prohibited\) \(the rejection did not reach the connecting socket either: a rule dropped the reset or ICMP error the node sends itself\); fix on this node: iptables --insert OUTPUT 2 /);
      assert.equal((egress.blockedBy as { effect?: string }).effect, "reject");
    });

    test("a DROP in OUTPUT does not explain a refused probe (something answered): the probe keeps its own text", () => {
      const refused: CheckResult = {
        ...timedOut,
        summary: "10.225.0.4:8132 refused the connection: nothing listens on port 8132 there, or a firewall on the path rejects it.",
        fixes: [{ description: "Check that the server listens", command: "nc -v -w 2 10.225.0.4 8132" }],
        probes: [{ ...(timedOut.probes as readonly Record<string, unknown>[])[0]!, result: "refused" }],
      };
      const r = checkNode(state({ iptablesSave: ok(withOutput("-d 10.225.0.4/32 -p tcp -m tcp --dport 8132 -j DROP")), egress: refused }), opts);
      const egress = finding(r, "egress")[0]!;
      assert.equal(egress.summary, refused.summary);
      assert.deepEqual(egress.fixes, refused.fixes);
      assert.equal(egress.blockedBy, undefined);
    });

    test("a server given by name is walked at the address the probe dialled", () => {
      const byName: CheckResult = {
        ...timedOut,
        summary: "tunnel.example:8132 timed out after 2001 ms: a firewall, NSG or route on the path drops the traffic silently; allow outbound TCP 8132 to it.",
        probes: [{ ...(timedOut.probes as readonly Record<string, unknown>[])[0]!, target: "tunnel.example:8132", host: "tunnel.example", address: SERVER }],
      };
      const r = checkNode(state({ iptablesSave: ok(withOutput("-d 10.225.0.4/32 -p tcp -m tcp --dport 8132 -j DROP")), egress: byName, serverRoute: { host: SERVER, dev: "eth0", src: NODE_IP } }), opts);
      const egress = finding(r, "egress")[0]!;
      assert.match(egress.summary, /^tunnel\.example:8132 timed out after 2001 ms: this node's own firewall drops the connection before it leaves the node, at iptables OUTPUT rule 1 /);
      assert.ok(egress.assumptions.some((a) => a.includes(`to ${SERVER} (tunnel.example as the probe resolved it) port 8132`)), egress.assumptions.join("\n"));
      // Without the address (a probe that never dialled), nothing is walked.
      const unresolved = { ...byName, probes: [{ ...(byName.probes as readonly Record<string, unknown>[])[0]!, address: null }] };
      assert.equal(finding(checkNode(state({ egress: unresolved }), opts), "egress")[0]!.summary, byName.summary);
    });

    test("a server name with several addresses is walked at each one dialled: every block is named, one rule blocking both is one block", () => {
      const other = "10.225.0.9";
      const byName: CheckResult = {
        ...timedOut,
        summary: "tunnel.example:8132 timed out after 2001 ms: a firewall, NSG or route on the path drops the traffic silently; allow outbound TCP 8132 to it.",
        probes: [{ ...(timedOut.probes as readonly Record<string, unknown>[])[0]!, target: "tunnel.example:8132", host: "tunnel.example", address: other, addresses: [SERVER, other] }],
      };
      // Each address dropped by a rule of its own: the first gets the numbered fix, the second a fresh listing.
      const two = finding(checkNode(state({ iptablesSave: ok(withOutput("-d 10.225.0.4/32 -p tcp -m tcp --dport 8132 -j DROP", "-d 10.225.0.9/32 -p tcp -m tcp --dport 8132 -j DROP")), egress: byName }), opts), "egress")[0]!;
      assert.match(two.summary, /at iptables OUTPUT rule 1 \(-A OUTPUT -d 10\.225\.0\.4\/32 -p tcp -m tcp --dport 8132 -j DROP\) for 10\.225\.0\.4; fix on this node: iptables --delete OUTPUT 1; at iptables OUTPUT rule 2 \(-A OUTPUT -d 10\.225\.0\.9\/32 -p tcp -m tcp --dport 8132 -j DROP\) for 10\.225\.0\.9 blocks it too\.$/);
      assert.deepEqual(two.fixes.map((f) => f.command), ["iptables --delete OUTPUT 1", ...saves, "iptables -L OUTPUT -n --line-numbers"]);
      assert.match(two.fixes.at(-1)!.description, /^tunnel\.example:8132 for 10\.225\.0\.9: this node's own firewall drops it too, at iptables OUTPUT rule 2/);
      for (const address of [SERVER, other]) assert.ok(two.assumptions.some((a) => a.includes(`to ${address} (tunnel.example as the probe resolved it) port 8132`)), address);
      // Only the first address tried is blocked: found all the same (the walk once looked only at the last one tried).
      const first = finding(checkNode(state({ iptablesSave: ok(withOutput("-d 10.225.0.4/32 -p tcp -m tcp --dport 8132 -j DROP")), egress: byName }), opts), "egress")[0]!;
      assert.match(first.summary, /at iptables OUTPUT rule 1 \(-A OUTPUT -d 10\.225\.0\.4\/32 -p tcp -m tcp --dport 8132 -j DROP\) for 10\.225\.0\.4; fix on this node: iptables --delete OUTPUT 1\.$/);
      // One rule, deleted, opens both addresses: one block, one fix.
      const one = finding(checkNode(state({ iptablesSave: ok(withOutput("-d 10.225.0.0/24 -p tcp -m tcp --dport 8132 -j DROP")), egress: byName }), opts), "egress")[0]!;
      assert.match(one.summary, /at iptables OUTPUT rule 1 \(-A OUTPUT -d 10\.225\.0\.0\/24 -p tcp -m tcp --dport 8132 -j DROP\) for 10\.225\.0\.4; fix on this node: iptables --delete OUTPUT 1\.$/);
      assert.deepEqual(one.fixes.map((f) => f.command), ["iptables --delete OUTPUT 1", ...saves]);
      // A catch-all that stays gets an accept inserted per address: the one given opens only the first, so the second is named too.
      const all = finding(checkNode(state({ iptablesSave: ok(withOutput("-j DROP")), egress: byName }), opts), "egress")[0]!;
      assert.match(all.summary, /fix on this node: iptables --insert OUTPUT 1 -d 10\.225\.0\.4 -p tcp --dport 8132 -j ACCEPT; at iptables OUTPUT rule 1 \(-A OUTPUT -j DROP\) for 10\.225\.0\.9 blocks it too\.$/);
    });

    test("a server name that resolved to an IPv6 address is walked in the ip6tables dump", () => {
      const v6 = "fd00:225::4";
      const byName: CheckResult = {
        ...timedOut,
        probes: [{ ...(timedOut.probes as readonly Record<string, unknown>[])[0]!, target: "tunnel.example:8132", host: "tunnel.example", address: v6, addresses: [v6] }],
      };
      const ip6 = `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d ${v6}/128 -j DROP\nCOMMIT\n`;
      const r = checkNode(state({ iptablesSave: ok(withOutput()), ip6tablesSave: ok(ip6), egress: byName }), { ...opts, nodeIp: "fd00:224::5" });
      const egress = finding(r, "egress")[0]!;
      assert.match(egress.summary, /at ip6tables OUTPUT rule 1 \(-A OUTPUT -d fd00:225::4\/128 -j DROP\) for fd00:225::4; fix on this node: ip6tables --insert OUTPUT 1 -d fd00:225::4 -p tcp --dport 8132 -j ACCEPT\.$/);
    });

    test("the kernel's route to the server (ip route get) gives the interface and source address walked", () => {
      // The server is routed out of eth1 from 10.226.0.5: a DROP out of eth0 does not stop it, one out of eth1 does.
      const serverRoute = { host: SERVER, dev: "eth1", src: "10.226.0.5" };
      const viaEth0 = finding(checkNode(state({ iptablesSave: ok(withOutput("-o eth0 -j DROP")), egress: timedOut, serverRoute }), opts), "egress")[0]!;
      assert.equal(viaEth0.summary, timedOut.summary);
      assert.ok(viaEth0.assumptions.some((a) => a.includes(`from 10.226.0.5 to ${SERVER} port 8132 leaving by eth1 (the kernel's route to it, ip route get): no rule there blocks it`)), viaEth0.assumptions.join("\n"));
      const viaEth1 = finding(checkNode(state({ iptablesSave: ok(withOutput("-s 10.226.0.5/32 -o eth1 -j DROP")), egress: timedOut, serverRoute }), opts), "egress")[0]!;
      assert.match(viaEth1.summary, /at iptables OUTPUT rule 1 \(-A OUTPUT -s 10\.226\.0\.5\/32 -o eth1 -j DROP\)/);
    });

    test("no OUTPUT rule blocks it (or another interface's, or another server's): today's text and NSG fix are kept", () => {
      for (const text of [iptablesClean, withOutput("-o eth1 -j DROP", "-d 10.225.0.9/32 -j DROP", "-p tcp -m tcp --dport 8133 -j REJECT")]) {
        const { egress } = egressOf(text);
        assert.equal(egress.summary, timedOut.summary);
        assert.deepEqual(egress.fixes, timedOut.fixes);
        assert.equal(egress.blockedBy, undefined);
        assert.ok(egress.assumptions.includes(`iptables filter OUTPUT was walked for a new TCP connection from ${NODE_IP} to ${SERVER} port 8132 leaving by eth0 (the interface given for kubelet connections): no rule there blocks it.`), "it says OUTPUT was checked");
      }
      // Without the node's rules, the same.
      const unread = finding(checkNode(state({ iptablesSave: failed("iptables-save: not found"), egress: timedOut }), opts), "egress")[0]!;
      assert.equal(unread.summary, timedOut.summary);
    });
  });

  test("the local agent: not ready → problem pointing at egress; absent → warning (fine with agents elsewhere); skipped → no finding", () => {
    const notReady = finding(checkNode(state({ agentHealth: { kind: "not-ready", target: "http://127.0.0.1:8093", status: 503, body: "no server connection\n" } }), opts), "agent-health")[0]!;
    assert.equal(notReady.status, "problem");
    assert.match(notReady.summary, /readyz: 503 no server connection\): check egress/);
    const absent = checkNode(state({ agentHealth: { kind: "absent", target: "http://127.0.0.1:8093", reason: "connection refused" } }), opts);
    assert.deepEqual(finding(absent, "agent-health").map((f) => f.status), ["warning"]);
    assert.equal(absent.status, "warning");
    assert.deepEqual(absent.fixes, [], "a warning's fixes are not the node's fixes");
    assert.deepEqual(finding(checkNode(state({ agentHealth: { kind: "skipped" } }), opts), "agent-health"), []);
  });

  test("churn: as many connections to one remote as the node's SNAT ports is a warning; connections to the node itself or loopback are not churn", () => {
    const rows = (peer: string, n: number, st = "TIME-WAIT") => Array.from({ length: n }, (_, i) => `${st.padEnd(10)} 0      0        10.224.0.5:${40000 + i}   ${peer}\n`).join("");
    const busy = checkNode(state({ ssTan: ok(ssHeader + rows("10.225.0.4:8092", 8)) }), { ...opts, snatPortsPerNode: 8 });
    const churn = finding(busy, "churn")[0]!;
    assert.equal(churn.status, "warning");
    assert.match(churn.summary, /^Connection churn to 10\.225\.0\.4:8092: 8 connections \(8 in TIME_WAIT\)/);
    assert.equal(churn.fixes[0]!.command, "ss -tan state time-wait dst 10.225.0.4 | wc -l");
    // Without a SNAT allocation the threshold is 100 TIME_WAIT connections: 8 is no churn.
    assert.equal(finding(checkNode(state({ ssTan: ok(ssHeader + rows("10.225.0.4:8092", 8)) }), opts), "churn")[0]!.status, "ok");
    const local = ssHeader + rows(`${NODE_IP}:10250`, 20) + rows("127.0.0.1:8093", 20) + rows("[::1]:8093", 20);
    assert.equal(finding(checkNode(state({ ssTan: ok(local) }), { ...opts, snatPortsPerNode: 8 }), "churn")[0]!.status, "ok");
    assert.deepEqual(finding(checkNode(state({ ssTan: failed("ss not found") }), opts), "churn"), []);
  });

  test("the node's status is the worst finding's, and the summary counts the findings of that status", () => {
    assert.equal(worstStatus([]), "ok");
    assert.equal(worstStatus(["ok", "warning"]), "warning");
    assert.equal(worstStatus(["warning", "indeterminate", "ok"]), "indeterminate");
    assert.equal(worstStatus(["indeterminate", "problem", "warning"]), "problem");
    const r = checkNode(state({ iptablesSave: ok(iptablesDrop), procNetTcp: [procTcpHeader], agentHealth: { kind: "absent", target: "t", reason: "refused" } }), { ...opts, assumptions: ["given"] });
    assert.equal(r.status, "problem");
    assert.match(r.summary, /^2 findings; first: /);
    assert.deepEqual(r.assumptions, ["given"]);
    // Every problem finding's fixes, in finding order; the warning's (none here) and the ok ones' are left out.
    const problems = (r.findings as CheckResult[]).filter((f) => f.status === "problem");
    assert.deepEqual(problems.map((f) => f.id), ["iptables", "kubelet-listener"]);
    assert.deepEqual(r.fixes, problems.flatMap((f) => f.fixes));
    assert.equal(r.fixes[0]!.command, "iptables --delete INPUT 1");
    assert.match(r.fixes.at(-1)!.command, /^systemctl restart kubelet/);
  });

  describe("the node's Fix block is right as a whole: run top to bottom, it does what each finding's fixes would alone", () => {
    const header = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";
    const save = (...rules: string[]) => `${header}${rules.map((r) => `-A INPUT ${r}\n`).join("")}COMMIT\n`;
    // What the INPUT chain holds once every iptables command of the block has run, as `-A` lines.
    const inputAfter = (text: string, r: CheckResult) => {
      const table = r.fixes.filter((f) => /^iptables --/.test(f.command)).reduce((t, f) => applyIptablesCommand(t, f.command), parseIptablesSave(text).tables.get("filter")!);
      return table.chains.get("INPUT")!.rules.map((rule) => rule.text.replace(/^-A INPUT /, ""));
    };
    const commands = (r: CheckResult) => r.fixes.map((f) => f.command);
    const saves = ["iptables-save > /etc/iptables/rules.v4", "iptables-save > /etc/sysconfig/iptables"];

    test("one rule blocking every --source is deleted once, and saved once, after the delete (the audit's doubled `iptables --delete INPUT 1`)", () => {
      const text = save("-p tcp -m tcp --dport 10250 -j DROP", "-p tcp -m tcp --dport 22 -j ACCEPT");
      const r = checkNode(state({ iptablesSave: ok(text) }), opts);
      assert.deepEqual(finding(r, "iptables").map((f) => f.status), ["problem", "problem"]);
      assert.deepEqual(commands(r), ["iptables --delete INPUT 1", ...saves]);
      assert.deepEqual(inputAfter(text, r), ["-p tcp -m tcp --dport 22 -j ACCEPT"], "the unrelated rule stays");
    });

    test("a rule per source: each delete names the rule's number at the point it runs", () => {
      const text = save("-s 10.224.0.4/32 -p tcp -m tcp --dport 10250 -j DROP", "-s 10.224.0.6/32 -p tcp -m tcp --dport 10250 -j DROP", "-p tcp -m tcp --dport 22 -j ACCEPT");
      const r = checkNode(state({ iptablesSave: ok(text) }), opts);
      assert.deepEqual(finding(r, "iptables").map((f) => f.fixes[0]!.command), ["iptables --delete INPUT 1", "iptables --delete INPUT 2"], "each planned alone");
      assert.deepEqual(inputAfter(text, r), ["-p tcp -m tcp --dport 22 -j ACCEPT"]);
      assert.deepEqual(commands(r).slice(-2), saves);
      assert.match(r.fixes[1]!.description, /In this combined list it is 1, not 2/);
    });

    test("a delete for one source and an insert before a catch-all for another: the insert still lands before the catch-all", () => {
      const text = save("-s 10.224.0.4/32 -p tcp -m tcp --dport 10250 -j DROP", "-p tcp -m tcp --dport 22 -j ACCEPT", "-s 10.224.0.6/32 -j DROP", "-p tcp -m tcp --dport 443 -j ACCEPT");
      const r = checkNode(state({ iptablesSave: ok(text) }), opts);
      assert.match(finding(r, "iptables")[1]!.fixes[0]!.command, /^iptables --insert INPUT 3 /, "planned alone: before rule 3");
      const after = inputAfter(text, r);
      assert.deepEqual(after, ["-p tcp -m tcp --dport 22 -j ACCEPT", "-p tcp --dport 10250 -s 10.224.0.6 -j ACCEPT", "-s 10.224.0.6/32 -j DROP", "-p tcp -m tcp --dport 443 -j ACCEPT"]);
      const rerun = checkNode(state({ iptablesSave: ok(save(...after)) }), opts);
      assert.deepEqual(finding(rerun, "iptables").map((f) => f.status), ["ok", "ok"]);
    });

    // A later allow for the agents' subnet: deleting the DENY alone lets them in, so the delete is offered too.
    test("ufw: a deny for every source gets one allow per source and one delete of the deny, numbered after the inserts (not the audit's insert 1 / delete 1 twice)", () => {
      const deny = ufwVerboseDeny.replace("22/tcp                     ALLOW IN    Anywhere                  \n",
        "10250/tcp                  DENY IN     Anywhere                  \n10250/tcp                  ALLOW IN    10.224.0.0/16             \n22/tcp                     ALLOW IN    Anywhere                  \n");
      const r = checkNode(state({ ufwStatus: ok(deny) }), opts);
      assert.deepEqual(finding(r, "ufw").map((f) => f.fixes.map((x) => x.command)), SOURCES.map((s) => [`ufw insert 1 allow from ${s} to ${NODE_IP} port 10250 proto tcp`, "ufw --force delete 2"]), "each planned alone");
      assert.deepEqual(commands(r), [
        `ufw insert 1 allow from 10.224.0.4 to ${NODE_IP} port 10250 proto tcp`,
        "ufw --force delete 2",
        `ufw insert 2 allow from 10.224.0.6 to ${NODE_IP} port 10250 proto tcp`,
      ]);
    });

    test("the same source twice, or ufw's allow given by both the iptables and the ufw finding, is one allow", () => {
      const ufwSave = "*filter\n:INPUT DROP [0:0]\n:ufw-user-input - [0:0]\n-A INPUT -j ufw-user-input\n-A ufw-user-input -s 10.224.0.6/32 -p tcp -m tcp --dport 10250 -j DROP\n-A ufw-user-input -s 10.224.0.0/16 -p tcp -m tcp --dport 10250 -j ACCEPT\n-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
      const ufw = ufwVerboseDeny.replace("22/tcp                     ALLOW IN    Anywhere                  \n",
        "10250/tcp                  DENY IN     10.224.0.6                \n10250/tcp                  ALLOW IN    10.224.0.0/16             \n22/tcp                     ALLOW IN    Anywhere                  \n");
      const r = checkNode(state({ iptablesSave: ok(ufwSave), ufwStatus: ok(ufw) }), { ...opts, sources: ["10.224.0.6", "10.224.0.6"] });
      assert.deepEqual(commands(r), ["ufw insert 1 allow from 10.224.0.6 to any port 10250 proto tcp", "ufw --force delete 2"]);
    });
  });
});

describe("checkNode beside iptables-legacy, hand-written nft tables and iptables-nft's own", () => {
  const src = "10.250.0.2";
  const one: NodeOptions = { sources: [src], nodeIp: "10.250.0.1", port: 10250, inInterface: "eth0" };
  const legacyDrop = "# Generated by iptables-save v1.8.9 on Fri Nov 27 18:50:37 2026\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 10250 -j DROP\nCOMMIT\n";
  const warning = "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n";

  test("iptables-legacy's rules, read beside iptables-nft's empty dump, are judged: blocked, with iptables-legacy's commands, and both backends named", () => {
    // What iptables-save printed in a namespace (nothing on stdout, the warning on stderr) and iptables-legacy-save.
    const r = checkNode(state({ iptablesSave: { ok: true, text: "", stderr: warning }, iptablesLegacySave: ok(legacyDrop) }), one);
    assert.equal(r.status, "problem");
    const legacy = finding(r, "iptables-legacy");
    assert.deepEqual(legacy.map((f) => [f.status, f.effect]), [["problem", "drop"]]);
    assert.match(r.summary, /^iptables-legacy drops a new TCP connection from 10\.250\.0\.2 .*fix: iptables-legacy --delete INPUT 1\.$/);
    // No iptables-legacy-save into rules.v4: the boot restores that file through the nf_tables backend.
    assert.deepEqual(r.fixes.map((f) => f.command), ["iptables-legacy --delete INPUT 1"]);
    assert.ok(legacy[0]!.assumptions.some((a) => /lost at reboot unless/.test(a)));
    assert.ok(r.assumptions.some((a) => /iptables-legacy tables are loaded as well as nftables/.test(a)), r.assumptions.join("\n"));
    assert.ok(finding(r, "iptables")[0]!.assumptions.some((a) => /Both iptables backends are loaded/.test(a)));
  });

  test("with iptables-save on the legacy backend (its header names none), iptables-nft-shaped nft chains are walked too: iptables-save did not show them", () => {
    const nftInput = "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t\ttcp dport 10250 counter packets 0 bytes 0 drop\n\t}\n}\n";
    const r = checkNode(state({ iptablesSave: ok(legacyDrop.replace("-A INPUT -p tcp -m tcp --dport 10250 -j DROP\n", "")), nftRuleset: ok(nftInput) }), one);
    assert.deepEqual(finding(r, "nftables").map((f) => f.status), ["problem"]);
  });

  test("the warning alone (iptables-legacy-save not read) still reaches the iptables finding, which says the legacy rules are not in its input", () => {
    const r = checkNode(state({ iptablesSave: { ok: true, text: iptablesClean, stderr: warning } }), one);
    const ipt = finding(r, "iptables")[0]!;
    assert.match(ipt.summary, /iptables-legacy tables are present too/);
    assert.equal(finding(r, "iptables-legacy").length, 0);
  });

  test("an empty iptables-legacy-save (no legacy tables) adds nothing", () => {
    const r = checkNode(state({ iptablesSave: ok(iptablesClean), iptablesLegacySave: ok("") }), one);
    assert.equal(finding(r, "iptables-legacy").length, 0);
    assert.equal(r.status, "ok");
  });

  test("a hand-written `table ip filter` (chain input, not iptables-nft's INPUT) is judged by the nftables finding, and iptables-save's comment on it is no doubt there", () => {
    const nft = "table ip filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tct state established,related accept\n\t\ttcp dport 22 accept\n\t}\n}\n";
    const save = "# Table `filter' contains incompatible base-chains, use 'nft' tool to list them.\n# Generated by iptables-save v1.8.9 (nf_tables) on Fri Nov 27 18:50:46 2026\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
    const r = checkNode(state({ iptablesSave: ok(save), nftRuleset: ok(nft) }), one);
    assert.equal(r.status, "problem", r.summary);
    const n = finding(r, "nftables");
    assert.deepEqual(n.map((f) => [f.status, f.effect, (f.decidedBy as { table: string; chain: string }).chain]), [["problem", "drop", "input"]]);
    assert.match(r.summary, /nftables drops new TCP connections from 10\.250\.0\.2 to port 10250: the policy \(drop\) in ip filter chain input decides/);
    const ipt = finding(r, "iptables")[0]!;
    assert.equal(ipt.status, "ok");
    assert.ok(ipt.assumptions.some((a) => /the nftables finding judges them/.test(a)), ipt.assumptions.join("\n"));
    // The same table with iptables-nft's INPUT added beside the hand-written chain (as iptables -A does).
    const mixed = nft.replace(/\}\n$/, "\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t\ttcp dport 10251 counter packets 0 bytes 0 drop\n\t}\n}\n");
    assert.equal(finding(checkNode(state({ iptablesSave: ok(save), nftRuleset: ok(mixed) }), one), "nftables")[0]?.status, "problem");
  });

  test("an IPv4-mapped source is judged by iptables-save, not ip6tables-save", () => {
    const drop = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.250.0.2/32 -p tcp -m tcp --dport 10250 -j DROP\nCOMMIT\n";
    const r = checkNode(state({ iptablesSave: ok(drop), ip6tablesSave: ok("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n") }), { ...one, sources: ["::ffff:10.250.0.2"] });
    const ipt = finding(r, "iptables");
    assert.deepEqual(ipt.map((f) => [f.status, f.effect]), [["problem", "drop"]]);
    assert.equal(r.fixes[0]?.command, "iptables --delete INPUT 1");
  });

  test("iptables-nft's INPUT is reported once, by the iptables finding, when the ruleset has another table too", () => {
    const save = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -s 10.250.0.2/32 -p tcp -m tcp --dport 10250 -j DROP\nCOMMIT\n";
    const nft = "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tip saddr 10.250.0.2 tcp dport 10250 counter packets 0 bytes 0 drop\n\t}\n}\n" +
      "table inet mine {\n\tchain input {\n\t\ttype filter hook input priority filter + 10; policy accept;\n\t\ttcp dport 22 accept\n\t}\n}\n";
    const r = checkNode(state({ iptablesSave: ok(save), nftRuleset: ok(nft) }), one);
    assert.deepEqual(ids(r).filter((i) => /^(iptables|nftables)/.test(i)), ["iptables:problem", "nftables:ok"]);
    const n = finding(r, "nftables")[0]!;
    assert.ok(n.assumptions.some((a) => /iptables-nft made \(ip filter INPUT/.test(a)), n.assumptions.join("\n"));
    assert.deepEqual(r.fixes.filter((f) => f.command.startsWith("nft ")), []);
    // A hand-written chain after it that drops too is still found.
    const both = nft.replace("tcp dport 22 accept", "tcp dport 10250 drop");
    assert.deepEqual(ids(checkNode(state({ iptablesSave: ok(save), nftRuleset: ok(both) }), one)).filter((i) => /^(iptables|nftables)/.test(i)), ["iptables:problem", "nftables:problem"]);
  });

  test("iptables-nft's chains that change the packet stay in the walk: a redirect in its nat PREROUTING still moves the port the other chains read", () => {
    const save = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -m tcp --dport 10250 -j REDIRECT --to-ports 8080\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
    const nft = "table ip nat {\n\tchain PREROUTING {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\ttcp dport 10250 counter packets 0 bytes 0 redirect to :8080\n\t}\n}\n" +
      "table inet mine {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\ttcp dport 8080 drop\n\t}\n}\n";
    const n = finding(checkNode(state({ iptablesSave: ok(save), nftRuleset: ok(nft) }), one), "nftables")[0]!;
    assert.deepEqual([n.status, (n.decidedBy as { text: string }).text], ["problem", "tcp dport 8080 drop"]);
    assert.ok(n.assumptions.some((a) => /iptables-nft's ip nat PREROUTING stayed in the walk/.test(a)), n.assumptions.join("\n"));
  });
});
