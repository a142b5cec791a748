// `doctor cluster` (doctor-cli.md `doctor cluster`): from the control plane, the server's agents
// and one dial per node through the tunnel, so "logs work only on some nodes" is one table.
import type { CheckResult, CheckStatus, Fix } from "../report/check-result.js";
import { egressCheck } from "../explain/causes.js";
import { textTable } from "../report/text-table.js";
import type { DialOutcome, DialResult, FrontendAddress } from "./dial-through-connect.js";
import type { ServerAgents } from "./server-agents.js";

export interface ClusterNode { readonly name: string; readonly ip: string }

export interface ClusterInputs {
  readonly agents: ServerAgents;
  readonly dials: ReadonlyArray<{ readonly node: ClusterNode; readonly result: DialResult }>;
  /** host:port the agents dial, for the egress hint; null when not known. */
  readonly agentEndpoint: string | null;
  /** The frontend dialled (--frontend or --frontend-uds), for the fix of a frontend that did not answer. */
  readonly frontend?: FrontendAddress;
}

const shellQuote = (s: string) => (/^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);

// A frontend that did not answer HTTP CONNECT: a socket (--frontend-uds) is usually the server's
// gRPC frontend, which kube-apiserver dials in GRPC mode and the doctor cannot use (it answers in
// HTTP/2 and closes); the fix is the socket of an HTTP CONNECT frontend, not a TCP port.
function frontendFix(r: DialResult, frontend: FrontendAddress | undefined): Fix {
  const grpc = r.frontendSpeaks === "http2";
  if (frontend && "path" in frontend) {
    return {
      description: `${grpc ? `${frontend.path} answered in HTTP/2: it is the server's gRPC frontend, which` : `${frontend.path} gave no HTTP CONNECT answer; a gRPC frontend's socket`} the doctor cannot dial through. ` +
        "Point --frontend-uds at the socket of the server's HTTP CONNECT frontend: its --uds-name where it runs with --mode http-connect, or a second frontend " +
        "(--frontend=http-connect=unix:<path>, same --uds-mode). This shows who listens on the socket given (read-only)",
      command: `ss -xlp | grep -F -- ${shellQuote(frontend.path)}`,
    };
  }
  if (grpc && frontend) {
    return {
      description: `${frontend.host}:${frontend.port} answered in HTTP/2: it is the server's gRPC frontend, which the doctor cannot dial through. ` +
        "Point --frontend at the server's HTTP CONNECT frontend: its --server-port where it runs with --mode http-connect, or a second frontend " +
        "(--frontend=http-connect=tcp:<port>). This shows who listens on the port given (read-only)",
      command: `ss -ltnp 'sport = :${frontend.port}'`,
    };
  }
  return { description: "Check that the nodetunnel server runs and that --frontend points at its HTTP CONNECT frontend", command: "ss -ltnp | grep -E ':(8131|8090)\\b'" };
}

const meaning: Record<DialOutcome, string> = {
  ok: "the tunnel reached the kubelet",
  "no-agent": "no agent can serve this node (No agent available → HTTP 500)",
  timeout: "the agent's dial timed out: something drops port 10250 on the way (NSG, ufw, iptables DROP) → HTTP 504 i/o timeout",
  refused: "the connection was refused: the kubelet is down or a REJECT rule answers → HTTP 502",
  "no-route": "no route to the node, or an ICMP-unreachable REJECT → HTTP 502",
  limit: "the server refused the dial (a limit was reached) → HTTP 503",
  "frontend-down": "the server's HTTP CONNECT frontend did not answer",
  error: "the dial failed",
};

