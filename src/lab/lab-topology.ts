// Builds and removes the lab's namespaces, links, routes and router rules (lab-plan.ts shows the
// picture). Every resource is recorded in the state before it is created.
import { CONTROL_PLANE_IP, LAB_RANGES, OUTBOUND_IP, ROUTER_CP_SIDE_IP, ROUTER_NODE_SIDE_IP, type LabNode, type LabPlan } from "./lab-plan.js";
import { otherLabStates, writeState, type LabState } from "./lab-state.js";
import { CommandError, run } from "./run-command.js";

/** The router chain that plays the NSG on the node subnet: FORWARD jumps to it first. */
export const NSG_CHAIN = "NSG";

export async function createNamespace(state: LabState, ns: string): Promise<void> {
  state.namespaces.push(ns);
  writeState(state);
  await run(["ip", "netns", "add", ns]);
  await run(["ip", "link", "set", "lo", "up"], { ns });
}

// Both ends are created directly inside their namespaces, so no interface ever appears in the root namespace.
async function veth(a: { ns: string; name: string }, b: { ns: string; name: string }): Promise<void> {
  await run(["ip", "link", "add", a.name, "netns", a.ns, "type", "veth", "peer", "name", b.name, "netns", b.ns]);
}

export async function blackholeRanges(): Promise<Set<string>> {
  const out = (await run(["ip", "route", "show", "type", "blackhole"])).stdout;
  return new Set(out.split("\n").map((l) => /^blackhole (\S+)/.exec(l.trim())?.[1]).filter((r): r is string => r !== undefined));
}

/**
 * Blackholes the lab's ranges in the root namespace. A route already there is shared when another
 * lab holds it (this lab holds it too, so whichever lab goes down last removes it) and left alone
 * when none does (the host's own: no lab removes it).
 */
export async function addBlackholes(state: LabState): Promise<void> {
  const existing = await blackholeRanges();
  const heldByLabs = new Set(otherLabStates(state.plan.prefix).flatMap((s) => s.routes));
  for (const range of LAB_RANGES) {
    if (existing.has(range) && !heldByLabs.has(range)) continue;
    state.routes.push(range);
    writeState(state);
    if (existing.has(range)) continue;
    const r = await run(["ip", "route", "add", "blackhole", range], { allowFailure: true });
    // A lab coming up at the same moment may have added it first: then it is shared.
    if (r.code !== 0 && !(await blackholeRanges()).has(range)) throw new CommandError(["ip", "route", "add", "blackhole", range], r);
  }
}

/**
 * Removes the routes `held` (those of a lab going down) unless another lab is still there: every
 * lab needs all of them while it runs. Call it after this lab's own state is gone.
 */
export async function removeBlackholes(prefix: string, held: readonly string[], progress: (line: string) => void): Promise<string[]> {
  if (held.length === 0) return [];
  const others = otherLabStates(prefix).map((s) => s.plan.prefix);
  if (others.length > 0) {
    progress(`keeping the blackhole routes ${held.join(", ")}: lab ${others.join(", ")} still uses them`);
    return [];
  }
  for (const range of held) await run(["ip", "route", "del", "blackhole", range], { allowFailure: true });
  return held.map((range) => `blackhole ${range}`);
}

/** Refuses to start if the host itself uses an address in the lab's ranges (the blackhole would cut it off). */
export async function checkRangesFree(): Promise<void> {
  const routes = (await run(["ip", "-4", "route", "show", "table", "all"])).stdout;
  const addrs = (await run(["ip", "-4", "-o", "addr", "show"])).stdout;
  for (const line of [...routes.split("\n"), ...addrs.split("\n")]) {
    if (/blackhole/.test(line)) continue;
    if (/\b10\.22[456]\./.test(line)) throw new Error(`the host already uses the lab's address ranges (${LAB_RANGES.join(", ")}): ${line.trim()}`);
  }
}

export async function buildRouter(state: LabState): Promise<void> {
  const plan = state.plan;
  const r = plan.routerNamespace;
  await createNamespace(state, r);
  await createNamespace(state, plan.cpNamespace);
  await veth({ ns: r, name: "rt-cp" }, { ns: plan.cpNamespace, name: "eth0" });
  await run(["ip", "addr", "add", `${ROUTER_CP_SIDE_IP}/24`, "dev", "rt-cp"], { ns: r });
  await run(["ip", "link", "set", "rt-cp", "up"], { ns: r });
  await run(["ip", "addr", "add", `${OUTBOUND_IP}/32`, "dev", "lo"], { ns: r });
  await run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], { ns: r });
  await run(["ip", "addr", "add", `${CONTROL_PLANE_IP}/24`, "dev", "eth0"], { ns: plan.cpNamespace });
  await run(["ip", "link", "set", "eth0", "up"], { ns: plan.cpNamespace });
  await run(["ip", "route", "add", "default", "via", ROUTER_CP_SIDE_IP], { ns: plan.cpNamespace });
  // The NSG: FORWARD → NSG (faults add rules there), then accept. The outbound LB: per-node SNAT blocks.
  await run(["iptables", "-N", NSG_CHAIN], { ns: r });
  await run(["iptables", "-A", "FORWARD", "-j", NSG_CHAIN], { ns: r });
  for (const node of plan.nodes) await buildNode(state, node);
}

async function buildNode(state: LabState, node: LabNode): Promise<void> {
  const r = state.plan.routerNamespace;
  await createNamespace(state, node.namespace);
  await veth({ ns: r, name: node.routerLink }, { ns: node.namespace, name: "eth0" });
  // Azure's VNet routes every packet, even inside one subnet: the router owns .1 on every node link,
  // answers ARP for the other nodes (proxy ARP) and forwards, so node-to-node traffic meets the NSG too.
  await run(["ip", "addr", "add", `${ROUTER_NODE_SIDE_IP}/32`, "dev", node.routerLink], { ns: r });
  await run(["ip", "link", "set", node.routerLink, "up"], { ns: r });
  await run(["ip", "route", "add", `${node.ip}/32`, "dev", node.routerLink], { ns: r });
  await run(["sysctl", "-qw", `net.ipv4.conf.${node.routerLink}.proxy_arp=1`], { ns: r });
  await run([
    "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", `${node.ip}/32`, "-o", "rt-cp", "-p", "tcp",
    "-j", "SNAT", "--to-source", `${OUTBOUND_IP}:${node.snatPorts.first}-${node.snatPorts.last}`,
  ], { ns: r });
  await run(["ip", "addr", "add", `${node.ip}/24`, "dev", "eth0"], { ns: node.namespace });
  await run(["ip", "link", "set", "eth0", "up"], { ns: node.namespace });
  await run(["ip", "route", "add", "default", "via", ROUTER_NODE_SIDE_IP], { ns: node.namespace });
}

export function describePlan(plan: LabPlan): string[] {
  return [
    `control plane ${plan.cpNamespace}: ${CONTROL_PLANE_IP} (nodetunnel server: agents :8132, HTTP CONNECT 127.0.0.1:8131, health :8092)`,
    `router ${plan.routerNamespace}: FORWARD → ${NSG_CHAIN} (the NSG); SNAT to ${OUTBOUND_IP} with ${plan.snatPortsPerNode} ports per node (the outbound load balancer)`,
    ...plan.nodes.map((n) => `${n.name} (${n.namespace}): ${n.ip}, kubelet :10250, ${n.hasAgent ? "agent" : "no agent"}, SNAT ports ${n.snatPorts.first}-${n.snatPorts.last}`),
    `server strategies: ${plan.proxyStrategies}`,
  ];
}
