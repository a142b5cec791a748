// `doctor nftables` on rulesets with `notrack` (and `ct status` before conntrack), loaded into a
// real network namespace: a peer namespace sends real SYNs over a veth, and what the kernel did
// (connected / refused / timeout) must equal the evaluator's effect. The audit's case is the first:
// raw's notrack leaves the connection untracked, so `ct state new accept` does not match and the
// input chain's policy drops it. Root only; addresses 10.250.x.x exist only inside the namespaces.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { checkNftables } from "../src/doctor/nftables/index.js";
import { kernelCheckSkip, probeConnections, runCommand, startNetnsPair, type NetnsPair } from "./helpers/netns-pair.js";

const skip = kernelCheckSkip(["ip", "nft", "python3"], "apt-get install iproute2 nftables python3");

const NODE_ADDR = "10.250.0.1";
const SOURCE = "10.250.0.2";
const PORT = 10250;
const NAT_PORT = 8080;

const chain = (table: string, hook: string, priority: string, policy: string, rules: readonly string[]) =>
  `table ${table} {\n\tchain c {\n\t\ttype filter hook ${hook} priority ${priority}; policy ${policy};\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n}\n`;
const input = (rules: readonly string[]) => chain("inet filter", "input", "filter", "drop", ["ct state established,related accept", ...rules]);
const raw = (rules: readonly string[], priority = "raw") => chain("inet raw", "prerouting", priority, "accept", rules);

const cases: ReadonlyArray<readonly [name: string, ruleset: string]> = [
  ["the audit's: notrack in raw, ct state new accept in input", raw([`tcp dport ${PORT} notrack`]) + input([`ct state new tcp dport ${PORT} accept`])],
  ["ct state untracked accept after notrack", raw(["notrack"]) + input(["ct state untracked accept"])],
  ["ct status != dnat after notrack", raw(["notrack"]) + input(["ct status != dnat accept"])],
  ["ct status != dnat before conntrack, no notrack", chain("inet raw", "prerouting", "raw", "drop", ["ct state established,related accept", "ct status != dnat accept"])],
  ["notrack after conntrack (priority -150) does nothing", raw(["notrack"], "-150") + input(["ct state new accept"])],
  ["notrack for another port", raw(["tcp dport 22 notrack"]) + input([`ct state new tcp dport ${PORT} accept`])],
  ["notrack on ingress", `table netdev e {\n\tchain in {\n\t\ttype filter hook ingress device "eth0" priority 0; policy accept;\n\t\ttcp dport ${PORT} notrack\n\t}\n}\n` + input(["ct state new accept"])],
  // Untracked: the redirect to 8080 never happens, so the input chain sees 10250.
  ["a redirect does not apply to an untracked connection",
    raw(["notrack"]) + `table ip n {\n\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\ttcp dport ${PORT} redirect to :${NAT_PORT}\n\t}\n}\n` + input([`tcp dport ${NAT_PORT} reject with tcp reset`, `tcp dport ${PORT} accept`])],
  ["without the notrack the redirect applies",
    `table ip n {\n\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\ttcp dport ${PORT} redirect to :${NAT_PORT}\n\t}\n}\n` + input([`tcp dport ${NAT_PORT} reject with tcp reset`, `tcp dport ${PORT} accept`])],
];

describe("doctor nftables agrees with the kernel on notrack", { skip }, () => {
  let pair: NetnsPair | undefined;

  before(async () => {
    pair = await startNetnsPair({ name: "nftn", nodeAddr: NODE_ADDR, sources: [SOURCE], ports: [PORT, NAT_PORT] });
  });

  after(() => pair?.remove());

  for (const [name, rules] of cases) {
    it(name, { timeout: 20_000 }, () => {
      const { node, peer } = pair!;
      runCommand(["ip", "netns", "exec", node, "nft", "-f", "-"], `flush ruleset\n${rules}`);
      const listed = runCommand(["ip", "netns", "exec", node, "nft", "-a", "list", "ruleset"]);
      const [seen] = probeConnections(peer, PORT, [[SOURCE, NODE_ADDR]]);
      const kernel = { connected: "accept", refused: "reject", unreachable: "reject", timeout: "drop" }[seen!];
      const r = checkNftables(listed, { source: SOURCE, destination: NODE_ADDR, port: PORT, protocol: "tcp", inInterface: "eth0" });
      assert.notEqual(r.verdict, "indeterminate", r.summary);
      assert.equal(r.effect ?? "accept", kernel, `kernel ${seen}, doctor ${r.verdict}: ${r.summary}\n${listed}`);
    });
  }
});
