// The lab's address plan and names (DESIGN.md "The lab"): an AKS-like node subnet, a control
// plane behind a router that plays the VNet, the NSG and the outbound load balancer. The ranges
// exist only inside the lab's namespaces; the root namespace blackholes them while the lab runs.
//
//   nt-node-1 10.224.0.4 ─┐
//   nt-node-2 10.224.0.5 ─┼─ nt-router (10.224.0.1 on every node link, proxy ARP, FORWARD = NSG,
//   nt-node-3 10.224.0.6 ─┘   SNAT to 10.226.0.1 with a few ports per node = outbound LB)
//                               └─ 10.225.0.1 ── nt-cp 10.225.0.4 (nodetunnel server :8132)

export const LAB_RANGES = ["10.224.0.0/16", "10.225.0.0/16", "10.226.0.0/16"] as const;

export const ROUTER_NODE_SIDE_IP = "10.224.0.1";
export const ROUTER_CP_SIDE_IP = "10.225.0.1";
export const CONTROL_PLANE_IP = "10.225.0.4";
/** The outbound load balancer's frontend IP: node traffic to the control plane leaves as this. */
export const OUTBOUND_IP = "10.226.0.1";

export const AGENT_PORT = 8132;
export const HTTP_CONNECT_PORT = 8131;
export const SERVER_HEALTH_PORT = 8092;
export const SERVER_ADMIN_PORT = 8095;
export const AGENT_HEALTH_PORT = 8093;
export const KUBELET_PORT = 10250;
/** First SNAT port; each node gets its own block of `snatPortsPerNode` after it, as Azure pre-allocates. */
export const SNAT_FIRST_PORT = 1024;
export const MAX_NODES = 8;

export interface LabNode {
  readonly name: string;
  readonly index: number;
  readonly ip: string;
  readonly namespace: string;
  /** The router's end of this node's link. */
  readonly routerLink: string;
  readonly snatPorts: { readonly first: number; readonly last: number };
  readonly hasAgent: boolean;
}

export interface LabPlan {
  readonly prefix: string;
  readonly cpNamespace: string;
  readonly routerNamespace: string;
  readonly nodes: readonly LabNode[];
  readonly snatPortsPerNode: number;
  readonly proxyStrategies: string;
}

export interface LabPlanInput {
  readonly prefix?: string;
  readonly nodes?: number;
  /** Node names that run an agent; default all (`destHost`, like a DaemonSet). */
  readonly agents?: readonly string[];
  readonly snatPortsPerNode?: number;
  readonly proxyStrategies?: string;
}

export function planLab(input: LabPlanInput = {}): LabPlan {
  const prefix = input.prefix ?? "nt";
  // Interface names are created inside the namespaces, but the namespace names are files: keep them tame.
  if (!/^nt[a-z0-9-]{0,20}$/.test(prefix)) throw new Error(`lab prefix "${prefix}": expected nt followed by up to 20 of a-z, 0-9, -`);
  const count = input.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) throw new Error(`--nodes ${count}: expected 1–${MAX_NODES}`);
  const snatPortsPerNode = input.snatPortsPerNode ?? 8;
  if (!Number.isInteger(snatPortsPerNode) || snatPortsPerNode < 2 || snatPortsPerNode > 1024) {
    throw new Error(`--snat-ports ${snatPortsPerNode}: expected 2–1024 ports per node`);
  }
  const names = Array.from({ length: count }, (_, i) => `node-${i + 1}`);
  const agents = input.agents ?? names;
  for (const a of agents) if (!names.includes(a)) throw new Error(`--agents: no node named ${a} (nodes are ${names.join(", ")})`);
  const nodes = names.map((name, i): LabNode => {
    const first = SNAT_FIRST_PORT + i * snatPortsPerNode;
    return {
      name,
      index: i + 1,
      ip: `10.224.0.${4 + i}`,
      namespace: `${prefix}-${name}`,
      routerLink: `rt-n${i + 1}`,
      snatPorts: { first, last: first + snatPortsPerNode - 1 },
      hasAgent: agents.includes(name),
    };
  });
  return {
    prefix,
    cpNamespace: `${prefix}-cp`,
    routerNamespace: `${prefix}-router`,
    nodes,
    snatPortsPerNode,
    proxyStrategies: input.proxyStrategies ?? (agents.length === count ? "destHost" : "destHost,default"),
  };
}

export function findNode(plan: Pick<LabPlan, "nodes">, name: string): LabNode {
  const node = plan.nodes.find((n) => n.name === name || n.namespace === name || n.ip === name);
  if (!node) throw new Error(`no lab node "${name}" (nodes: ${plan.nodes.map((n) => n.name).join(", ")})`);
  return node;
}

/** Namespaces a lab with this prefix may own: what `lab down` removes even without a state file. */
export const ownedNamespacePattern = (prefix: string): RegExp =>
  new RegExp(`^${prefix.replace(/[-]/g, "\\-")}-(cp|router|node-[1-9])$`);
