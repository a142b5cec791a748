// `doctor node` run inside a real network namespace, where iptables-save, iptables-legacy-save and
// nft list ruleset read that namespace's rules; a peer namespace sends a real SYN over a veth, and
// the node's verdict must be the kernel's. The cases are the audit's: rules only the legacy backend
// holds (iptables-nft's dump is empty, its warning on stderr), a hand-written `table ip filter`,
// an IPv4-mapped --source, and iptables-nft's INPUT beside another nft table. Root only; addresses
// 10.250.x.x exist only inside the namespaces.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { kernelCheckSkip, probeConnections, runCommand, startNetnsPair, type NetnsPair } from "./helpers/netns-pair.js";

const skip = kernelCheckSkip(["ip", "nft", "iptables-nft", "iptables-legacy", "iptables-legacy-save", "python3"], "apt-get install iproute2 nftables iptables python3");

const NODE_ADDR = "10.250.0.1";
const SOURCE = "10.250.0.2";
const PORT = 10250;
const bin = join(import.meta.dirname, "..", "bin", "nodetunnel.js");

interface Finding { id: string; status: string; effect?: string | null; summary: string; assumptions: string[]; decidedBy?: Record<string, unknown> | null }
interface Report { status: string; summary: string; assumptions: string[]; findings: Finding[] }

function doctorNode(ns: string, source: string): Promise<Report> {
  const argv = ["netns", "exec", ns, "env", "NODETUNNEL_FROM_SOURCE=1", process.execPath, bin, "doctor", "node", "--output", "json",
    "--source", source, "--node-ip", NODE_ADDR, "--in-interface", "eth0", "--agent-health", "none"];
  return new Promise((resolve, reject) => {
    execFile("ip", argv, { timeout: 60_000 }, (err, stdout) => {
      // Exit 1 is a problem found: its report is on stdout all the same.
      if (err && stdout === "") reject(err);
      else resolve(JSON.parse(stdout) as Report);
    });
  });
}

const flows = (r: Report) => r.findings.filter((f) => ["iptables", "iptables-legacy", "nftables"].includes(f.id));

describe("doctor node agrees with the kernel", { skip }, () => {
  let pair: NetnsPair | undefined;
  const inNode = (...args: string[]) => runCommand(["ip", "netns", "exec", pair!.node, ...args]);
  const kernel = () => probeConnections(pair!.peer, PORT, [[SOURCE, NODE_ADDR]])[0];

  before(async () => {
    pair = await startNetnsPair({ name: "node", nodeAddr: NODE_ADDR, sources: [SOURCE], ports: [PORT] });
  });

  after(() => pair?.remove());

  it("a hand-written `table ip filter` whose input chain drops the port: the nftables finding blocks, as the kernel does", { timeout: 60_000 }, async () => {
    runCommand(["ip", "netns", "exec", pair!.node, "nft", "-f", "-"], "flush ruleset\ntable ip filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n\t\tct state established,related accept\n\t\ttcp dport 22 accept\n\t}\n}\n");
    assert.equal(kernel(), "timeout");
    const r = await doctorNode(pair!.node, SOURCE);
    assert.equal(r.status, "problem", r.summary);
    assert.deepEqual(flows(r).map((f) => [f.id, f.status]), [["iptables", "ok"], ["nftables", "problem"]]);
  });

  it("iptables-nft's INPUT drop beside another nft table: blocked, reported once (by the iptables finding)", { timeout: 60_000 }, async () => {
    runCommand(["ip", "netns", "exec", pair!.node, "nft", "-f", "-"], "flush ruleset\ntable inet mine {\n\tchain input {\n\t\ttype filter hook input priority 10; policy accept;\n\t\ttcp dport 22 accept\n\t}\n}\n");
    inNode("iptables-nft", "-A", "INPUT", "-s", SOURCE, "-p", "tcp", "--dport", String(PORT), "-j", "DROP");
    assert.equal(kernel(), "timeout");
    const r = await doctorNode(pair!.node, SOURCE);
    assert.equal(r.status, "problem", r.summary);
    assert.deepEqual(flows(r).map((f) => [f.id, f.status]), [["iptables", "problem"], ["nftables", "ok"]]);
  });

  it("an IPv4-mapped --source meets iptables' IPv4 rules: blocked, as the kernel blocks its IPv4 address", { timeout: 60_000 }, async () => {
    const r = await doctorNode(pair!.node, `::ffff:${SOURCE}`);
    assert.equal(r.status, "problem", r.summary);
    assert.deepEqual(flows(r).map((f) => [f.id, f.status, f.effect]), [["iptables", "problem", "drop"], ["nftables", "ok", "accept"]]);
  });

  // Last: the legacy backend's tables, once made, stay in the namespace.
  it("rules only iptables-legacy holds (nft empty): judged and blocked, and both backends named", { timeout: 60_000 }, async () => {
    inNode("nft", "flush", "ruleset");
    inNode("iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", String(PORT), "-j", "DROP");
    assert.equal(kernel(), "timeout");
    const r = await doctorNode(pair!.node, SOURCE);
    assert.equal(r.status, "problem", r.summary);
    assert.deepEqual(flows(r).map((f) => [f.id, f.status]), [["iptables", "ok"], ["iptables-legacy", "problem"]]);
    assert.match(r.summary, /^iptables-legacy drops/);
    assert.ok(r.assumptions.some((a) => /iptables-legacy tables are loaded as well as nftables/.test(a)), r.assumptions.join("\n"));
  });
});
