// The guide's causes, switched on and off for real (troubleshooting.md §1.3): each fault is a
// small table entry with `on` and `off`, run in the node, the router or the control plane.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkNsg } from "../doctor/nsg/index.js";
import type { CheckResult } from "../doctor/report/check-result.js";
import { AGENT_PORT, CONTROL_PLANE_IP, KUBELET_PORT, SERVER_HEALTH_PORT, findNode, type LabNode } from "./lab-plan.js";
import { startAgent, startKubelet, stopRole, waitFor, waitForAgent, type Progress } from "./lab.js";
import { startProcess } from "./lab-processes.js";
import { stateDir, writeState, type LabState } from "./lab-state.js";
import { NSG_CHAIN } from "./lab-topology.js";
import { onNode, restoreNodeEtc } from "./node-exec.js";
import { run } from "./run-command.js";

export const FAULT_NAMES = [
  "nsg-deny", "ufw-default", "ufw-deny", "iptables-drop", "iptables-reject", "egress-drop", "egress-reject",
  "snat-exhaustion", "agent-kill", "kubelet-down",
] as const;
export type FaultName = (typeof FAULT_NAMES)[number];

export interface FaultOptions {
  /** iptables-drop/-reject: put the rule in this user chain, jumped to from INPUT. */
  readonly chain?: string;
  /** egress-*: block in the router (NSG/firewall, default) or in the node's own OUTPUT chain. */
  readonly where?: "router" | "node";
  /** nsg-deny: the NSG JSON (`az network nsg show -o json`) whose verdict the router enforces. */
  readonly nsgText?: string;
  /** nsg-deny: the address the connections come from (default: the first node that runs an agent). */
  readonly source?: string;
  /** snat-exhaustion: how many new connections the chatty client opens (bounded). */
  readonly attempts?: number;
}

export interface FaultResult {
  readonly fault: FaultName;
  readonly node: string;
  readonly on: boolean;
  readonly detail: string;
  /** nsg-deny: the nsg evaluator's result the router's rule was made from. */
  readonly nsg?: CheckResult;
}

interface FaultContext {
  readonly state: LabState;
  readonly node: LabNode;
  readonly opts: FaultOptions;
  readonly progress: Progress;
}

const iptNode = (c: FaultContext, args: readonly string[]) => run(onNode(c.state.plan.prefix, c.node, ["iptables", ...args]));
const iptNodeQuiet = (c: FaultContext, args: readonly string[]) => run(onNode(c.state.plan.prefix, c.node, ["iptables", ...args]), { allowFailure: true });
const ufw = (c: FaultContext, args: readonly string[], allowFailure = false) => run(onNode(c.state.plan.prefix, c.node, ["ufw", ...args]), { allowFailure });
const iptRouter = (c: FaultContext, args: readonly string[], allowFailure = false) => run(["iptables", ...args], { ns: c.state.plan.routerNamespace, allowFailure });

// The rule as the article shows it (§1.3 cause 3): INPUT, tcp, dpt:10250.
const kubeletRule = (target: "DROP" | "REJECT") => ["-p", "tcp", "--dport", String(KUBELET_PORT), "-j", target];

async function firewallOn(c: FaultContext, target: "DROP" | "REJECT"): Promise<string> {
  if (c.opts.chain) {
    await iptNode(c, ["-N", c.opts.chain]);
    await iptNode(c, ["-A", c.opts.chain, ...kubeletRule(target)]);
    await iptNode(c, ["-I", "INPUT", "1", "-j", c.opts.chain]);
    return `INPUT → ${c.opts.chain}: -p tcp --dport ${KUBELET_PORT} -j ${target}`;
  }
  await iptNode(c, ["-I", "INPUT", "1", ...kubeletRule(target)]);
  return `INPUT: -p tcp --dport ${KUBELET_PORT} -j ${target}`;
}

async function firewallOff(c: FaultContext, target: "DROP" | "REJECT"): Promise<void> {
  // Whatever the doctor's fix already removed is simply not there any more.
  for (let i = 0; i < 10 && (await iptNodeQuiet(c, ["-D", "INPUT", ...kubeletRule(target)])).code === 0; i++);
  const chain = c.opts.chain;
  if (chain === undefined) return;
  for (let i = 0; i < 10 && (await iptNodeQuiet(c, ["-D", "INPUT", "-j", chain])).code === 0; i++);
  await iptNodeQuiet(c, ["-F", chain]);
  await iptNodeQuiet(c, ["-X", chain]);
}