function fixFor(node: ClusterNode, r: DialResult, agentEndpoint: string | null, frontend: FrontendAddress | undefined): Fix | null {
  const onNode = `nodetunnel doctor node${agentEndpoint ? ` --server ${agentEndpoint}` : ""} --node-ip ${node.ip}`;
  switch (r.outcome) {
    case "ok":
      return null;
    case "no-agent":
      return {
        description: `No agent serves ${node.name}: check the agents run, and that egress from the nodes to the server is open (run on ${node.name})`,
        command: agentEndpoint ? egressCheck(agentEndpoint, Number(/:(\d+)$/.exec(agentEndpoint)?.[1] ?? 443)) : "kubectl -n kube-system get pods -l k8s-app=konnectivity-agent -o wide",
      };
    case "timeout":
    case "refused":
    case "no-route":
      return { description: `Find the firewall rule or the stopped kubelet on ${node.name} (run there, as root; add --source with the agents' addresses)`, command: onNode };
    case "frontend-down":
      return frontendFix(r, frontend);
    default:
      return { description: `Read why the dial to ${node.name} failed`, command: `nodetunnel doctor explain "${r.message.replace(/"/g, "'")}"` };
  }
}

export function checkCluster(inputs: ClusterInputs): CheckResult {
  const { agents, dials } = inputs;
  const findings: CheckResult[] = [];
  const agentStatus: CheckStatus = agents.source === "unreachable" ? "indeterminate" : agents.ready === false || agents.count === 0 ? "problem" : "ok";
  findings.push({
    check: "cluster",
    id: "agents",
    status: agentStatus,
    summary: agents.source === "unreachable"
      ? `Could not read the server's health port (${agents.reason}): the agents are unknown.`
      : agents.ready === false || agents.count === 0
        ? "The server has no connected agent: every dial fails with No agent available."
        : `The server has ${agents.count ?? "at least one"} connected agent${agents.count === 1 ? "" : "s"}${agents.agents.length > 0 ? `: ${agents.agents.map((a) => a.agentId).join(", ")}` : ""}.`,
    fixes: [],
    assumptions: [
      ...(agents.source === "metrics" ? ["Agents counted from /metrics (ready_backend_connections); the admin port's /api/snapshot would name them."] : []),
      ...(agents.adminReason === undefined ? [] : [`The admin port could not be read: ${agents.adminReason}.`]),
    ],
    agents: agents.agents,
  });
  for (const { node, result } of dials) {
    const fix = fixFor(node, result, inputs.agentEndpoint, inputs.frontend);
    findings.push({
      check: "cluster",
      id: "dial",
      node: node.name,
      target: result.target,
      outcome: result.outcome,
      httpStatus: result.status,
      response: result.message,
      elapsedMs: result.elapsedMs,
      status: result.outcome === "ok" ? "ok" : "problem",
      summary: `${node.name} (${result.target}): ${meaning[result.outcome]}${result.outcome === "ok" ? "" : `: ${result.message}`}.`,
      fixes: fix ? [fix] : [],
      assumptions: [],
    });
  }
  const failed = dials.filter((d) => d.result.outcome !== "ok");
  const status: CheckStatus = failed.length > 0 || agentStatus === "problem" ? "problem" : agentStatus;
  const byOutcome = new Map<DialOutcome, string[]>();
  for (const d of failed) byOutcome.set(d.result.outcome, [...(byOutcome.get(d.result.outcome) ?? []), d.node.name]);
  const summary = failed.length === 0
    ? dials.length === 0 ? findings[0]!.summary : `All ${dials.length} nodes answered through the tunnel.`
    : `${dials.length - failed.length} of ${dials.length} nodes answer through the tunnel; ${[...byOutcome].map(([o, names]) => `${o}: ${names.join(", ")}`).join("; ")}.`;
  return {
    check: "cluster",
    status,
    summary,
    fixes: findings.flatMap((f) => (f.status === "problem" ? f.fixes : [])),
    assumptions: [],
    findings,
    details: dials.length === 0 ? [] : textTable(
      ["NODE", "TARGET", "OUTCOME", "HTTP", "ELAPSED", "RESPONSE"],
      dials.map(({ node, result }) => [node.name, result.target, result.outcome, result.status === null ? "-" : String(result.status), `${result.elapsedMs} ms`, result.message.slice(0, 100)]),
    ),
  };
}
