// Property test: random INPUT rule sets are loaded into a real network namespace and a real
// connection is sent through a veth pair from a peer namespace; what the kernel did (connected /
// refused / timeout) must equal the evaluator's effect (accept / reject / drop). Root only.
// Addresses are 10.250.x.x and exist only inside the two namespaces made here.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { checkIptables } from "../src/doctor/iptables/index.js";
import { kernelCheckSkip, probeConnections, runCommand, startNetnsPair, type NetnsPair } from "./helpers/netns-pair.js";
import { seededRandom as mulberry32 } from "./helpers/seeded-random.js";

const skip = kernelCheckSkip(["ip", "iptables-restore", "python3"], "apt-get install iproute2 iptables python3");

const SEED = Number(process.env.IPT_SEED ?? Date.now() % 1_000_000);
const SETS = 40;
const NODE_ADDR = "10.250.0.1";
const SOURCES = ["10.250.0.2", "10.250.1.5", "10.250.2.5"];
const PORT = 10250;


function generate(rand: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const chance = (p: number) => rand() < p;
  const chains = ["C1", "C2", "C3"];
  const rule = (chain: string, index: number): string => {
    const parts: string[] = [];
    if (chance(0.4)) parts.push(`${chance(0.2) ? "! " : ""}-s ${pick(["10.250.1.0/24", "10.250.0.0/16", "10.250.2.5/32", "10.250.0.2/32", "192.168.0.0/16"])}`);
    if (chance(0.25)) parts.push(`${chance(0.3) ? "! " : ""}-i ${pick(["eth0", "eth+", "azv1", "lo"])}`);
    let tcp = false;
    if (chance(0.6)) {
      tcp = true;
      parts.push("-p tcp");
      const kind = rand();
      if (kind < 0.35) parts.push(`-m tcp ${chance(0.2) ? "! " : ""}--dport ${pick(["10250", "10000:11000", "22", "10251:10300"])}`);
      else if (kind < 0.6) parts.push(`-m multiport ${chance(0.2) ? "! " : ""}--dports ${pick(["22,10250", "443,9000:9999", "10250,30000:32767", "80"])}`);
      else if (kind < 0.7) parts.push("-m tcp --sport 1024:65535");
    }
    if (chance(0.2)) parts.push(`-m conntrack ${chance(0.3) ? "! " : ""}--ctstate ${pick(["NEW", "RELATED,ESTABLISHED", "INVALID", "NEW,ESTABLISHED"])}`);
    const below = chains.filter((c) => (chain === "INPUT" ? true : c > chain));
    const targets = ["ACCEPT", "DROP", "REJECT", "RETURN", "LOG"];
    if (below.length > 0) targets.push("JUMP", "JUMP", "GOTO");
    const t = pick(targets);
    let target: string;
    if (t === "REJECT") target = `-j REJECT --reject-with ${pick(tcp ? ["tcp-reset", "icmp-port-unreachable", "icmp-host-prohibited"] : ["icmp-port-unreachable", "icmp-host-prohibited"])}`;
    else if (t === "JUMP") target = `-j ${pick(below)}`;
    else if (t === "GOTO") target = `-g ${pick(below)}`;
    else if (t === "LOG") target = `-j LOG --log-prefix "r${index} "`;
    else target = `-j ${t}`;
    return `-A ${chain} ${parts.join(" ")} ${target}`.replace(/ +/g, " ");
  };
  const lines = ["*filter", `:INPUT ${chance(0.4) ? "DROP" : "ACCEPT"} [0:0]`, ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"];
  for (const c of chains) lines.push(`:${c} - [0:0]`);
  // Found by this test: a rule that tells the SYN from the handshake's ACK (ctstate, tcp flags)
  // can accept the SYN and then REJECT the ACK, and the client sees an error although the SYN
  // got in. The doctor judges the SYN only (§4.3), so accept the rest of an accepted connection
  // first, as real rule sets do; it never matches the SYN itself.
  lines.push("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
  const n = 1 + Math.floor(rand() * 11);
  for (let i = 0; i < n; i++) lines.push(rule("INPUT", i));
  for (const c of chains) {
    const m = Math.floor(rand() * 5);
    for (let i = 0; i < m; i++) lines.push(rule(c, i));
  }
  lines.push("COMMIT", "");
  return lines.join("\n");
}

describe("doctor iptables agrees with the kernel", { skip }, () => {
  let pair: NetnsPair | undefined;
  const sh = runCommand;

  before(async () => {
    pair = await startNetnsPair({ name: "iptk", nodeAddr: NODE_ADDR, sources: SOURCES, ports: [PORT] });
  });

  after(() => pair?.remove());

  it(`matches real SYNs for ${SETS} random rule sets (seed ${SEED})`, { timeout: 90_000 }, () => {
    const rand = mulberry32(SEED);
    let compared = 0;
    for (let set = 0; set < SETS; set++) {
      const rules = generate(rand);
      const { node, peer } = pair!;
      sh(["ip", "netns", "exec", node, "iptables-restore"], rules);
      const saved = sh(["ip", "netns", "exec", node, "iptables-save"]);
      const seen = probeConnections(peer, PORT, SOURCES.map((source) => [source, NODE_ADDR] as const));
      SOURCES.forEach((source, i) => {
        const result = checkIptables(saved, { source, destination: NODE_ADDR, port: PORT, protocol: "tcp", inInterface: "eth0", chain: "INPUT" });
        const kernel = { connected: "accept", refused: "reject", unreachable: "reject", timeout: "drop" }[seen[i]!];
        assert.equal(result.effect, kernel,
          `seed ${SEED} (IPT_SEED=${SEED}), set ${set}, source ${source}: kernel ${seen[i]}, doctor ${result.verdict}: ${result.summary}\n${rules}`);
        compared++;
      });
    }
    assert.equal(compared, SETS * SOURCES.length);
  });
});

// An audit's reproductions for the tables before filter INPUT (before-filter.ts), each judged by
// the kernel: raw runs before conntrack, raw's and mangle's built-in chains apply their policies
// (and the doctor's fix for one opens the flow), nat's does not, a DNAT to 127.0.0.1 depends on
// route_localnet, REDIRECT lands on the interface's primary address, and a table iptables-save
// shows only as a stub hides nftables chains that filter.
describe("doctor iptables agrees with the kernel before filter INPUT", { skip }, () => {
  let pair: NetnsPair | undefined;
  const SECONDARY = "10.250.0.11";
  const nodeSh = (args: string[], input?: string) => runCommand(["ip", "netns", "exec", pair!.node, ...args], input);

  before(async () => {
    pair = await startNetnsPair({ name: "iptpre", nodeAddr: NODE_ADDR, sources: ["10.250.0.2"], ports: [PORT, 8080] });
    runCommand(["ip", "-n", pair.node, "addr", "add", `${SECONDARY}/16`, "dev", "eth0"]);
  });

  after(() => pair?.remove());

  const table = (name: string, chains: readonly string[], rules: readonly string[], policies: Readonly<Record<string, string>>) =>
    [`*${name}`, ...chains.map((c) => `:${c} ${policies[`${name}:${c}`] ?? "ACCEPT"} [0:0]`), ...rules.filter((r) => r.startsWith(`${name}:`)).map((r) => r.slice(name.length + 1)), "COMMIT"];
  // Every table each time, so that iptables-restore replaces what the case before loaded.
  const rules = (lines: readonly string[], policies: Readonly<Record<string, string>> = {}) => [
    ...table("raw", ["PREROUTING", "OUTPUT"], lines, policies),
    ...table("mangle", ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"], lines, policies),
    ...table("nat", ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"], lines, policies),
    ...table("filter", ["INPUT", "FORWARD", "OUTPUT"], lines, policies),
    "",
  ].join("\n");
  const KERNEL_EFFECT: Record<string, string> = { connected: "accept", refused: "reject", unreachable: "reject", timeout: "drop" };

  const judge = (text: string, destination = NODE_ADDR) => {
    nodeSh(["iptables-restore"], text);
    const saved = nodeSh(["iptables-save"]);
    const [seen] = probeConnections(pair!.peer, PORT, [["10.250.0.2", destination]]);
    const doctor = checkIptables(saved, { source: "10.250.0.2", destination, port: PORT, protocol: "tcp", inInterface: "eth0", chain: "INPUT" });
    return { seen: seen!, doctor };
  };
  const agrees = (text: string, expected: { kernel: string; verdict: string }) => {
    const { seen, doctor } = judge(text);
    assert.deepEqual({ kernel: seen, verdict: doctor.verdict }, expected, `${doctor.summary}\n${text}`);
    if (doctor.verdict !== "indeterminate") assert.equal(doctor.effect, KERNEL_EFFECT[seen]);
    return doctor;
  };

  it("raw PREROUTING reads a new connection as INVALID, not NEW (before conntrack)", { timeout: 30_000 }, () => {
    agrees(rules(["raw:-A PREROUTING -p tcp -m tcp --dport 10250 -m conntrack --ctstate NEW -j DROP"]), { kernel: "connected", verdict: "allowed" });
    agrees(rules(["raw:-A PREROUTING -p tcp -m tcp --dport 10250 -m conntrack --ctstate INVALID -j DROP"]), { kernel: "timeout", verdict: "blocked" });
    agrees(rules(["raw:-A PREROUTING -p tcp -m tcp --dport 10250 -j CT --notrack", "raw:-A PREROUTING -p tcp -m state --state UNTRACKED -j DROP"]), { kernel: "timeout", verdict: "blocked" });
  });

  it("raw's and mangle's policy DROP blocks, and the doctor's fix opens the flow; nat's policy does not block", { timeout: 30_000 }, () => {
    const stock = (chain: string) => [`mangle:-A ${chain} -p tcp -m tcp --dport 22 -j ACCEPT`, `mangle:-A ${chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`];
    for (const [lines, policy] of [[stock("PREROUTING"), "mangle:PREROUTING"], [stock("INPUT"), "mangle:INPUT"], [[], "raw:PREROUTING"]] as const) {
      const text = rules(lines, { [policy]: "DROP" });
      const doctor = agrees(text, { kernel: "timeout", verdict: "blocked" });
      const [table, chain] = policy.split(":");
      assert.deepEqual(doctor.decidedBy, { table, chain, rule: null, target: "policy", policy: "DROP", text: `:${chain} DROP [0:0]` });
      for (const fix of doctor.fixes.filter((f) => !f.command.includes("-save"))) nodeSh(fix.command.split(" "));
      assert.deepEqual(probeConnections(pair!.peer, PORT, [["10.250.0.2", NODE_ADDR]]), ["connected"], `after ${doctor.fixes.map((f) => f.command).join("; ")}`);
    }
    agrees(rules([], { "nat:PREROUTING": "DROP" }), { kernel: "connected", verdict: "allowed" });
  });

  it("a DNAT to 127.0.0.1 depends on route_localnet, which the input does not show: indeterminate", { timeout: 30_000 }, () => {
    const text = rules(["nat:-A PREROUTING -p tcp -m tcp --dport 10250 -j DNAT --to-destination 127.0.0.1:10250"]);
    const doctor = agrees(text, { kernel: "timeout", verdict: "indeterminate" });
    assert.match(doctor.summary, /route_localnet/);
    try {
      nodeSh(["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"]);
      assert.equal(judge(text).seen, "connected");
    } finally {
      nodeSh(["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=0"]);
    }
  });

  it("REDIRECT sends a connection to a secondary address to the interface's primary one: a -d match is not decided", { timeout: 30_000 }, () => {
    const text = rules(["nat:-A PREROUTING -p tcp -m tcp --dport 10250 -j REDIRECT --to-ports 8080", `filter:-A INPUT -d ${SECONDARY}/32 -p tcp -j DROP`]);
    const { seen, doctor } = judge(text, SECONDARY);
    assert.deepEqual([seen, doctor.verdict], ["connected", "indeterminate"], doctor.summary);
  });

  const nftSkip = spawnSync("sh", ["-c", "command -v nft && iptables-save --version | grep -q nf_tables"]).status === 0 ? false : "needs nft and the nf_tables iptables-save";
  it("a table iptables-save shows only as a stub (incompatible base chains) is indeterminate, not allowed by the stub's policy", { timeout: 30_000, skip: nftSkip }, () => {
    nodeSh(["nft", "flush", "ruleset"]);
    nodeSh(["nft", "-f", "-"], "table ip filter {\n  chain x {\n    type filter hook input priority 0; policy drop;\n  }\n}\n");
    try {
      const saved = nodeSh(["iptables-save"]);
      assert.match(saved, /^# Table `filter' contains incompatible base-chains, use 'nft' tool to list them\.$/m);
      const [seen] = probeConnections(pair!.peer, PORT, [["10.250.0.2", NODE_ADDR]]);
      const doctor = checkIptables(saved, { source: "10.250.0.2", destination: NODE_ADDR, port: PORT, protocol: "tcp", inInterface: "eth0", chain: "INPUT" });
      assert.deepEqual([seen, doctor.verdict], ["timeout", "indeterminate"], doctor.summary);
      assert.match(doctor.summary, /doctor nftables/);
    } finally {
      nodeSh(["nft", "flush", "ruleset"]);
    }
  });
});
