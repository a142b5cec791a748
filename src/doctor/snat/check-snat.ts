// `doctor snat`: SNAT port arithmetic for an Azure Standard Load Balancer or NAT gateway, the
// load balancer's SNAT metrics, and connection churn (doctor-cli.md `snat`; troubleshooting.md §5).
import { DoctorInputError } from "../input-error.js";
import type { CheckResult, CheckStatus, Fix } from "../report/check-result.js";
import { parseConnections } from "./parse-connections.js";
import type { Connection } from "./parse-connections.js";
import { parseSnatMetrics } from "./parse-snat-metrics.js";
import type { SnatMetrics } from "./parse-snat-metrics.js";
import { computeSnat } from "./snat-arithmetic.js";
import type { Finding, SnatInput } from "./snat-arithmetic.js";
import { noSnatRanges, takesSnatPort } from "./snat-destination.js";
import { churnThreshold, summarizeChurn } from "./summarize-churn.js";
import type { DestinationChurn } from "./summarize-churn.js";

export interface SnatOptions extends SnatInput {
  readonly metricsText?: string;
  readonly connectionsText?: string;
  /** More ranges reached without SNAT (`--vnet`: a VNet or peering with public addresses), as CIDRs. */
  readonly vnets?: readonly string[];
}

const usedRatioWarning = 0.8;

function checkWhole(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) {
    throw new DoctorInputError(`${name} ${v}: expected an integer ≥ ${min}`, { expected: `an integer ≥ ${min}` });
  }
}

function metricFindings(m: SnatMetrics, assumptions: string[]): Finding[] {
  const out: Finding[] = [];
  if (m.failedConnections === null && m.metricNames.some((n) => n.toLowerCase() === "snatconnectioncount")) {
    assumptions.push("SnatConnectionCount is not split by ConnectionState; rerun with --filter \"ConnectionState eq '*'\" to see failed connections");
  }
  if (m.failedConnections !== null && m.failedConnections > 0) {
    out.push({
      severity: "problem",
      text: `${m.failedConnections.toLocaleString("en-US")} SNAT connections failed in the period: the nodes are out of SNAT ports (any failed SNAT connection means exhaustion).`,
      fix: {
        description: "Reuse connections in the applications (pooling), then give the nodes more ports: more outbound IPs, explicit ports per node, or a NAT gateway (docs/troubleshooting.md §6)",
        command: "az aks update --resource-group <resource-group> --name <cluster> --load-balancer-managed-outbound-ip-count <N+1>",
      },
    });
  }
  for (const b of m.backends.filter((x) => x.ratio >= usedRatioWarning)) {
    out.push({
      severity: "warning",
      text: `Backend ${b.backendIp}${b.protocol ? ` (${b.protocol})` : ""} used ${b.used} of its ${b.allocated} allocated SNAT ports (${Math.round(b.ratio * 100)} %).`,
    });
  }
  return out;
}

function churnFindings(churn: readonly DestinationChurn[], portsPerNode: number | null, format: "ss" | "conntrack", loadBalancer: boolean): Finding[] {
  const out: Finding[] = [];
  const threshold = churnThreshold(loadBalancer ? portsPerNode : null);
  for (const c of churn.filter((x) => x.timeWait >= threshold)) {
    const [ip] = c.destination.split(/:(?=\d+$)/);
    out.push({
      severity: "warning",
      text: `Connection churn: ${c.timeWait} connections to ${c.destination} in TIME_WAIT (of ${c.connections}); each new connection to one destination takes a new SNAT port.`,
      fix: {
        description: `Pool and reuse connections to ${c.destination} in the client (HTTP keep-alive, one gRPC channel) instead of one connection per request; watch the count with the command`,
        command: `ss -tan state time-wait dst ${ip} | wc -l`,
      },
    });
  }
  // From one node (ss), every connection to one destination IP:port holds its own SNAT port.
  if (format === "ss" && loadBalancer && portsPerNode !== null) {
    for (const c of churn.filter((x) => x.connections >= usedRatioWarning * portsPerNode)) {
      out.push({ severity: c.connections >= portsPerNode ? "problem" : "warning", text: `${c.connections} connections to ${c.destination} need as many SNAT ports; this node has ${portsPerNode}.` });
    }
  }
  return out;
}

