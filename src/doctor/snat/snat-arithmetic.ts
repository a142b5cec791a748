// The SNAT port arithmetic (troubleshooting.md §5.2-§5.6): ports per node, the most nodes the
// configuration supports, what nodes + surge need, and the NAT-gateway alternative.
import { defaultPortsPerNode, lastPoolSizeAt, maxDefaultPoolSize, nextBoundary } from "./default-allocation.js";

export const portsPerLbIp = 64_000;
export const portsPerNatGatewayIp = 64_512;
export const maxNatGatewayIps = 16;
export const invalidPortsError = "InvalidLoadBalancerProfileAllocatedOutboundPorts";

export interface SnatInput {
  readonly nodes: number;
  readonly outboundIps: number;
  /** 0 or absent: the default allocation table. */
  readonly portsPerNode?: number;
  readonly maxSurge: number;
  readonly maxNodes?: number;
  readonly natGateway: boolean;
}

export interface Finding {
  readonly severity: "problem" | "warning";
  readonly text: string;
  readonly fix?: { readonly description: string; readonly command: string };
}

export interface SnatArithmetic {
  readonly mode: "default" | "explicit" | "nat-gateway";
  readonly portsPerNode: number | null;
  /** The contract's floor(64,000 × IPs / portsPerNode); null without a per-node allocation. */
  readonly capacityNodes: number | null;
  /** The largest pool the default allocation table covers (1,000); null off the default table. */
  readonly defaultPoolLimit: number | null;
  readonly requiredPorts: number | null;
  readonly availablePorts: number;
  readonly nextBoundary: number | null;
  readonly findings: readonly Finding[];
  readonly assumptions: readonly string[];
}

const fmt = (n: number) => n.toLocaleString("en-US");

/** The largest valid explicit allocation (a multiple of 8, ≤ 64,000) that fits `nodes` on `ips`. */
export function portsThatFit(nodes: number, ips: number): number {
  return Math.min(64_000, Math.floor(portsPerLbIp * ips / nodes / 8) * 8);
}

const updatePorts = (ports: number) => `az aks update --resource-group <resource-group> --name <cluster> --load-balancer-outbound-ports ${ports}`;
const updateIps = (ips: number) => `az aks update --resource-group <resource-group> --name <cluster> --load-balancer-managed-outbound-ip-count ${ips}`;

function natGateway(input: SnatInput): SnatArithmetic {
  const findings: Finding[] = [];
  if (input.outboundIps > maxNatGatewayIps) {
    findings.push({ severity: "problem", text: `A NAT gateway takes at most ${maxNatGatewayIps} public IPs, not ${input.outboundIps}.` });
  }
  const ips = Math.min(input.outboundIps, maxNatGatewayIps);
  const available = portsPerNatGatewayIp * ips;
  return {
    mode: "nat-gateway",
    // Ports are shared dynamically by every VM in the subnet; this is the even share (§5.6).
    portsPerNode: Math.floor(available / Math.max(1, input.nodes)),
    capacityNodes: null,
    defaultPoolLimit: null,
    requiredPorts: null,
    availablePorts: available,
    nextBoundary: null,
    findings,
    assumptions: [
      `NAT gateway: ${fmt(portsPerNatGatewayIp)} ports per public IP, shared on demand by all VMs in the subnet (no per-node pre-allocation); portsPerNode is the even share`,
      ...(input.portsPerNode ? ["--ports-per-node is ignored for a NAT gateway"] : []),
    ],
  };
}

function explicit(input: SnatInput, ports: number): SnatArithmetic {
  const available = portsPerLbIp * input.outboundIps;
  const findings: Finding[] = [];
  if (ports % 8 !== 0 || ports < 0 || ports > 64_000) {
    findings.push({
      severity: "problem",
      text: `${fmt(ports)} ports per node is not a valid allocation (a multiple of 8 within 0-64,000): Azure rejects it with ${invalidPortsError}.`,
      fix: { description: "Use a multiple of 8 that fits nodes + surge", command: updatePorts(portsThatFit(input.nodes + input.maxSurge, input.outboundIps)) },
    });
    return { mode: "explicit", portsPerNode: ports, capacityNodes: null, defaultPoolLimit: null, requiredPorts: null, availablePorts: available, nextBoundary: null, findings, assumptions: [] };
  }
  const capacity = Math.floor(available / ports);
  const withSurge = input.nodes + input.maxSurge;
  const required = withSurge * ports;
  const ipsFor = (n: number) => Math.ceil(n * ports / portsPerLbIp);
  if (withSurge > capacity) {
    findings.push({
      severity: "problem",
      text: `${fmt(ports)} ports × ${input.nodes} nodes + ${input.maxSurge} surge = ${fmt(required)} ports, but ${input.outboundIps} outbound IP${input.outboundIps > 1 ? "s give" : " gives"} ${fmt(available)}: at most ${capacity} nodes fit, so scaling and upgrades fail with ${invalidPortsError}.`,
      fix: {
        description: `Add outbound IPs (${ipsFor(withSurge)} fit ${withSurge} nodes at ${fmt(ports)} ports), or lower the ports per node to ${fmt(portsThatFit(withSurge, input.outboundIps))}`,
        command: updateIps(ipsFor(withSurge)),
      },
    });
  }
  if (input.maxNodes !== undefined && input.maxNodes + input.maxSurge > capacity) {
    const need = input.maxNodes + input.maxSurge;
    findings.push({
      severity: "warning",
      text: `The autoscaler may grow to ${input.maxNodes} nodes (+${input.maxSurge} surge = ${need}), beyond the ${capacity} this configuration supports; scale-outs past ${capacity - input.maxSurge} will fail.`,
      fix: { description: `Add outbound IPs so ${need} nodes fit at ${fmt(ports)} ports`, command: updateIps(ipsFor(need)) },
    });
  }
  return { mode: "explicit", portsPerNode: ports, capacityNodes: capacity, defaultPoolLimit: null, requiredPorts: required, availablePorts: available, nextBoundary: null, findings, assumptions: [] };
}