const egressRule = (c: FaultContext, target: "DROP" | "REJECT") => [
  "-p", "tcp", "-d", `${CONTROL_PLANE_IP}/32`, "--dport", String(AGENT_PORT),
  ...(c.opts.where === "node" ? [] : ["-s", `${c.node.ip}/32`]),
  "-j", target, ...(target === "REJECT" ? ["--reject-with", "tcp-reset"] : []),
];

async function egressOn(c: FaultContext, target: "DROP" | "REJECT"): Promise<string> {
  // An established agent stream would survive the new rule until a keepalive noticed; stop the
  // agent first (its FIN still gets through), then block, then start it again like a restarted pod.
  const hadAgent = await stopRole(c.state, "agent", c.node.name);
  if (c.opts.where === "node") await iptNode(c, ["-I", "OUTPUT", "1", ...egressRule(c, target)]);
  else await iptRouter(c, ["-I", NSG_CHAIN, "1", ...egressRule(c, target)]);
  if (hadAgent) startAgent(c.state, c.node);
  return `${c.opts.where === "node" ? `${c.node.name} OUTPUT` : `router ${NSG_CHAIN}`}: ${egressRule(c, target).join(" ")}${hadAgent ? "; agent restarted" : ""}`;
}

async function egressOff(c: FaultContext, target: "DROP" | "REJECT"): Promise<void> {
  for (const where of ["router", "node"] as const) {
    const cc = { ...c, opts: { ...c.opts, where } };
    if (where === "node") while ((await iptNodeQuiet(cc, ["-D", "OUTPUT", ...egressRule(cc, target)])).code === 0);
    else while ((await iptRouter(cc, ["-D", NSG_CHAIN, ...egressRule(cc, target)], true)).code === 0);
  }
  if (c.node.hasAgent && !c.state.processes.some((p) => p.role === "agent" && p.node === c.node.name)) startAgent(c.state, c.node);
  if (c.node.hasAgent) await waitForAgent(c.state, c.node);
}

/** Disables ufw on the node (its rules leave the kernel) and puts the node's ufw files back as `lab up` made them. */
async function ufwOff(c: FaultContext): Promise<void> {
  await ufw(c, ["--force", "reset"], true);
  restoreNodeEtc(c.state.plan.prefix, c.node);
}

/** The lab's default NSG for nsg-deny: AKS-like, with a deny of 10250 from the VNet above the default allow. */
export function defaultLabNsg(nodeIp: string): string {
  return JSON.stringify({
    name: "aks-agentpool-nsg",
    securityRules: [{
      name: "deny-kubelet-from-vnet", priority: 200, direction: "Inbound", access: "Deny", protocol: "Tcp",
      sourceAddressPrefix: "VirtualNetwork", sourcePortRange: "*", destinationAddressPrefix: `${nodeIp}/32`, destinationPortRange: String(KUBELET_PORT),
    }],
  }, null, 2);
}