export function checkSnat(opts: SnatOptions): CheckResult {
  checkWhole("--nodes", opts.nodes, 1);
  checkWhole("--outbound-ips", opts.outboundIps, 1);
  checkWhole("--max-surge", opts.maxSurge, 0);
  checkWhole("--max-nodes", opts.maxNodes, 1);
  if (opts.portsPerNode !== undefined && !Number.isInteger(opts.portsPerNode)) {
    throw new DoctorInputError(`--ports-per-node ${opts.portsPerNode}: expected an integer`, { expected: "an integer (a multiple of 8 within 0-64000)" });
  }
  const a = computeSnat(opts);
  const assumptions = [...a.assumptions];
  if (!opts.natGateway) assumptions.push("64,000 SNAT ports per outbound IP; surge nodes counted as in an upgrade (--max-surge)");
  const findings: Finding[] = [...a.findings];
  const extra: Record<string, unknown> = {};
  if (opts.metricsText !== undefined) {
    const m = parseSnatMetrics(opts.metricsText);
    extra["metrics"] = { failedConnections: m.failedConnections, successfulConnections: m.successfulConnections, backends: m.backends };
    findings.push(...metricFindings(m, assumptions));
  }
  const notCounted: string[] = [];
  if (opts.connectionsText !== undefined) {
    const parsed = parseConnections(opts.connectionsText);
    // Only flows that leave through the load balancer or NAT gateway hold SNAT ports (§5.4); a
    // flow conntrack shows SNATed by the device it ran on holds one wherever it goes.
    const isSnatDestination = takesSnatPort(opts.vnets);
    const takesPort = (c: Connection) => c.sourceNatted === true || isSnatDestination(c.destination);
    const churn = summarizeChurn(parsed.connections.filter(takesPort));
    const excluded = summarizeChurn(parsed.connections.filter((c) => !takesPort(c)));
    const excludedConnections = excluded.reduce((n, e) => n + e.connections, 0);
    extra["churn"] = churn;
    extra["excludedConnections"] = excludedConnections;
    extra["excludedDestinations"] = excluded;
    if (parsed.format === "conntrack") assumptions.push("conntrack input: destinations counted across every source the table holds");
    assumptions.push(`Connections to ${[...noSnatRanges, ...(opts.vnets ?? [])].join(", ")} take no SNAT port unless conntrack shows them SNATed: they stay in the VNet or the host${opts.vnets?.length ? "" : "; give --vnet for a VNet or peering with public addresses"}`);
    if (excludedConnections > 0 && parsed.format === "ss") {
      assumptions.push("ss shows a Service's ClusterIP, not the endpoint kube-proxy sends it to: a ClusterIP with public endpoints (the kubernetes service of a cluster whose API server is public) does use SNAT ports; conntrack -L on the node shows the endpoint");
    }
    if (excludedConnections > 0) {
      const top = excluded.slice(0, 3).map((e) => `${e.destination} (${e.connections})`).join(", ");
      notCounted.push(`Not counted: ${excludedConnections} connection(s) to ${excluded.length} destination(s) that take no SNAT port: ${top}${excluded.length > 3 ? ", ..." : ""}.`);
    }
    findings.push(...churnFindings(churn, a.portsPerNode, parsed.format, a.mode !== "nat-gateway"));
  }
  const order = { problem: 0, warning: 1 } as const;
  findings.sort((x, y) => order[x.severity] - order[y.severity]);
  const status: CheckStatus = findings[0]?.severity ?? "ok";
  // Several findings can call for the same command (a surge and the autoscaler past one
  // boundary); it is listed once, with the description of the most serious finding.
  const fixes: Fix[] = [];
  for (const f of findings) if (f.fix && !fixes.some((x) => x.command === f.fix!.command)) fixes.push(f.fix);
  const ports = a.portsPerNode === null ? "no default allocation" : `${a.portsPerNode.toLocaleString("en-US")} ports per node`;
  const okSummary = a.mode === "nat-gateway"
    ? `NAT gateway with ${Math.min(opts.outboundIps, 16)} IP(s): ${a.availablePorts.toLocaleString("en-US")} SNAT ports shared by ${opts.nodes} nodes (about ${ports}); nothing wrong found.`
    : `${ports} × ${opts.nodes} nodes + ${opts.maxSurge} surge = ${a.requiredPorts?.toLocaleString("en-US")} of ${a.availablePorts.toLocaleString("en-US")} ports; up to ${Math.min(a.capacityNodes ?? Infinity, a.defaultPoolLimit ?? Infinity)} nodes fit. Nothing wrong found.`;
  return {
    check: "snat",
    status,
    summary: findings[0]?.text ?? okSummary,
    fixes,
    assumptions,
    mode: a.mode,
    portsPerNode: a.portsPerNode,
    capacityNodes: a.capacityNodes,
    ...(a.defaultPoolLimit === null ? {} : { defaultPoolLimit: a.defaultPoolLimit }),
    requiredPorts: a.requiredPorts,
    availablePorts: a.availablePorts,
    nextBoundary: a.nextBoundary,
    ...extra,
    details: [
      ...findings.slice(1).map((f) => `${f.severity}: ${f.text}`),
      ...(findings.length > 0 ? [okSummary.replace(/ Nothing wrong found\.| nothing wrong found\./, "")] : []),
      ...notCounted,
    ],
  };
}
