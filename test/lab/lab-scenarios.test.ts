// The guide's causes reproduced for real in the lab (issue 5): for each, switch the fault on, see
// the symptom through the tunnel (curl --proxytunnel from the control plane), run the doctor and
// check it names the cause and the deciding rule, apply the doctor's own fix inside the node, and
// see the tunnel work again. One lab is shared by every scenario; `after` tears it down and checks
// that no namespace, route or process is left. Needs root (CI runs as root).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  curlThroughTunnel, labExecArgv, ownedNamespaces, readChattyStats, readState, setFault, type FaultName, type FaultOptions,
} from "../../src/lab/index.js";
import { otherLabStates } from "../../src/lab/lab-state.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const prefix = `nt-t${process.pid % 100000}`;
const agentSources = ["10.224.0.4", "10.224.0.6"]; // node-1 and node-3 run the agents
const skip = process.getuid?.() !== 0 ? "needs root: the lab creates network namespaces" : missingTool();

function missingTool(): string | false {
  const dirs = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  for (const tool of ["ip", "iptables", "ufw", "conntrack", "unshare", "curl", "ss"]) {
    if (!dirs.some((d) => existsSync(`${d}/${tool}`))) return `needs ${tool} (apt-get install iproute2 iptables ufw conntrack curl)`;
  }
  return false;
}

