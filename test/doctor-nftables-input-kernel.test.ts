// Property test for `doctor nftables` (the input path): random rulesets (filter chains on input
// and prerouting, an inet or netdev ingress chain, jumps, gotos, negations, address ranges and
// sets, interfaces, tcp flags, conntrack state, fib, equal priorities, and a nat chain on
// prerouting whose redirect or dnat to the node sends the port to 8080, where the listener also
// accepts, so that later chains must read the rewritten port) are loaded into a real
// network namespace, and a peer namespace sends real SYNs from three sources over a veth; what
// the kernel did (connected / refused / unreachable / timeout) must equal the evaluator's effect
// (accept / reject / reject / drop). Root only. Addresses are 10.250.x.x and exist only inside
// the two namespaces made here.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { checkNftables } from "../src/doctor/nftables/index.js";
import { kernelCheckSkip, probeConnections, runCommand, startNetnsPair, type NetnsPair } from "./helpers/netns-pair.js";
import { seededRandom } from "./helpers/seeded-random.js";

const skip = kernelCheckSkip(["ip", "nft", "python3"], "apt-get install iproute2 nftables python3");

const SEED = Number(process.env.NFT_SEED ?? Date.now() % 1_000_000);
const SETS = 40;
const NODE_ADDR = "10.250.0.1";
const SOURCES = ["10.250.0.2", "10.250.1.5", "10.250.2.5"];
const PORT = 10250;
/** Where the generated nat rules redirect the port to. */
const NAT_PORT = 8080;

function generate(rand: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const chance = (p: number) => rand() < p;
  const not = () => (chance(0.2) ? "!= " : "");
  // nft refuses reject outside the input, forward and output hooks (and in chains prerouting or
  // ingress jump to), and conntrack and fib matches in netdev chains.
  const rule = (regular: readonly string[], hook: "input" | "prerouting" | "ingress"): string => {
    const parts: string[] = [];
    if (chance(0.45)) parts.push(`ip saddr ${not()}${pick(["10.250.1.0/24", "10.250.0.0/16", "10.250.2.5", "10.250.0.2", "192.168.0.0/16", "{ 10.250.0.2, 10.250.2.5 }", "10.250.1.0-10.250.1.9"])}`);
    if (chance(0.25)) parts.push(`iifname ${not()}${pick(['"eth0"', '"eth*"', '"lo"', '"azv1"'])}`);
    if (chance(0.55)) {
      const kind = rand();
      if (kind < 0.45) parts.push(`tcp dport ${not()}${pick(["10250", "10000-11000", "22", "{ 22, 10250 }", "10251", `${NAT_PORT}`, `{ 22, ${NAT_PORT} }`])}`);
      else if (kind < 0.6) parts.push(`tcp sport ${pick(["1024-65535", "32768-60999", "22"])}`);
      else if (kind < 0.75) parts.push(`meta l4proto ${pick(["tcp", "udp"])}`);
      else if (kind < 0.85) parts.push(`udp dport ${pick(["10250", "53"])}`);
      else parts.push(`tcp flags ${pick(["syn", "& (syn | ack) == syn", "ack"])}`);
    }
    if (hook !== "ingress" && chance(0.15)) parts.push(`ct state ${pick(["new", "established,related", "invalid", "new,established"])}`);
    if (hook !== "ingress" && chance(0.1)) parts.push(`fib daddr type ${not()}${pick(["local", "unicast"])}`);
    if (hook !== "ingress" && chance(0.08)) parts.push(`ct status ${not()}dnat`);
    if (chance(0.1)) parts.push("counter");
    const verdicts = ["accept", "drop", "return", "continue"];
    if (hook === "input") verdicts.push("reject", "reject with icmpx type host-unreachable");
    if (hook === "input" && parts.some((p) => /^tcp |l4proto tcp/.test(p))) verdicts.push("reject with tcp reset");
    if (regular.length > 0) verdicts.push("JUMP", "JUMP", "GOTO");
    const v = pick(verdicts);
    const verdict = v === "JUMP" ? `jump ${pick(regular)}` : v === "GOTO" ? `goto ${pick(regular)}` : v;
    return [...parts, verdict].join(" ");
  };
  // What the kernel does to the handshake's later packets is not the walk's question (it judges
  // the SYN): each chain accepts established traffic first, as real rulesets do, and lets the
  // node's own replies (a reject's reset or ICMP error) out.
  const chain = (name: string, head: string | null, rules: string[]) =>
    `\tchain ${name} {\n${head ? `\t\t${head}\n` : ""}${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n`;
  const many = (n: number, regular: readonly string[], hook: "input" | "prerouting" | "ingress") => Array.from({ length: n }, () => rule(regular, hook));
  // c1 may jump to c2, never back: no loops.
  const regular = [chain("c2", null, many(Math.floor(rand() * 4), [], "input")), chain("c1", null, many(Math.floor(rand() * 4), ["c2"], "input"))];
  const established = "ct state established,related accept";
  const bases = [chain("input", `type filter hook input priority ${pick(["filter", "-10", "10"])}; policy ${chance(0.35) ? "drop" : "accept"};`, [established, ...many(1 + Math.floor(rand() * 7), ["c1", "c2"], "input")])];
  if (chance(0.3)) bases.push(chain("input2", `type filter hook input priority ${pick(["filter", "10"])}; policy accept;`, [established, ...many(1 + Math.floor(rand() * 2), [], "input")]));
  if (chance(0.35)) bases.push(chain("pre", `type filter hook prerouting priority ${pick(["filter", "raw", "-90", "-120"])}; policy ${chance(0.15) ? "drop" : "accept"};`, [established, ...many(1 + Math.floor(rand() * 3), [], "prerouting")]));
  let text = `table inet t {\n${regular.join("")}${bases.join("")}}\n`;
  if (chance(0.4)) {
    // A dnat elsewhere sends the connection to the forward hook: the doctor says indeterminate.
    const nat = pick([
      `tcp dport ${PORT} redirect to :${NAT_PORT}`,
      `ip saddr 10.250.1.0/24 tcp dport ${PORT} redirect to :${NAT_PORT}`,
      `ip saddr != 10.250.2.5 tcp dport ${PORT} dnat to ${NODE_ADDR}:${NAT_PORT}`,
      `tcp dport 22 redirect to :${NAT_PORT}`,
      `ip saddr 10.250.2.5 tcp dport ${PORT} dnat to 10.250.9.9:${NAT_PORT}`,
    ]);
    text += `table ip n {\n${chain("pre", `type nat hook prerouting priority ${pick(["dstnat", "dstnat + 20", "-150"])}; policy accept;`, [nat])}}\n`;
  }
  if (chance(0.25)) {
    text += `table netdev e {\n${chain("in", `type filter hook ingress device "${pick(["eth0", "lo"])}" priority filter; policy accept;`, many(1 + Math.floor(rand() * 2), [], "ingress"))}}\n`;
  }
  return text;
}

