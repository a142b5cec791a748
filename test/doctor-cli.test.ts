// `nodetunnel doctor` run in-process through CliIo: exit codes 0/1/2/3, the JSON fields of
// doctor-cli.md, standard input as `-`, one-line errors naming the flag or the file and line,
// and colour only on a TTY without NO_COLOR.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type AddressInfo, type Server } from "node:net";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runDoctor, type RunResult } from "./helpers/run-doctor.js";

const ansi = /\u001b\[/;
const fixture = (path: string) => fileURLToPath(new URL(`./fixtures/doctor/${path}`, import.meta.url));
const json = (r: RunResult) => JSON.parse(r.stdout) as Record<string, unknown>;
const oneLine = (s: string) => s.trimEnd().split("\n").length === 1;

/** Bad input: exit 2, one stderr line naming file:line:, and the JSON error's file and line. Returns that error. */
function inputError(r: RunResult, file: string, line: number): Record<string, unknown> {
  assert.equal(r.code, 2, r.stdout);
  assert.ok(oneLine(r.stderr) && r.stderr.includes(`${file}:${line}:`), r.stderr);
  const { error } = json(r) as { error: Record<string, unknown> };
  assert.deepEqual([error.file, error.line], [file, line]);
  return error;
}

describe("doctor CLI: common behaviour", () => {
  it("--help of every subcommand shows examples and exits 0", async () => {
    for (const check of ["explain", "nsg", "iptables", "ufw", "nftables", "snat", "egress"]) {
      const r = await runDoctor([check, "--help"]);
      assert.equal(r.code, 0, check);
      assert.match(r.stdout, new RegExp(`Examples:\\n(.*\\n)*? {2}.*nodetunnel doctor ${check} `), check);
      assert.match(r.stdout, /--output <format>/, check);
      assert.equal(r.stderr, "", check);
    }
  });

  it("an unknown option is a one-line usage error, exit 2; in JSON mode stdout holds only the JSON error", async () => {
    const r = await runDoctor(["egress", "--target", "127.0.0.1:1", "--output", "json", "--bogus"]);
    assert.equal(r.code, 2);
    assert.ok(oneLine(r.stderr), r.stderr);
    assert.match(r.stderr, /--bogus/);
    assert.deepEqual(JSON.parse(r.stdout), { error: { message: "unknown option '--bogus'", file: null, line: null, expected: null } });
  });

  it("an invalid --output value is exit 2", async () => {
    const r = await runDoctor(["egress", "--output", "yaml"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--output/);
    assert.equal(r.stdout, "");
  });

  it("doctor without a check is a usage error (exit 2)", async () => {
    const r = await runDoctor([]);
    assert.equal(r.code, 2);
  });
});

describe("doctor egress (CLI)", () => {
  let server: Server;
  let openPort: number;
  let closedPort: number;
  before(async () => {
    server = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    openPort = (server.address() as AddressInfo).port;
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
    closedPort = (gone.address() as AddressInfo).port;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("exit 0 and result connected for a listening loopback port", async () => {
    const r = await runDoctor(["egress", "--target", `127.0.0.1:${openPort}`, "--output", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.check, "egress");
    assert.equal(json.status, "ok");
    assert.equal(json.probes[0].result, "connected");
    assert.equal(typeof json.probes[0].elapsedMs, "number");
  });

  it("--server is the default target; a closed port is exit 1 with result refused", async () => {
    const r = await runDoctor(["egress", "--server", `127.0.0.1:${closedPort}`, "--output", "json"]);
    assert.equal(r.code, 1);
    const json = JSON.parse(r.stdout);
    assert.equal(json.status, "problem");
    assert.deepEqual(json.probes.map((p: { target: string; result: string }) => [p.target, p.result]), [[`127.0.0.1:${closedPort}`, "refused"]]);
    assert.ok(json.fixes.length > 0);
  });

  it("a bad --target or --timeout names the flag, exit 2", async () => {
    for (const [args, flag] of [
      [["--target", "127.0.0.1"], "--target"],
      [["--target", "127.0.0.1:70000"], "--target"],
      [["--target", `127.0.0.1:${openPort}`, "--timeout", "0"], "--timeout"],
      [["--target", `127.0.0.1:${openPort}`, "--timeout", "soon"], "--timeout"],
      [[], "--server"],
    ] as const) {
      const r = await runDoctor(["egress", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(oneLine(r.stderr) && r.stderr.includes(flag), r.stderr);
      assert.equal(r.stdout, "");
    }
  });

  it("colour only on a TTY without NO_COLOR", async () => {
    const args = ["egress", "--target", `127.0.0.1:${closedPort}`];
    assert.match((await runDoctor(args, { isTTY: true })).stdout, ansi);
    assert.doesNotMatch((await runDoctor(args, { isTTY: true, env: { NO_COLOR: "1" } })).stdout, ansi);
    assert.doesNotMatch((await runDoctor(args, { isTTY: false })).stdout, ansi);
  });
});

describe("doctor ufw (CLI)", () => {
  const a7 = fixture("ufw/hand/a7-spec.numbered.txt");

  it("A7: a DENY for the source is exit 1 with the contract's JSON fields", async () => {
    const r = await runDoctor(["ufw", "--file", a7, "--source", "10.224.0.5", "--output", "json"]);
    assert.equal(r.code, 1, r.stderr);
    const j = json(r);
    assert.equal(j.check, "ufw");
    assert.equal(j.status, "problem");
    assert.equal(j.verdict, "blocked");
    assert.equal(j.effect, "drop");
    assert.deepEqual(j.flow, { protocol: "tcp", source: "10.224.0.5", destination: null, port: 10250 });
    assert.deepEqual({ ...(j.decidedBy as object), text: undefined }, { rule: 1, action: "DENY", policy: null, text: undefined });
    assert.ok(Array.isArray(j.fixes) && Array.isArray(j.assumptions) && typeof j.summary === "string");
    assert.equal("details" in j, false);
    assert.equal(r.stderr, "");
  });

  it("A8: another source reaches the allow: exit 0", async () => {
    const r = await runDoctor(["ufw", "--file", a7, "--source", "10.224.0.9", "--output", "json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json(r).verdict, "allowed");
  });

  it("reads the file from standard input with --file -", async () => {
    const r = await runDoctor(["ufw", "--file", "-", "--source", "10.224.0.5", "--output", "json"], { stdin: readFileSync(a7, "utf8") });
    assert.equal(r.code, 1, r.stderr);
    assert.equal((json(r).decidedBy as { rule: number }).rule, 1);
  });

  it("an indeterminate answer is exit 3", async () => {
    const r = await runDoctor(["ufw", "--file", fixture("ufw/generated/to-address.numbered.txt"), "--source", "10.224.0.5", "--output", "json"]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(json(r).verdict, "indeterminate");
  });

  it("text: the verdict first, then the summary, the deciding rule, the fix and what was assumed", async () => {
    const r = await runDoctor(["ufw", "--file", a7, "--source", "10.224.0.5"]);
    assert.equal(r.code, 1);
    const lines = r.stdout.split("\n");
    assert.equal(lines[0], "BLOCKED  tcp 10.224.0.5 → port 10250 (drop: the client sees an i/o timeout)");
    assert.match(r.stdout, /Decided by: ufw rule \[1\]\n {4}.*10250\/tcp +DENY IN +10\.224\.0\.5/);
    assert.ok(r.stdout.indexOf("Decided by") < r.stdout.indexOf("Fix:"));
    assert.match(r.stdout, /Fix:\n {2}# .*\n {2}ufw /);
    assert.doesNotMatch(r.stdout, ansi);
  });

  it("an unknown line is exit 2 naming the file and line; in JSON mode stdout holds only the error object", async () => {
    const file = fixture("ufw/hand/garbage.verbose.txt");
    const r = await runDoctor(["ufw", "--file", file, "--source", "10.224.0.5", "--output", "json"]);
    const error = inputError(r, file, 9);
    assert.equal(typeof error.message, "string");
    assert.equal(typeof error.expected, "string");
    const text = await runDoctor(["ufw", "--file", file, "--source", "10.224.0.5"]);
    assert.equal(text.code, 2);
    assert.equal(text.stdout, "", "text mode: nothing on stdout");
  });

  it("bad input on standard input names <stdin> and the line", async () => {
    const r = await runDoctor(["ufw", "--file", "-", "--source", "10.224.0.5"], { stdin: readFileSync(fixture("ufw/hand/garbage.verbose.txt"), "utf8") });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /<stdin>:9: /);
  });

  it("an unreadable file is exit 2 naming the file", async () => {
    const r = await runDoctor(["ufw", "--file", "/nonexistent/ufw.txt", "--source", "10.224.0.5", "--output", "json"]);
    assert.equal(r.code, 2);
    assert.ok(oneLine(r.stderr) && r.stderr.includes("/nonexistent/ufw.txt"), r.stderr);
    assert.equal((json(r) as { error: { file: string } }).error.file, "/nonexistent/ufw.txt");
  });

  it("bad flag values are exit 2 with one line naming the flag", async () => {
    for (const [args, flag] of [
      [["--source", "10.224.0"], "--source"],
      [["--source", "10.224.0.5", "--port", "0"], "--port"],
      [["--source", "10.224.0.5", "--port", "65536"], "--port"],
      [["--source", "10.224.0.5", "--port", "10250x"], "--port"],
      [["--source", "10.224.0.5", "--protocol", "icmp"], "--protocol"],
      [["--source", "10.224.0.5", "--destination", "node1"], "--destination"],
      [["--source", "10.224.0.5", "--in-interface", "a/b"], "--in-interface"],
      [[], "--source"],
    ] as const) {
      const r = await runDoctor(["ufw", "--file", a7, ...args, "--output", "json"]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(oneLine(r.stderr) && r.stderr.includes(flag), r.stderr);
      assert.ok((json(r) as { error: { message: string } }).error.message.includes(flag));
    }
    const noFile = await runDoctor(["ufw", "--source", "10.224.0.5"]);
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /--file/);
  });
});

describe("doctor nsg (CLI)", () => {
  const nsg = (name: string) => fixture(`nsg/${name}`);

  it("A4: the NIC NSG's deny decides after the subnet allowed; exit 1 with decidedBy and path", async () => {
    const r = await runDoctor(["nsg", "--source", "10.224.0.7", "--destination", "10.224.0.5",
      "--dest-subnet-nsg", nsg("a4-subnet-allow.json"), "--dest-nic-nsg", nsg("a4-nic-deny-all.json"), "--output", "json"]);
    assert.equal(r.code, 1, r.stderr);
    const j = json(r);
    assert.equal(j.verdict, "blocked");
    assert.equal(j.effect, "drop");
    const d = j.decidedBy as Record<string, unknown>;
    assert.deepEqual([d.nsg, d.attachment, d.direction, d.rule, d.priority, d.access],
      ["aks-agentpool-12345678-nsg", "dest-nic", "inbound", "Deny-All-Inbound-Custom", 4096, "Deny"]);
    assert.equal((j.path as unknown[]).length, 2);
    assert.deepEqual(j.flow, { protocol: "tcp", source: "10.224.0.7", destination: "10.224.0.5", port: 10250 });
  });

  it("--asg decides an ASG rule (exit 0); without it the answer is indeterminate (exit 3)", async () => {
    const base = ["nsg", "--source", "10.224.0.7", "--destination", "10.224.0.5", "--dest-subnet-nsg", nsg("spec-example-swapped-subnet.json"), "--output", "json"];
    const member = await runDoctor([...base, "--asg", "asg-aks-nodes=10.224.0.6", "--asg", "asg-aks-nodes=10.224.0.7"]);
    assert.equal(member.code, 0, member.stderr);
    assert.equal((json(member).decidedBy as { rule: string }).rule, "AllowKubeletFromNodes");
    const unknown = await runDoctor(base);
    assert.equal(unknown.code, 3, unknown.stderr);
    assert.equal(json(unknown).verdict, "indeterminate");
  });

  it("reads an NSG from standard input", async () => {
    const r = await runDoctor(["nsg", "--source", "10.224.0.7", "--destination", "10.224.0.5", "--dest-subnet-nsg", "-", "--output", "json"],
      { stdin: readFileSync(nsg("a1-subnet.json"), "utf8") });
    assert.equal(r.code, 1, r.stderr);
    assert.equal((json(r).decidedBy as { priority: number }).priority, 200);
  });

  it("a rule list: the fix names the NSG of the rules' ids even when the first rule has none", async () => {
    const rules = JSON.parse(readFileSync(nsg("rule-list-include-default.json"), "utf8")) as Record<string, unknown>[];
    delete rules[0]!.id;
    const r = await runDoctor(["nsg", "--source", "10.225.0.4", "--destination", "10.224.0.5", "--dest-nic-nsg", "-", "--output", "json"],
      { stdin: JSON.stringify(rules, null, 2) });
    assert.equal(r.code, 1, r.stderr);
    const j = json(r);
    assert.equal((j.decidedBy as { nsg: string }).nsg, "aks-agentpool-12345678-nsg", r.stdout);
    assert.match((j.fixes as { command: string }[])[0]!.command, /--nsg-name aks-agentpool-12345678-nsg /);
  });

  it("a broken NSG file among several is named, with its line", async () => {
    const bad = fixture("cli/bad-nsg.json");
    const r = await runDoctor(["nsg", "--source", "10.224.0.7", "--destination", "10.224.0.5",
      "--dest-subnet-nsg", nsg("a4-subnet-allow.json"), "--dest-nic-nsg", bad, "--output", "json"]);
    inputError(r, bad, 4);
  });

  it("a custom rule at priority 50 is invalid input (exit 2) naming the file, the rule's line, the rule and 100-4096", async () => {
    const bad = fixture("cli/bad-nsg-priority.json");
    const r = await runDoctor(["nsg", "--source", "10.224.0.7", "--destination", "10.224.0.5", "--dest-subnet-nsg", bad, "--output", "json"]);
    const error = inputError(r, bad, 6);
    assert.match(String(error.message), /"Deny-Kubelet" has priority 50, outside 100-4096/);
    assert.match(String(error.expected), /100-4096/);
  });

  it("a syntax error without a position in Node's message (`[ }`) still names the line", async () => {
    const bad = fixture("cli/bad-nsg-no-position.json");
    const r = await runDoctor(["nsg", "--source", "10.224.0.7", "--destination", "10.224.0.5", "--dest-subnet-nsg", bad, "--output", "json"]);
    assert.equal(r.code, 2);
    assert.ok(oneLine(r.stderr) && r.stderr.includes(`${bad}:3:`), r.stderr);
    assert.equal((json(r) as { error: { line: number | null } }).error.line, 3);
  });

  it("text: the deciding rule as a table line", async () => {
    const r = await runDoctor(["nsg", "--source", "10.224.0.7", "--destination", "10.224.0.5", "--dest-subnet-nsg", nsg("a1-subnet.json")]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^BLOCKED {2}tcp 10\.224\.0\.7 → 10\.224\.0\.5:10250 \(drop: the client sees an i\/o timeout\)\n/);
    assert.match(r.stdout, /NSG +Attachment +Direction +Priority +Name +Access\n/);
    assert.match(r.stdout, /dest-subnet +inbound +200 +\S+ +Deny/);
  });

  it("bad --vnet, --asg, --source-port and a missing --destination are exit 2 naming the flag", async () => {
    const base = ["nsg", "--source", "10.224.0.7", "--dest-subnet-nsg", nsg("a1-subnet.json")];
    for (const [args, flag] of [
      [["--destination", "10.224.0.5", "--vnet", "10.224.0.0/33"], "--vnet"],
      [["--destination", "10.224.0.5", "--vnet", "vnet-a"], "--vnet"],
      [["--destination", "10.224.0.5", "--asg", "asg-aks-nodes"], "--asg"],
      [["--destination", "10.224.0.5", "--asg", "asg-aks-nodes=10.224.0"], "--asg"],
      [["--destination", "10.224.0.5", "--source-port", "70000"], "--source-port"],
      [[], "--destination"],
    ] as const) {
      const r = await runDoctor([...base, ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(oneLine(r.stderr) && r.stderr.includes(flag), r.stderr);
    }
  });

  it("standard input can feed only one file", async () => {
    const r = await runDoctor(["nsg", "--source", "10.224.0.7", "--destination", "10.224.0.5", "--dest-subnet-nsg", "-", "--dest-nic-nsg", "-"],
      { stdin: readFileSync(nsg("a1-subnet.json"), "utf8") });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dest-nic-nsg: standard input is already read by --dest-subnet-nsg/);
  });
});

describe("doctor iptables (CLI)", () => {
  const a12 = fixture("cli/a12-reject.iptables-save.txt");

  it("A12: REJECT on eth0 is exit 1, effect reject, decidedBy names chain, rule and target", async () => {
    const r = await runDoctor(["iptables", "--file", a12, "--source", "10.224.0.7", "--destination", "10.224.0.5", "--output", "json"]);
    assert.equal(r.code, 1, r.stderr);
    const j = json(r);
    assert.deepEqual([j.check, j.status, j.verdict, j.effect], ["iptables", "problem", "blocked", "reject"]);
    const d = j.decidedBy as Record<string, unknown>;
    assert.deepEqual([d.chain, d.rule, d.target, d.policy], ["INPUT", 2, "REJECT", null]);
    assert.match(String(d.text), /--reject-with tcp-reset/);
    assert.deepEqual(j.flow, { protocol: "tcp", source: "10.224.0.7", destination: "10.224.0.5", port: 10250 });
  });

  it("A13: the same rule does not match a packet on another interface: exit 0", async () => {
    const r = await runDoctor(["iptables", "--file", a12, "--source", "10.224.0.7", "--in-interface", "azv123", "--output", "json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json(r).verdict, "allowed");
  });

  it("A14: a DROP policy decides with rule null", async () => {
    const r = await runDoctor(["iptables", "--file", fixture("cli/a14-policy-drop.iptables-save.txt"), "--source", "10.224.0.7", "--output", "json"]);
    assert.equal(r.code, 1, r.stderr);
    const d = json(r).decidedBy as Record<string, unknown>;
    assert.deepEqual([d.chain, d.rule, d.target, d.policy], ["INPUT", null, "policy", "DROP"]);
  });

  it("a nat DNAT of the port to another host that certainly applies: indeterminate, exit 3 (FORWARD and that host decide), naming the nat rule", async () => {
    const save = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -m tcp --dport 10250 -j DNAT --to-destination 10.0.0.9:8080\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
    const r = await runDoctor(["iptables", "--file", "-", "--source", "10.224.0.7", "--destination", "10.224.0.5", "--output", "json"], { stdin: save });
    assert.equal(r.code, 3, r.stderr);
    const j = json(r);
    assert.deepEqual([j.status, j.verdict], ["indeterminate", "indeterminate"]);
    const d = j.decidedBy as { table: string; chain: string; rule: number; target: string; ruleTarget: string };
    assert.deepEqual([d.table, d.chain, d.rule, d.target, d.ruleTarget], ["nat", "PREROUTING", 1, "policy", "DNAT"]);
    assert.match(String(j.summary), /forwards it to 10\.0\.0\.9:8080 \(DNAT\)/);
  });

  it("an interface hidden by -L without -v is indeterminate: exit 3", async () => {
    const r = await runDoctor(["iptables", "--file", fixture("cli/interface-hidden.iptables-list.txt"), "--source", "10.224.0.7", "--output", "json"]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(json(r).verdict, "indeterminate");
    assert.equal((json(r).decidedBy as { rule: number }).rule, 1);
  });

  it("text: verdict, then the rule as iptables-save shows it, then the delete command", async () => {
    const r = await runDoctor(["iptables", "--file", "-", "--source", "10.224.0.7", "--destination", "10.224.0.5"], { stdin: readFileSync(a12, "utf8") });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^BLOCKED {2}tcp 10\.224\.0\.7 → 10\.224\.0\.5:10250 \(reject: /);
    assert.match(r.stdout, /Decided by: chain INPUT, rule 2\n {4}-A INPUT -i eth0 -p tcp -m tcp --dport 10250 -j REJECT --reject-with tcp-reset\n/);
    assert.match(r.stdout, /\n {2}iptables --delete INPUT 2\n/);
  });

  it("a line that is no rule is exit 2 naming file and line", async () => {
    const bad = fixture("cli/bad.iptables-save.txt");
    const r = await runDoctor(["iptables", "--file", bad, "--source", "10.224.0.7", "--output", "json"]);
    assert.equal(r.code, 2);
    assert.ok(oneLine(r.stderr) && r.stderr.includes(`${bad}:4:`), r.stderr);
    assert.equal((json(r) as { error: { line: number } }).error.line, 4);
  });

  it("a bad --chain is exit 2 naming the flag", async () => {
    const r = await runDoctor(["iptables", "--file", a12, "--source", "10.224.0.7", "--chain", "IN PUT"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--chain/);
  });
});

describe("doctor nftables (CLI)", () => {
  const handles = fixture("nftables/generated/inet-drop-10250.handles.txt");

  it("a per-source drop is exit 1 with the nft delete command by handle", async () => {
    const r = await runDoctor(["nftables", "--file", handles, "--source", "10.224.0.5", "--destination", "10.224.0.4", "--output", "json"]);
    assert.equal(r.code, 1, r.stderr);
    const j = json(r);
    assert.deepEqual([j.check, j.verdict, j.effect], ["nftables", "blocked", "drop"]);
    const d = j.decidedBy as Record<string, unknown>;
    assert.deepEqual([d.table, d.chain, d.rule, d.verdict], ["inet filter", "input", 3, "drop"]);
    assert.ok((j.fixes as { command: string }[]).some((f) => f.command === "nft delete rule inet filter input handle 5"));
  });

  it("the JSON ruleset from standard input: another source is accepted, exit 0", async () => {
    const r = await runDoctor(["nftables", "--file", "-", "--source", "10.224.0.9", "--destination", "10.224.0.4", "--output", "json"],
      { stdin: readFileSync(fixture("nftables/generated/inet-drop-10250.json"), "utf8") });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json(r).verdict, "allowed");
  });

  it("a rate limit that decides is indeterminate: exit 3", async () => {
    const r = await runDoctor(["nftables", "--file", fixture("nftables/generated/limit-and-unknown.txt"), "--source", "10.224.0.5", "--destination", "10.224.0.4"]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^INDETERMINATE {2}tcp /);
    assert.match(r.stdout, /Undecided at: table \S+ \S+, chain \S+, rule 1\n/);
  });

  it("indeterminate JSON names the undecidable rule in the decided shape, with that rule's verdict", async () => {
    const r = await runDoctor(["nftables", "--file", fixture("nftables/generated/limit-and-unknown.json"), "--source", "10.224.0.5", "--output", "json"]);
    assert.equal(r.code, 3, r.stderr);
    const j = json(r);
    assert.deepEqual([j.verdict, j.effect], ["indeterminate", null]);
    const { text, ...d } = j.decidedBy as Record<string, unknown>;
    assert.deepEqual(d, { table: "inet fw", chain: "input", rule: 1, verdict: "drop", policy: null, handle: 2 });
    assert.match(String(text), /^tcp dport 10250 .*limit.* drop$/);
  });

  it("text that is no ruleset is exit 2 naming the file", async () => {
    const file = fixture("ufw/hand/a7-spec.numbered.txt");
    const r = await runDoctor(["nftables", "--file", file, "--source", "10.224.0.5", "--output", "json"]);
    assert.equal(r.code, 2);
    assert.ok(oneLine(r.stderr) && r.stderr.includes(file), r.stderr);
    assert.equal((json(r) as { error: { file: string } }).error.file, file);
  });
});

describe("doctor explain (CLI)", () => {
  const timeout = "Error from server: error dialing backend: dial tcp 10.224.0.5:10250: i/o timeout";

  it("a connection reset is mechanism refused in JSON (the contract's values only), with mechanismDetail reset", async () => {
    const text = "read tcp 10.224.0.7:41234->20.76.12.34:443: read: connection reset by peer";
    const r = await runDoctor(["explain", text, "--output", "json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([json(r).mechanism, json(r).mechanismDetail], ["refused", "reset"]);
    assert.match((await runDoctor(["explain", text])).stdout, /^EXPLAINED {2}explain: refused \(reset\)\n/);
  });

  it("a recognised message is exit 0 with mechanism and ranked causes", async () => {
    const r = await runDoctor(["explain", timeout, "--output", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const j = json(r);
    assert.equal(j.check, "explain");
    assert.equal(j.mechanism, "timeout");
    const causes = j.causes as { id: string; why: string; check: string }[];
    assert.ok(causes.length > 0 && causes.every((c) => c.id && c.why && c.check.startsWith("nodetunnel doctor ")));
  });

  it("the words may come unquoted, or from standard input with --file -", async () => {
    const words = await runDoctor(["explain", ...timeout.split(" "), "--output", "json"]);
    assert.equal(json(words).mechanism, "timeout");
    const piped = await runDoctor(["explain", "--file", "-"], { stdin: `${timeout}\n` });
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /^EXPLAINED {2}explain: timeout\n/);
  });

  it("an unrecognised message is exit 3", async () => {
    const r = await runDoctor(["explain", "the cake is a lie"]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^UNRECOGNISED {2}explain/);
  });

  it("no text, empty input, or both text and --file is exit 2", async () => {
    for (const [args, stdin] of [[[], undefined], [["--file", "-"], ""], [["some text", "--file", "-"], "x"]] as const) {
      const r = await runDoctor(["explain", ...args], stdin === undefined ? {} : { stdin });
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(oneLine(r.stderr), r.stderr);
    }
  });
});

describe("doctor snat (CLI)", () => {
  it("A16: 4000 ports × (33 + 1) nodes on 2 IPs is a problem: exit 1 with the arithmetic in JSON", async () => {
    const r = await runDoctor(["snat", "--nodes", "33", "--outbound-ips", "2", "--ports-per-node", "4000", "--output", "json"]);
    assert.equal(r.code, 1, r.stderr);
    const j = json(r);
    assert.deepEqual([j.check, j.status, j.portsPerNode, j.capacityNodes, j.requiredPorts, j.availablePorts],
      ["snat", "problem", 4000, 32, 136000, 128000]);
    assert.ok("nextBoundary" in j);
  });

  it("A15: 52 nodes on the default table get 512 ports; the default of one outbound IP is listed as assumed", async () => {
    const r = await runDoctor(["snat", "--nodes", "52", "--output", "json"]);
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    const j = json(r);
    assert.equal(j.portsPerNode, 512);
    assert.equal(j.availablePorts, 64000);
    assert.ok((j.assumptions as string[]).some((a) => a.includes("--outbound-ips")));
  });

  it("900 nodes sit in the table's last row: no next boundary, in JSON (null) and in text", async () => {
    const j = json(await runDoctor(["snat", "--nodes", "900", "--output", "json"]));
    assert.equal(j.portsPerNode, 32);
    assert.equal(j.nextBoundary, null);
    const text = await runDoctor(["snat", "--nodes", "900"]);
    assert.match(text.stdout, /Default allocation halves next at: never/);
  });

  it("--connections - reads ss -tan from standard input and reports churn by destination", async () => {
    const r = await runDoctor(["snat", "--nodes", "10", "--outbound-ips", "1", "--connections", "-", "--output", "json"],
      { stdin: readFileSync(fixture("cli/ss-tan.txt"), "utf8") });
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    assert.deepEqual((json(r).churn as unknown[])[0], { destination: "20.76.12.34:80", connections: 40, timeWait: 40 });
  });

  it("--connections: destinations in the VNet or cluster take no SNAT port; they are left out and counted (§5.4)", async () => {
    const ss = fixture("snat/ss-tan-in-vnet.txt");
    const r = await runDoctor(["snat", "--nodes", "52", "--connections", ss, "--output", "json"]);
    assert.equal(r.code, 0, r.stdout);
    const j = json(r);
    assert.equal(j.status, "warning");
    assert.deepEqual(j.churn, [{ destination: "20.50.1.2:443", connections: 30, timeWait: 0 }]);
    assert.equal(j.excludedConnections, 800);
    assert.deepEqual((j.excludedDestinations as { destination: string }[]).map((d) => d.destination), ["10.96.0.1:443", "10.224.0.9:10250"]);
    assert.doesNotMatch(String(j.summary), /10\.96\.0\.1|10\.224\.0\.9/);
    const text = await runDoctor(["snat", "--nodes", "52", "--connections", ss]);
    assert.match(text.stdout, /Not counted: 800 connection\(s\) to 2 destination\(s\) that take no SNAT port: 10\.96\.0\.1:443 \(600\)/);
    const vnet = await runDoctor(["snat", "--nodes", "52", "--connections", ss, "--vnet", "20.50.0.0/16", "--output", "json"]);
    assert.equal(json(vnet).excludedConnections, 830);
    const bad = await runDoctor(["snat", "--nodes", "52", "--connections", ss, "--vnet", "20.50.0.0/99"]);
    assert.equal(bad.code, 2);
    assert.ok(oneLine(bad.stderr) && bad.stderr.includes("--vnet"), bad.stderr);
  });

  it("a broken metrics file is exit 2 naming that file, not the connections file", async () => {
    const bad = fixture("cli/bad-metrics.json");
    const r = await runDoctor(["snat", "--nodes", "10", "--connections", fixture("cli/ss-tan.txt"), "--metrics", bad, "--output", "json"]);
    assert.equal(r.code, 2);
    assert.ok(oneLine(r.stderr) && r.stderr.includes(bad), r.stderr);
    assert.equal((json(r) as { error: { file: string } }).error.file, bad);
  });

  it("truncated az output (Unexpected end of JSON input) names the file's last line", async () => {
    const bad = fixture("cli/truncated-metrics.json");
    const r = await runDoctor(["snat", "--nodes", "10", "--metrics", bad, "--output", "json"]);
    assert.equal(r.code, 2);
    assert.ok(oneLine(r.stderr) && r.stderr.includes(`${bad}:8:`), r.stderr);
    assert.equal((json(r) as { error: { line: number | null } }).error.line, 8);
  });

  it("bad counts are exit 2 naming the flag", async () => {
    for (const [args, flag] of [
      [[], "--nodes"],
      [["--nodes", "0"], "--nodes"],
      [["--nodes", "ten"], "--nodes"],
      [["--nodes", "10", "--outbound-ips", "0"], "--outbound-ips"],
      [["--nodes", "10", "--ports-per-node", "70000"], "--ports-per-node"],
      [["--nodes", "10", "--max-surge", "-1"], "--max-surge"],
    ] as const) {
      const r = await runDoctor(["snat", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(oneLine(r.stderr) && r.stderr.includes(flag), r.stderr);
    }
  });
});

describe("doctor cluster (CLI)", () => {
  // The file is read before the server is asked anything, so nothing is dialled.
  it("a bad --nodes-file line is exit 2 whose JSON error names the file, the line and what was expected", async () => {
    const file = fixture("cli/bad-nodes.txt");
    const r = await runDoctor(["cluster", "--nodes-file", file, "--output", "json"]);
    const error = inputError(r, file, 5);
    assert.ok(r.stderr.includes(`${file}:5: `), r.stderr);
    assert.match(String(error.message), /aks-nodepool1-2/);
    assert.match(String(error.expected), /NAME=IP/);
  });

  it("an address that is not an IP on standard input names <stdin>, the line and the node", async () => {
    const r = await runDoctor(["cluster", "--nodes-file", "-", "--output", "json"], { stdin: "node-1=10.224.0.4\nnode-2=10.224.0.999\n" });
    assert.equal(r.code, 2);
    const { error } = json(r) as { error: Record<string, unknown> };
    assert.deepEqual([error.file, error.line], ["<stdin>", 2]);
    assert.match(String(error.message), /node-2.*10\.224\.0\.999/);
    assert.match(String(error.expected), /IP/);
  });
});