function byDefault(input: SnatInput): SnatArithmetic {
  const available = portsPerLbIp * input.outboundIps;
  const findings: Finding[] = [];
  const ports = defaultPortsPerNode(input.nodes);
  const assumptions = [
    "Default allocation (--load-balancer-outbound-ports 0): ports per node from the backend pool size, which counts the nodes of every pool behind the load balancer",
  ];
  if (ports === null) {
    findings.push({
      severity: "problem",
      text: `The default SNAT allocation covers pools up to ${fmt(maxDefaultPoolSize)} instances; ${input.nodes} nodes need an explicit --load-balancer-outbound-ports.`,
      fix: { description: "Allocate ports explicitly", command: updatePorts(portsThatFit(input.nodes + input.maxSurge, input.outboundIps)) },
    });
    return { mode: "default", portsPerNode: null, capacityNodes: null, defaultPoolLimit: maxDefaultPoolSize, requiredPorts: null, availablePorts: available, nextBoundary: null, findings, assumptions };
  }
  // Pools past `last` get less, or (past 1,000) no default allocation at all.
  const last = lastPoolSizeAt(input.nodes)!;
  // The contract's floor(64,000 × IPs / ports). The default table ends at 1,000 (defaultPoolLimit):
  // a pool of more than 1,000 has no default allocation, however many ports the IPs would give
  // (with 32 ports on one IP the formula says 2,000), and the findings below judge that limit.
  // Every row of the table fits on one IP (at most 51,200 ports), so below it, going past
  // capacity means crossing a boundary (ports halve).
  const capacity = Math.floor(available / ports);
  const withSurge = input.nodes + input.maxSurge;
  const explicitFix = (target: number) => ({
    description: `Allocate ports explicitly so they do not halve as the pool grows (${fmt(portsThatFit(target, input.outboundIps))} per node fits ${target} nodes on ${input.outboundIps} IP${input.outboundIps > 1 ? "s" : ""})`,
    command: updatePorts(portsThatFit(target, input.outboundIps)),
  });
  // Pushed most serious first (check-snat's sort by severity is stable, and the summary is the
  // first finding): losing the default allocation, then halving, then today's allocation.
  if (withSurge > maxDefaultPoolSize) {
    findings.push({
      severity: "problem",
      text: `An upgrade surge takes the pool to ${withSurge} nodes (${input.nodes} + ${input.maxSurge}), past the ${fmt(maxDefaultPoolSize)} instances the default SNAT allocation covers: the nodes lose their default allocation, so upgrades need an explicit --load-balancer-outbound-ports.`,
      fix: { description: `Allocate ports explicitly (${fmt(portsThatFit(withSurge, input.outboundIps))} per node fits ${withSurge} nodes on ${input.outboundIps} IP${input.outboundIps > 1 ? "s" : ""})`, command: updatePorts(portsThatFit(withSurge, input.outboundIps)) },
    });
  }
  if (input.maxNodes !== undefined && input.maxNodes + input.maxSurge > maxDefaultPoolSize) {
    const top = input.maxNodes + input.maxSurge;
    findings.push({
      severity: "warning",
      text: `The autoscaler may grow to ${input.maxNodes} nodes (+${input.maxSurge} surge = ${top}), past the ${fmt(maxDefaultPoolSize)} instances the default SNAT allocation covers: past ${fmt(maxDefaultPoolSize - input.maxSurge)} nodes (${fmt(maxDefaultPoolSize)} with the surge) the nodes would lose their default allocation and need an explicit --load-balancer-outbound-ports.`,
      fix: explicitFix(top),
    });
  }
  if (withSurge > last && withSurge <= maxDefaultPoolSize) {
    findings.push({
      severity: "warning",
      text: `An upgrade surge takes the pool to ${withSurge} nodes, past ${last}: every node's SNAT ports halve to ${fmt(defaultPortsPerNode(withSurge)!)} during the upgrade.`,
      fix: explicitFix(withSurge),
    });
  }
  if (input.maxNodes !== undefined && input.maxNodes + input.maxSurge > last && input.maxNodes + input.maxSurge <= maxDefaultPoolSize) {
    const top = input.maxNodes + input.maxSurge;
    findings.push({
      severity: "warning",
      text: `The autoscaler may grow to ${input.maxNodes} nodes (+${input.maxSurge} surge): every node's SNAT ports would drop to ${fmt(defaultPortsPerNode(top)!)} from ${fmt(ports)} today.`,
      fix: explicitFix(top),
    });
  }
  if (input.nodes > 50) {
    findings.push({
      severity: "warning",
      text: `${input.nodes} nodes get ${fmt(ports)} SNAT ports each by default (1,024 at 50 nodes or fewer; the allocation halved at ${[51, 101, 201, 401, 801].filter((b) => b <= input.nodes).join(", ")} nodes).`,
      fix: explicitFix(input.maxNodes !== undefined ? input.maxNodes + input.maxSurge : withSurge),
    });
  }
  return { mode: "default", portsPerNode: ports, capacityNodes: capacity, defaultPoolLimit: maxDefaultPoolSize, requiredPorts: withSurge * ports, availablePorts: available, nextBoundary: nextBoundary(input.nodes), findings, assumptions };
}

export function computeSnat(input: SnatInput): SnatArithmetic {
  if (input.natGateway) return natGateway(input);
  if (input.portsPerNode !== undefined && input.portsPerNode !== 0) return explicit(input, input.portsPerNode);
  return byDefault(input);
}
