// The tables before filter INPUT as the kernel runs them (troubleshooting.md §4.3), on dumps an
// audit reproduced against a real kernel (veth pair, listener, connect()): each expectation is
// what the kernel did, and test/doctor-iptables-kernel.test.ts checks the same inputs there.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyIptablesCommand } from "./apply-iptables-command.js";
import { checkIptables } from "./check-iptables.js";
import type { Ruleset } from "./model.js";
import { parseIptables } from "./parse-iptables.js";
import { evaluateIptables } from "./evaluate-iptables.js";
import ipaddr from "ipaddr.js";

const flow = { source: "10.250.0.2", destination: "10.250.0.1", port: 10250, protocol: "tcp" as const, inInterface: "eth0", chain: "INPUT" };
const table = (name: string, chains: readonly string[], rules: readonly string[], policies: Readonly<Record<string, string>> = {}) =>
  [`*${name}`, ...chains.map((c) => `:${c} ${policies[c] ?? "ACCEPT"} [0:0]`), ...rules, "COMMIT"].join("\n");
const raw = (rules: readonly string[], policies = {}) => table("raw", ["PREROUTING", "OUTPUT"], rules, policies);
const mangle = (rules: readonly string[], policies = {}) => table("mangle", ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"], rules, policies);
const nat = (rules: readonly string[], policies = {}) => table("nat", ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"], rules, policies);
const filter = (rules: readonly string[] = []) => table("filter", ["INPUT", "FORWARD", "OUTPUT"], rules);
const dump = (...tables: string[]) => `${tables.join("\n")}\n`;

// The rule set after the fixes' iptables commands (`-t TABLE` included), as the kernel would hold it.
function afterFixes(ruleset: Ruleset, commands: readonly string[]): Ruleset {
  const tables = new Map(ruleset.tables);
  for (const command of commands) {
    const m = /^(ip6?tables)(?: -t (\w+))? (--(?:delete|insert|append) .*)$/.exec(command);
    if (!m) continue;
    const name = m[2] ?? "filter";
    tables.set(name, applyIptablesCommand(tables.get(name)!, `${m[1]} ${m[3]}`));
  }
  return { ...ruleset, tables };
}

const effectAfter = (text: string, commands: readonly string[]) => {
  const ruleset = afterFixes(parseIptables(text), commands);
  const packet = { protocol: 6, source: ipaddr.parse(flow.source), destination: ipaddr.parse(flow.destination), port: flow.port, inInterface: "eth0", ctstates: new Set(["NEW"]) };
  const { outcome } = evaluateIptables(ruleset, packet, { chain: "INPUT" });
  return outcome.kind === "decided" ? outcome.effect : "indeterminate";
};

describe("raw PREROUTING runs before conntrack: a new connection's state there is INVALID", () => {
  const dropWhen = (state: string) => dump(raw([`-A PREROUTING -p tcp -m tcp --dport 10250 -m conntrack --ctstate ${state} -j DROP`]), filter());

  it("--ctstate NEW in raw never matches a SYN (the kernel connects)", () => {
    const r = checkIptables(dropWhen("NEW"), flow);
    assert.equal(r.verdict, "allowed", r.summary);
  });

  it("--ctstate INVALID in raw matches it (the kernel times out), as does -m state --state INVALID", () => {
    const r = checkIptables(dropWhen("INVALID"), flow);
    assert.deepEqual([r.verdict, r.effect, (r.decidedBy as { table: string }).table], ["blocked", "drop", "raw"], r.summary);
    const state = checkIptables(dump(raw(["-A PREROUTING -p tcp -m state --state INVALID -j DROP"]), filter()), flow);
    assert.equal(state.verdict, "blocked", state.summary);
  });

  it("after a certain CT --notrack the rest of raw sees UNTRACKED, and filter too", () => {
    const text = dump(raw(["-A PREROUTING -p tcp -m tcp --dport 10250 -j CT --notrack", "-A PREROUTING -p tcp -m state --state UNTRACKED -j DROP"]), filter());
    assert.equal(checkIptables(text, flow).verdict, "blocked");
    const invalid = dump(raw(["-A PREROUTING -p tcp -m tcp --dport 10250 -j CT --notrack", "-A PREROUTING -p tcp -m conntrack --ctstate INVALID -j DROP"]), filter());
    assert.equal(checkIptables(invalid, flow).verdict, "allowed");
    const later = dump(raw(["-A PREROUTING -p tcp -m tcp --dport 10250 -j CT --notrack"]), filter(["-A INPUT -m conntrack --ctstate UNTRACKED -j DROP"]));
    assert.equal(checkIptables(later, flow).verdict, "blocked");
  });

  it("a NOTRACK that may apply makes the state later raw rules read undecidable, not guessed", () => {
    const text = dump(raw(["-A PREROUTING -p tcp -m limit --limit 5/sec -j CT --notrack", "-A PREROUTING -p tcp -m conntrack --ctstate INVALID -j DROP"]), filter());
    const r = checkIptables(text, flow);
    assert.notEqual(r.verdict, "blocked", r.summary);
    assert.ok(r.assumptions.some((a) => /raw PREROUTING rule 2 .*may drop/.test(a)), r.assumptions.join("\n"));
  });

  it("mangle, after conntrack, still sees NEW", () => {
    const text = dump(mangle(["-A PREROUTING -p tcp -m conntrack --ctstate NEW -j DROP"]), filter());
    assert.equal(checkIptables(text, flow).verdict, "blocked");
  });
});

describe("the policies of raw's and mangle's built-in chains", () => {
  const stock = ["-A PREROUTING -p tcp -m tcp --dport 22 -j ACCEPT", "-A PREROUTING -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"];

  it("mangle PREROUTING policy DROP drops what no rule accepts, named as that table's policy", () => {
    const text = dump(mangle(stock, { PREROUTING: "DROP" }), filter());
    const r = checkIptables(text, flow);
    assert.deepEqual([r.verdict, r.effect], ["blocked", "drop"], r.summary);
    assert.deepEqual(r.decidedBy, { table: "mangle", chain: "PREROUTING", rule: null, target: "policy", policy: "DROP", text: ":PREROUTING DROP [0:0]" });
    assert.match(r.summary, /at the mangle PREROUTING policy DROP, before filter INPUT sees it/);
    // An ACCEPT first in that chain ends mangle PREROUTING for the flow; filter still runs.
    assert.equal(r.fixes[0]?.command, "iptables -t mangle --insert PREROUTING 1 -p tcp --dport 10250 -s 10.250.0.2 -j ACCEPT");
    assert.equal(effectAfter(text, r.fixes.map((f) => f.command)), "accept");
  });

  it("mangle INPUT and raw PREROUTING policies likewise", () => {
    const input = checkIptables(dump(mangle(stock.map((s) => s.replace("PREROUTING", "INPUT")), { INPUT: "DROP" }), filter()), flow);
    assert.deepEqual([input.verdict, (input.decidedBy as { table: string; chain: string }).chain], ["blocked", "INPUT"]);
    assert.equal((input.decidedBy as { table: string }).table, "mangle");
    const rawDrop = checkIptables(dump(raw([], { PREROUTING: "DROP" }), filter()), flow);
    assert.deepEqual([rawDrop.verdict, (rawDrop.decidedBy as { table: string }).table], ["blocked", "raw"]);
  });

  it("after the policy's fix, what else blocks gets its fix too, in order", () => {
    const text = dump(mangle(stock, { PREROUTING: "DROP" }), filter(["-A INPUT -p tcp -m tcp --dport 10250 -j DROP"]));
    const r = checkIptables(text, flow);
    const commands = r.fixes.map((f) => f.command).filter((c) => !c.includes("-save"));
    assert.deepEqual(commands, ["iptables -t mangle --insert PREROUTING 1 -p tcp --dport 10250 -s 10.250.0.2 -j ACCEPT", "iptables --delete INPUT 1"]);
    assert.equal(effectAfter(text, commands), "accept");
  });

  it("a rule the walk cannot decide before the policy leaves it an assumption", () => {
    const text = dump(mangle(["-A PREROUTING -m limit --limit 5/sec -j ACCEPT"], { PREROUTING: "DROP" }), filter());
    const r = checkIptables(text, flow);
    assert.ok(r.assumptions.some((a) => /mangle PREROUTING policy DROP .*may drop/.test(a)), r.assumptions.join("\n"));
  });

  it("nat's policy does not filter (a nat PREROUTING DROP policy lets the kernel connect)", () => {
    assert.equal(checkIptables(dump(nat([], { PREROUTING: "DROP" }), filter()), flow).verdict, "allowed");
  });
});

describe("DNAT to a loopback address", () => {
  it("IPv4 127.0.0.1: indeterminate, naming the nat rule and route_localnet", () => {
    const text = dump(nat(["-A PREROUTING -p tcp -m tcp --dport 10250 -j DNAT --to-destination 127.0.0.1:10250"]), filter());
    const r = checkIptables(text, flow);
    assert.deepEqual([r.verdict, r.status], ["indeterminate", "indeterminate"], r.summary);
    assert.deepEqual(r.decidedBy, { table: "nat", chain: "PREROUTING", rule: 1, target: "policy", policy: null, text: "-A PREROUTING -p tcp -m tcp --dport 10250 -j DNAT --to-destination 127.0.0.1:10250", ruleTarget: "DNAT" });
    assert.match(r.summary, /net\.ipv4\.conf\.eth0\.route_localnet/);
  });

  it("IPv6 [::1]: blocked at the nat rule, the client sees network is unreachable", () => {
    const text = dump(nat(["-A PREROUTING -p tcp -m tcp --dport 10250 -j DNAT --to-destination [::1]:10250"]), filter());
    const r = checkIptables(text, { ...flow, source: "fd00:250::2", destination: "fd00:250::1" });
    assert.deepEqual([r.verdict, r.effect], ["blocked", "reject"], r.summary);
    assert.deepEqual({ ...(r.decidedBy as object), text: "" }, { table: "nat", chain: "PREROUTING", rule: 1, target: "REJECT", policy: null, text: "", ruleTarget: "DNAT" });
    assert.match(r.summary, /network is unreachable/);
    assert.equal(r.fixes[0]?.command, "ip6tables -t nat --delete PREROUTING 1");
  });
});

describe("REDIRECT sends the connection to the incoming interface's primary address", () => {
  const text = dump(nat(["-A PREROUTING -p tcp -m tcp --dport 10250 -j REDIRECT --to-ports 8080"]), filter(["-A INPUT -d 10.250.0.11/32 -p tcp -j DROP"]));

  it("a -d match after it is undecidable, even with --destination, and the assumption says why", () => {
    const r = checkIptables(text, { ...flow, destination: "10.250.0.11" });
    assert.equal(r.verdict, "indeterminate", r.summary);
    assert.match(r.summary, /primary address of eth0/);
    assert.ok(r.assumptions.some((a) => /REDIRECT.*primary address of eth0/.test(a)), r.assumptions.join("\n"));
  });

  it("a loopback -d is still decided (that address is never loopback)", () => {
    const localnet = dump(nat(["-A PREROUTING -p tcp -m tcp --dport 10250 -j REDIRECT --to-ports 8080"]), filter(["-A INPUT ! -s 127.0.0.0/8 -d 127.0.0.0/8 -j DROP"]));
    assert.equal(checkIptables(localnet, flow).verdict, "allowed");
  });
});