describe("doctor nftables agrees with the kernel on the input path", { skip }, () => {
  let pair: NetnsPair | undefined;

  before(async () => {
    pair = await startNetnsPair({ name: "nfti", nodeAddr: NODE_ADDR, sources: SOURCES, ports: [PORT, NAT_PORT] });
  });

  after(() => pair?.remove());

  it(`matches real SYNs for ${SETS} random rulesets (seed ${SEED})`, { timeout: 120_000 }, () => {
    const rand = seededRandom(SEED);
    let compared = 0;
    let undecided = 0;
    const effects = new Set<string>();
    for (let set = 0; set < SETS; set++) {
      const rules = generate(rand);
      const { node, peer } = pair!;
      runCommand(["ip", "netns", "exec", node, "nft", "-f", "-"], `flush ruleset\n${rules}`);
      const listed = runCommand(["ip", "netns", "exec", node, "nft", "-a", "list", "ruleset"]);
      const seen = probeConnections(peer, PORT, SOURCES.map((source) => [source, NODE_ADDR] as const));
      SOURCES.forEach((source, i) => {
        const r = checkNftables(listed, { source, destination: NODE_ADDR, port: PORT, protocol: "tcp", inInterface: "eth0" });
        if (r.verdict === "indeterminate") {
          undecided++;
          return;
        }
        const kernel = { connected: "accept", refused: "reject", unreachable: "reject", timeout: "drop" }[seen[i]!];
        const doctor = r.effect ?? "accept";
        assert.equal(doctor, kernel, `seed ${SEED} (NFT_SEED=${SEED}), set ${set}, source ${source}: kernel ${seen[i]}, doctor ${r.verdict}: ${r.summary}\n${listed}`);
        effects.add(doctor);
        compared++;
      });
    }
    runCommand(["ip", "netns", "exec", pair!.node, "nft", "flush", "ruleset"]);
    assert.ok(compared >= SETS * SOURCES.length * 0.6, `most flows decided (${compared} compared, ${undecided} undecided)`);
    assert.deepEqual([...effects].sort(), ["accept", "drop", "reject"], "the rulesets exercise every effect");
  });
});