async function nsgOn(c: FaultContext): Promise<{ detail: string; nsg: CheckResult }> {
  // Every place a kubelet connection to this node can come from: the agents on other nodes and the control plane.
  const sources = c.opts.source ? [c.opts.source] : [...c.state.plan.nodes.filter((n) => n.hasAgent && n.name !== c.node.name).map((n) => n.ip), CONTROL_PLANE_IP];
  const text = c.opts.nsgText ?? defaultLabNsg(c.node.ip);
  const file = join(stateDir(c.state.plan.prefix), `nsg-${c.node.name}.json`);
  const verdicts = sources.map((source) => ({
    source,
    nsg: checkNsg({ destNic: { label: file, text } }, {
      source, destination: c.node.ip, port: KUBELET_PORT, protocol: "tcp", vnets: ["10.224.0.0/16", "10.225.0.0/16"], asgs: {},
    }),
  }));
  // The router can only enforce a decided verdict. An NSG whose deciding rule needs what the lab
  // cannot know (the members of an application security group, say) is refused, not taken as allowed.
  const undecided = verdicts.filter((v) => v.nsg.verdict !== "blocked" && v.nsg.verdict !== "allowed");
  if (undecided.length > 0) {
    const u = undecided[0]!;
    throw new Error(
      `the nsg evaluator's verdict for ${undecided.map((v) => v.source).join(", ")} → ${c.node.ip}:${KUBELET_PORT} is ${u.nsg.verdict}: ${u.nsg.summary} ` +
      "(the lab gives the evaluator no ASG members: use address prefixes in the NSG). Nothing installed; the fault is not on.",
    );
  }
  writeFileSync(file, text);
  const blocked = verdicts.filter((v) => v.nsg.verdict === "blocked");
  if (blocked.length === 0) {
    return { detail: `the nsg evaluator lets ${sources.join(", ")} → ${c.node.ip}:${KUBELET_PORT} through; nothing installed (NSG file ${file})`, nsg: verdicts[0]!.nsg };
  }
  // The deciding deny becomes a FORWARD DROP for each flow it denies (an NSG drops silently: the client times out).
  for (const { source, nsg } of blocked) {
    const d = nsg.decidedBy as { rule: string };
    await iptRouter(c, ["-I", NSG_CHAIN, "1", "-s", `${source}/32`, "-d", `${c.node.ip}/32`, "-p", "tcp", "--dport", String(KUBELET_PORT), "-m", "comment", "--comment", `nsg:${d.rule}`, "-j", "DROP"]);
  }
  const d = blocked[0]!.nsg.decidedBy as { rule: string; priority: number };
  return { detail: `NSG rule ${d.rule} (priority ${d.priority}) denies ${blocked.map((b) => b.source).join(", ")} → ${c.node.ip}:${KUBELET_PORT}: router ${NSG_CHAIN} drops it (NSG file ${file})`, nsg: blocked[0]!.nsg };
}

async function nsgOff(c: FaultContext): Promise<void> {
  const rules = (await run(["iptables", "-S", NSG_CHAIN], { ns: c.state.plan.routerNamespace })).stdout.split("\n");
  for (const line of rules.filter((l) => l.includes(`-d ${c.node.ip}/32`) && l.includes("nsg:"))) {
    const args = line.replace(/^-A /, "-D ").match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ""));
    await iptRouter(c, args, true);
  }
}

async function snatOn(c: FaultContext): Promise<string> {
  const statsFile = join(stateDir(c.state.plan.prefix), `chatty-${c.node.name}.json`);
  writeFileSync(statsFile, JSON.stringify({ attempts: 0, succeeded: 0, failed: 0, timeouts: 0, firstFailureAt: null, done: false }));
  const config = { host: CONTROL_PLANE_IP, port: SERVER_HEALTH_PORT, attempts: c.opts.attempts ?? 40, connectTimeoutMs: 1000, statsFile };
  const p = startProcess({
    prefix: c.state.plan.prefix, role: "chatty-client", node: c.node.name, namespace: c.node.namespace,
    argv: ["ip", "netns", "exec", c.node.namespace, c.state.nodeBin, "--import", "tsx", join(c.state.repoRoot, "src", "lab", "chatty-client-main.ts")],
    cwd: c.state.repoRoot, env: { NODETUNNEL_LAB_CHATTY: JSON.stringify(config) },
  });
  c.state.processes.push(p.record);
  writeState(c.state);
  return `chatty client on ${c.node.name}: ${config.attempts} new connections to ${CONTROL_PLANE_IP}:${SERVER_HEALTH_PORT}, one per request, through ${c.node.snatPorts.last - c.node.snatPorts.first + 1} SNAT ports (${c.node.snatPorts.first}-${c.node.snatPorts.last}); stats in ${statsFile}`;
}

async function snatOff(c: FaultContext): Promise<void> {
  await stopRole(c.state, "chatty-client", c.node.name);
  // Free the NAT's ports now instead of after the TIME_WAIT timeout (what an idle timeout would do later).
  await run(["conntrack", "-D", "-p", "tcp", "-s", c.node.ip, "-d", CONTROL_PLANE_IP, "--dport", String(SERVER_HEALTH_PORT)], { ns: c.state.plan.routerNamespace, allowFailure: true });
}

export interface ChattyStats {
  readonly attempts: number; readonly succeeded: number; readonly failed: number; readonly timeouts: number;
  readonly firstFailureAt: number | null; readonly done: boolean;
}

export function readChattyStats(state: LabState, nodeName: string): ChattyStats {
  return JSON.parse(readFileSync(join(stateDir(state.plan.prefix), `chatty-${findNode(state.plan, nodeName).name}.json`), "utf8")) as ChattyStats;
}