interface Exec { code: number; stdout: string; stderr: string }
function exec(argv: readonly string[], timeoutMs = 60_000): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { cwd: repo, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
const cli = (...args: string[]) => exec([process.execPath, "bin/nodetunnel.js", ...args], 120_000);
const onLab = (place: string, argv: readonly string[]) => exec(labExecArgv(prefix, place, argv));
const nodetunnel = [process.execPath, `${repo}bin/nodetunnel.js`];

type Finding = { id: string; status: string; decidedBy?: Record<string, unknown> | null; fixes: Array<{ command: string }>; summary: string; outcome?: string; response?: string; node?: string };
interface Report { status: string; summary: string; findings: Finding[] }

async function doctorNode(node: string, ...extra: string[]): Promise<Report> {
  const r = await onLab(node, [...nodetunnel, "doctor", "node", "--output", "json", "--server", "10.225.0.4:8132", ...agentSources.flatMap((s) => ["--source", s]), ...extra]);
  assert.ok(r.stderr.includes("doctor node: reading iptables-save"), "progress lines on stderr");
  return JSON.parse(r.stdout) as Report;
}

async function doctorCluster(): Promise<Report> {
  const r = await onLab("cp", [...nodetunnel, "doctor", "cluster", "--output", "json", "--agent-endpoint", "10.225.0.4:8132",
    "--node", "node-1=10.224.0.4", "--node", "node-2=10.224.0.5", "--node", "node-3=10.224.0.6"]);
  return JSON.parse(r.stdout) as Report;
}

const dialOf = (report: Report, node: string) => report.findings.find((f) => f.id === "dial" && f.node === node)!;

interface Snapshot {
  agents: Array<{ agentId: string }>;
  pendingDials: Array<{ address: string; agentId: string }>;
  recentFailures: Array<{ address: string; reason: string; error: string }>;
}
/** The server's own view (the dashboard's /api/snapshot on the admin port). */
async function snapshot(): Promise<Snapshot> {
  const r = await onLab("cp", ["curl", "-sS", "--max-time", "5", "http://127.0.0.1:8095/api/snapshot"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Snapshot;
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const agentLog = async (node: string) => readFileSync(readState(prefix)!.processes.find((p) => p.role === "agent" && p.node === node)!.log, "utf8");

async function fault(name: FaultName, node: string, on: boolean, opts: FaultOptions = {}) {
  return setFault(readState(prefix)!, name, node, on, opts);
}

/** The doctor's fix, run on the node as it is written (only the fixes that change the firewall: never the "save" advice). */
async function applyFix(node: string, command: string): Promise<void> {
  assert.match(command, /^(iptables --delete|iptables --insert|ufw (allow|insert|delete|prepend))/, `a fix the lab can apply: ${command}`);
  const r = await onLab(node, ["sh", "-c", command]);
  assert.equal(r.code, 0, `${command}: ${r.stderr}`);
}

async function assertTunnelWorks(node: string): Promise<void> {
  const r = await curlThroughTunnel(prefix, node);
  assert.equal(r.connectStatus, 200, r.stderr);
  assert.match(r.body, new RegExp(`on ${node}: request 1 served`));
}

describe("lab scenarios", { skip, timeout: 600_000 }, () => {
  let addedRoutes: string[] = [];
  before(async () => {
    await cli("lab", "down", "--prefix", prefix);
    const up = await cli("lab", "up", "--prefix", prefix, "--agents", "node-1,node-3");
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /lab: starting the agent on node-3/, "progress while it builds");
    addedRoutes = readState(prefix)!.routes; // empty when the host itself already blackholes the ranges
  });

  after(async () => {
    const down = await cli("lab", "down", "--prefix", prefix);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await ownedNamespaces(prefix), [], "no namespace left");
    const netns = await exec(["ip", "netns", "list"]);
    assert.ok(!netns.stdout.includes(`${prefix}-`), "no namespace left");
    // The routes are shared: they stay while another lab (a test running beside this one) still needs them.
    const routes = await exec(["ip", "route", "show", "type", "blackhole"]);
    if (otherLabStates(prefix).length === 0) for (const range of addedRoutes) assert.ok(!routes.stdout.includes(range), `blackhole ${range} removed`);
    const ours = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(`NODETUNNEL_LAB=${prefix}`);
      } catch {
        return false;
      }
    });
    assert.deepEqual(ours, [], "no lab process left");
    const again = await cli("lab", "down", "--prefix", prefix);
    assert.equal(again.code, 0, "down is idempotent");
  });

  test("all nodes answer through the tunnel; doctor cluster shows every node ok", async () => {
    for (const n of ["node-1", "node-2", "node-3"]) await assertTunnelWorks(n);
    const report = await doctorCluster();
    assert.equal(report.status, "ok", report.summary);
    assert.deepEqual(report.findings.filter((f) => f.id === "dial").map((f) => f.outcome), ["ok", "ok", "ok"]);
  });

  test("iptables DROP on 10250: 504 i/o timeout; doctor names INPUT rule 1; its fix restores the tunnel", async () => {
    await fault("iptables-drop", "node-2", true);
    try {
      const curl = await curlThroughTunnel(prefix, "node-2");
      assert.equal(curl.connectStatus, 504);
      // curl shows only the status; the server's reason (its 504 body) is the dial error (docs/lab.md's promise).
      assert.match(curl.dialFailure ?? "", /^dial tcp 10\.224\.0\.5:10250: i\/o timeout — /);
      const shown = await cli("lab", "curl", "node-2", "--prefix", prefix);
      assert.equal(shown.code, 1);
      assert.match(shown.stderr, /^CONNECT answered 504; [^\n]*\* CONNECT 504: the server says: dial tcp 10\.224\.0\.5:10250: i\/o timeout/m);
      assert.doesNotMatch(shown.stderr, /\r/);
      const cluster = await doctorCluster();
      assert.equal(dialOf(cluster, "node-2").outcome, "timeout");
      assert.match(dialOf(cluster, "node-2").response!, /dial tcp 10\.224\.0\.5:10250: i\/o timeout/);
      assert.equal(dialOf(cluster, "node-1").outcome, "ok", "only node-2 is affected");
      const report = await doctorNode("node-2");
      assert.equal(report.status, "problem");
      const ipt = report.findings.find((f) => f.id === "iptables")!;
      assert.equal(ipt.status, "problem");
      assert.deepEqual({ chain: ipt.decidedBy!.chain, rule: ipt.decidedBy!.rule, target: ipt.decidedBy!.target }, { chain: "INPUT", rule: 1, target: "DROP" });
      await applyFix("node-2", ipt.fixes[0]!.command);
      await assertTunnelWorks("node-2");
    } finally {
      await fault("iptables-drop", "node-2", false);
    }
  });

  test("iptables REJECT inside a user chain: 502 connection refused; doctor names the chain's rule", async () => {
    await fault("iptables-reject", "node-2", true, { chain: "KUBELET-GUARD" });
    try {
      const curl = await curlThroughTunnel(prefix, "node-2");
      assert.equal(curl.connectStatus, 502);
      assert.match(curl.dialFailure ?? "", /connection refused/);
      const cluster = await doctorCluster();
      assert.equal(dialOf(cluster, "node-2").outcome, "refused");
      assert.match(dialOf(cluster, "node-2").response!, /connection refused/);
      const ipt = (await doctorNode("node-2")).findings.find((f) => f.id === "iptables")!;
      assert.deepEqual({ chain: ipt.decidedBy!.chain, rule: ipt.decidedBy!.rule, target: ipt.decidedBy!.target }, { chain: "KUBELET-GUARD", rule: 1, target: "REJECT" });
      await applyFix("node-2", ipt.fixes[0]!.command);
      await assertTunnelWorks("node-2");
    } finally {
      await fault("iptables-reject", "node-2", false, { chain: "KUBELET-GUARD" });
    }
  });

  test("ufw enabled with its default policy: timeout; doctor names the deny (incoming) policy; ufw allow restores the tunnel", async () => {
    await fault("ufw-default", "node-2", true);
    try {
      assert.equal((await curlThroughTunnel(prefix, "node-2")).connectStatus, 504);
      const ufw = (await doctorNode("node-2")).findings.filter((f) => f.id === "ufw");
      assert.equal(ufw.length, 2, "one finding per agent address");
      for (const f of ufw) {
        assert.equal(f.status, "problem");
        assert.equal(f.decidedBy!.action, "policy");
        assert.equal(f.decidedBy!.policy, "deny");
        await applyFix("node-2", f.fixes[0]!.command);
      }
      await assertTunnelWorks("node-2");
      const host = await exec(["ufw", "status"]);
      assert.match(host.stdout, /Status: inactive/, "the host's own ufw was never touched");
    } finally {
      await fault("ufw-default", "node-2", false);
    }
  });

  test("a ufw deny rule on 10250: doctor names ufw rule 1; its fix restores the tunnel", async () => {
    await fault("ufw-deny", "node-2", true);
    try {
      assert.equal((await curlThroughTunnel(prefix, "node-2")).connectStatus, 504);
      const ufw = (await doctorNode("node-2")).findings.filter((f) => f.id === "ufw");
      for (const f of ufw) {
        assert.deepEqual({ rule: f.decidedBy!.rule, action: f.decidedBy!.action }, { rule: 1, action: "DENY" });
      }
      for (const f of ufw) await applyFix("node-2", f.fixes[0]!.command);
      await assertTunnelWorks("node-2");
    } finally {
      await fault("ufw-deny", "node-2", false);
    }
  });

  test("an NSG deny of 10250 in the VNet: the nsg evaluator's deciding rule, enforced by the router, times the dial out", async () => {
    const on = await fault("nsg-deny", "node-2", true);
    try {
      assert.equal(on.nsg?.verdict, "blocked");
      assert.equal((on.nsg?.decidedBy as { rule: string }).rule, "deny-kubelet-from-vnet");
      assert.equal((await curlThroughTunnel(prefix, "node-2")).connectStatus, 504);
      // Nothing on the node blocks it: doctor node finds the node clean, which points at the network.
      const node = await doctorNode("node-2");
      assert.equal(node.findings.find((f) => f.id === "iptables")!.status, "ok");
      // The nsg check's fix: an allow rule with a free priority below the deny; applied to the NSG, the router lets it through.
      const fix = on.nsg!.fixes[0]!.command;
      const priority = Number(/--priority (\d+)/.exec(fix)![1]);
      assert.ok(priority < 200, fix);
      const nsg = JSON.parse(readFileSync(`/run/nodetunnel-lab/${prefix}/nsg-node-2.json`, "utf8")) as { securityRules: unknown[] };
      nsg.securityRules.push({ name: "allow-kubelet", priority, direction: "Inbound", access: "Allow", protocol: "Tcp", sourceAddressPrefix: "VirtualNetwork", sourcePortRange: "*", destinationAddressPrefix: "*", destinationPortRange: "10250" });
      await fault("nsg-deny", "node-2", false);
      const fixed = await fault("nsg-deny", "node-2", true, { nsgText: JSON.stringify(nsg) });
      assert.equal(fixed.nsg?.verdict, "allowed");
      await assertTunnelWorks("node-2");
    } finally {
      await fault("nsg-deny", "node-2", false);
    }
  });

  test("kubelet down: 502 connection refused; doctor node finds nothing listening on 10250", async () => {
    await fault("kubelet-down", "node-2", true);
    try {
      assert.equal((await curlThroughTunnel(prefix, "node-2")).connectStatus, 502);
      assert.equal(dialOf(await doctorCluster(), "node-2").outcome, "refused");
      const listener = (await doctorNode("node-2")).findings.find((f) => f.id === "kubelet-listener")!;
      assert.equal(listener.status, "problem");
      assert.match(listener.summary, /Nothing listens on port 10250/);
    } finally {
      await fault("kubelet-down", "node-2", false); // the lab's "systemctl restart kubelet"
    }
    await assertTunnelWorks("node-2");
  });

  test("egress from the agents' nodes to the server blocked: 500 No agent available; doctor names egress", async () => {
    await fault("egress-drop", "node-1", true);
    await fault("egress-drop", "node-3", true);
    try {
      const curl = await curlThroughTunnel(prefix, "node-2");
      assert.equal(curl.connectStatus, 500);
      const cluster = await doctorCluster();
      assert.equal(cluster.findings.find((f) => f.id === "agents")!.status, "problem");
      assert.equal(dialOf(cluster, "node-2").outcome, "no-agent");
      const node = await doctorNode("node-1", "--timeout", "1");
      const egress = node.findings.find((f) => f.id === "egress")!;
      assert.equal(egress.status, "problem");
      assert.match(egress.summary, /10\.225\.0\.4:8132 timed out/);
      assert.equal(node.findings.find((f) => f.id === "agent-health")!.status, "problem", "the agent runs but has no server");
    } finally {
      await fault("egress-drop", "node-1", false);
      await fault("egress-drop", "node-3", false);
    }
    await assertTunnelWorks("node-2");
  });

  test("agent killed: its node falls back to another agent; a dial pending on it fails at once; with none left 500 No agent available; the off switch reconnects", async () => {
    await fault("agent-kill", "node-3", true);
    try {
      // destHost,default: node-3's own agent is gone, node-1's agent serves it across the network.
      await waitUntil("the server to drop node-3's agent", async () => (await snapshot()).agents.map((a) => a.agentId).join() === "node-1");
      await assertTunnelWorks("node-3");
      // A dial that stays pending on node-1's agent: node-2 drops the SYN, the agent waits its 3 s dial timeout.
      await fault("iptables-drop", "node-2", true);
      const pending = curlThroughTunnel(prefix, "node-2");
      await waitUntil("a dial to node-2 pending on node-1's agent", async () => (await snapshot()).pendingDials.some((d) => d.agentId === "node-1" && d.address === "10.224.0.5:10250"));
      const killedAt = performance.now();
      await fault("agent-kill", "node-1", true);
      const curl = await pending;
      const answeredMs = performance.now() - killedAt;
      assert.equal(curl.connectStatus, 502, curl.stderr);
      assert.ok(answeredMs < 2000, `the pending dial failed ${Math.round(answeredMs)} ms after the kill, not at once`);
      const failure = (await snapshot()).recentFailures.find((f) => f.address === "10.224.0.5:10250");
      assert.equal(failure?.reason, "backend_close", JSON.stringify(failure));
      assert.match(failure!.error, /agent disconnected/);
      await fault("iptables-drop", "node-2", false);
      // No agent left: every node's requests fail with 500 No agent available.
      assert.equal((await curlThroughTunnel(prefix, "node-1")).connectStatus, 500);
      const cluster = await doctorCluster();
      assert.equal(cluster.findings.find((f) => f.id === "agents")!.status, "problem");
      for (const n of ["node-1", "node-2", "node-3"]) {
        assert.equal(dialOf(cluster, n).outcome, "no-agent");
        assert.match(dialOf(cluster, n).response!, /No agent available/);
      }
      const health = (await doctorNode("node-1", "--timeout", "1")).findings.find((f) => f.id === "agent-health")!;
      assert.equal(health.status, "warning");
      assert.match(health.summary, /No agent health endpoint .*connection refused/);
    } finally {
      await fault("iptables-drop", "node-2", false);
      await fault("agent-kill", "node-1", false); // the DaemonSet restarts the pods
      await fault("agent-kill", "node-3", false);
    }
    assert.deepEqual((await snapshot()).agents.map((a) => a.agentId).sort(), ["node-1", "node-3"]);
    for (const n of ["node-1", "node-2", "node-3"]) await assertTunnelWorks(n);
  });

  test("egress rejected (node-1's own OUTPUT, node-3 in the router): the agents see connection refused; 500 No agent available; doctor node names egress", async () => {
    const on = await fault("egress-reject", "node-1", true, { where: "node" });
    assert.match(on.detail, /node-1 OUTPUT: .*-j REJECT --reject-with tcp-reset; agent restarted/);
    await fault("egress-reject", "node-3", true);
    try {
      assert.equal((await curlThroughTunnel(prefix, "node-2")).connectStatus, 500);
      const cluster = await doctorCluster();
      assert.equal(dialOf(cluster, "node-2").outcome, "no-agent");
      assert.match(dialOf(cluster, "node-2").response!, /No agent available/);
      for (const n of ["node-1", "node-3"]) {
        const node = await doctorNode(n, "--timeout", "1");
        const egress = node.findings.find((f) => f.id === "egress")!;
        assert.equal(egress.status, "problem", `${n}: ${egress.summary}`);
        assert.match(egress.summary, /10\.225\.0\.4:8132 refused the connection/, n);
        assert.equal(node.findings.find((f) => f.id === "agent-health")!.status, "problem", `${n}: the agent runs but has no server`);
        assert.match(await agentLog(n), /ECONNREFUSED|connection refused/i, `${n}: the agent saw the reset`);
      }
    } finally {
      await fault("egress-reject", "node-1", false);
      await fault("egress-reject", "node-3", false);
    }
    const rules = await onLab("node-1", ["iptables", "-S", "OUTPUT"]);
    assert.doesNotMatch(rules.stdout, /REJECT/, "the off switch removed the node's OUTPUT rule");
    await assertTunnelWorks("node-2");
  });

  test("SNAT port exhaustion: the chatty client's new connections fail once its 8 ports are used; the tunnel keeps working", async () => {
    await fault("snat-exhaustion", "node-1", true, { attempts: 16 });
    try {
      const deadline = Date.now() + 40_000;
      let stats = readChattyStats(readState(prefix)!, "node-1");
      while (!stats.done && Date.now() < deadline) {
        await assertTunnelWorks("node-1"); // kubelet traffic through the tunnel, while the client churns
        await new Promise((r) => setTimeout(r, 500));
        stats = readChattyStats(readState(prefix)!, "node-1");
      }
      assert.ok(stats.done, JSON.stringify(stats));
      assert.deepEqual({ succeeded: stats.succeeded, failed: stats.failed, firstFailureAt: stats.firstFailureAt }, { succeeded: 8, failed: 8, firstFailureAt: 9 }, JSON.stringify(stats));
      for (let i = 0; i < 3; i++) await assertTunnelWorks("node-1");
      const churn = (await doctorNode("node-1", "--snat-ports", "8")).findings.find((f) => f.id === "churn")!;
      assert.equal(churn.status, "warning");
      assert.match(churn.summary, /10\.225\.0\.4:8092: 8 connections/);
    } finally {
      await fault("snat-exhaustion", "node-1", false);
    }
  });
});