const table: Record<FaultName, { on(c: FaultContext): Promise<string | { detail: string; nsg: CheckResult }>; off(c: FaultContext): Promise<void> }> = {
  "nsg-deny": { on: nsgOn, off: nsgOff },
  // Each ufw fault sets the whole state it names, whatever an earlier fault or `lab exec` left in
  // the node's ufw configuration; its off switch leaves ufw as `lab up` made it.
  "ufw-default": {
    async on(c) {
      await ufw(c, ["default", "deny", "incoming"]);
      await ufw(c, ["--force", "enable"]);
      return `ufw enabled on ${c.node.name} with its defaults (deny incoming)`;
    },
    off: ufwOff,
  },
  "ufw-deny": {
    async on(c) {
      await ufw(c, ["default", "allow", "incoming"]);
      await ufw(c, ["deny", `${KUBELET_PORT}/tcp`]);
      await ufw(c, ["--force", "enable"]);
      return `ufw enabled on ${c.node.name}: default allow incoming, deny ${KUBELET_PORT}/tcp`;
    },
    off: ufwOff,
  },
  "iptables-drop": { on: (c) => firewallOn(c, "DROP"), off: (c) => firewallOff(c, "DROP") },
  "iptables-reject": { on: (c) => firewallOn(c, "REJECT"), off: (c) => firewallOff(c, "REJECT") },
  "egress-drop": { on: (c) => egressOn(c, "DROP"), off: (c) => egressOff(c, "DROP") },
  "egress-reject": { on: (c) => egressOn(c, "REJECT"), off: (c) => egressOff(c, "REJECT") },
  "snat-exhaustion": { on: snatOn, off: snatOff },
  "agent-kill": {
    async on(c) {
      // SIGKILL, as an OOM kill or a crashed node: SIGTERM would make the agent drain (DRAIN, let
      // its connections and pending dials finish), which is a rolling update, not this fault.
      // Refused rather than recorded: a fault that changed nothing would mislead whoever reads `lab status`.
      if (!c.node.hasAgent) {
        const withAgent = c.state.plan.nodes.filter((n) => n.hasAgent).map((n) => n.name);
        throw new Error(`${c.node.name} runs no agent (agents run on ${withAgent.join(", ") || "no node"}): nothing to kill`);
      }
      if (!(await stopRole(c.state, "agent", c.node.name, "SIGKILL"))) throw new Error(`the agent on ${c.node.name} is not running: nothing to kill`);
      return `agent on ${c.node.name} killed (SIGKILL)`;
    },
    async off(c) {
      if (!c.node.hasAgent || c.state.processes.some((p) => p.role === "agent" && p.node === c.node.name)) return;
      await waitForAgent(c.state, c.node, { process: startAgent(c.state, c.node) });
    },
  },
  "kubelet-down": {
    async on(c) {
      await stopRole(c.state, "kubelet", c.node.name);
      return `kubelet on ${c.node.name} stopped: nothing listens on ${KUBELET_PORT}`;
    },
    async off(c) {
      if (c.state.processes.some((p) => p.role === "kubelet" && p.node === c.node.name)) return;
      const started = startKubelet(c.state, c.node);
      await waitFor(`the kubelet on ${c.node.name}`, async () => (await run(["ss", "-Hltn", `sport = :${KUBELET_PORT}`], { ns: c.node.namespace })).stdout.trim() !== "", 20_000, { process: started });
    },
  },
};

export async function setFault(state: LabState, fault: FaultName, nodeName: string, on: boolean, opts: FaultOptions = {}, progress: Progress = () => {}): Promise<FaultResult> {
  const node = findNode(state.plan, nodeName);
  const key = `${fault} ${node.name}`;
  const recorded = state.faults[key];
  const c: FaultContext = { state, node, opts: { ...recorded?.options, ...opts }, progress };
  if (on) {
    if (recorded) return { fault, node: node.name, on: true, detail: `already on` };
    progress(`switching ${fault} on for ${node.name}`);
    const r = await table[fault].on(c);
    const detail = typeof r === "string" ? r : r.detail;
    const { nsgText: _text, ...options } = opts;
    state.faults[key] = { fault, node: node.name, detail, options };
    writeState(state);
    return { fault, node: node.name, on: true, detail, ...(typeof r === "string" ? {} : { nsg: r.nsg }) };
  }
  progress(`switching ${fault} off for ${node.name}`);
  await table[fault].off(c);
  delete state.faults[key];
  writeState(state);
  return { fault, node: node.name, on: false, detail: "off" };
}
