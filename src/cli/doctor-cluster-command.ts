// `nodetunnel doctor cluster` (doctor-cli.md `doctor cluster`): run beside the server.
import { isIP } from "node:net";
import type { Command } from "commander";
import { checkCluster, dialThroughConnect, readServerAgents, type ClusterNode, type FrontendAddress } from "../doctor/cluster/index.js";
import { DoctorInputError, formatHostPort } from "../doctor/index.js";
import type { CliIo } from "./cli-io.js";
import { collect, hostPortFlag, ipFlag, portFlag, secondsFlag, UsageError } from "./doctor-flags.js";
import { checkCommand, InputErrorInFile, type InputFile } from "./doctor-run.js";

const nodeLine = /^\s*([^=\s]+)\s*[=\s]\s*(\S+)\s*$/;

function nodeFlag(flag: string, value: string): ClusterNode {
  const m = nodeLine.exec(value);
  if (!m) throw new UsageError(`${flag}: expected NAME=IP, got ${JSON.stringify(value)}`);
  return { name: m[1]!, ip: ipFlag(flag, m[2]!) };
}

// A bad line of --nodes-file is invalid input, not bad usage: the error names the file, the line
// and what was expected, in the JSON error object too (doctor-cli.md, exit 2).
function parseNodesFile(file: InputFile): ClusterNode[] {
  const nodes: ClusterNode[] = [];
  file.text.split("\n").forEach((line, i) => {
    const t = line.replace(/#.*/, "").trim();
    if (t === "") return;
    const bad = (message: string, expected: string) =>
      new InputErrorInFile(file.label, new DoctorInputError(`--nodes-file: ${message}`, { line: i + 1, expected }));
    const m = nodeLine.exec(t);
    if (!m) throw bad(`not a node: ${JSON.stringify(t)}`, "NAME=IP or NAME IP, one node per line");
    if (isIP(m[2]!) === 0) throw bad(`not an IP address for node ${m[1]!}: ${JSON.stringify(m[2]!)}`, "an IPv4 or IPv6 address after NAME=");
    nodes.push({ name: m[1]!, ip: m[2]! });
  });
  return nodes;
}

export function clusterCommand(io: CliIo): Command {
  return checkCommand(io, "cluster", async (opts, _args, ctx) => {
    const nodes = ((opts.node as string[] | undefined) ?? []).map((n) => nodeFlag("--node", n));
    if (typeof opts.nodesFile === "string") {
      nodes.push(...parseNodesFile(await ctx.inputs.file("--nodes-file", opts.nodesFile)));
    }
    const frontend: FrontendAddress = typeof opts.frontendUds === "string" ? { path: opts.frontendUds } : hostPortFlag("--frontend", String(opts.frontend));
    const health = hostPortFlag("--health", String(opts.health));
    const admin = opts.admin === "none" ? null : hostPortFlag("--admin", String(opts.admin));
    const port = portFlag("--port", String(opts.port));
    const timeoutMs = Math.round(secondsFlag("--timeout", String(opts.timeout), 120) * 1000);
    const say = (line: string) => io.stderr.write(`doctor cluster: ${line}\n`);
    const agents = await readServerAgents(health, admin, Math.min(timeoutMs, 5000), (url) => say(`reading the server's agents (${url})`));
    if (nodes.length > 0) say(`dialling ${nodes.length} node${nodes.length === 1 ? "" : "s"} through the tunnel at once (each up to ${timeoutMs / 1000} s)`);
    const dials = await Promise.all(nodes.map(async (node) => {
      const target = formatHostPort({ host: node.ip, port });
      const result = await dialThroughConnect(frontend, target, timeoutMs);
      say(`${node.name} ${target}: ${result.outcome} (${result.elapsedMs} ms)`);
      return { node, result };
    }));
    const agentEndpoint = typeof opts.agentEndpoint === "string" ? formatHostPort(hostPortFlag("--agent-endpoint", opts.agentEndpoint)) : null;
    return checkCluster({ agents, dials, agentEndpoint, frontend });
  })
    .description("beside the server: its connected agents, and a dial to every node's kubelet through the tunnel, as one table")
    .option("--node <name=ip>", "a node to dial (repeatable)", collect)
    .option("--nodes-file <file>", "nodes, one NAME=IP (or NAME IP) per line; - for stdin")
    .option("--frontend <host:port>", "the server's HTTP CONNECT frontend (TCP, no TLS)", "127.0.0.1:8131")
    .option("--frontend-uds <path>", "the server's HTTP CONNECT frontend on a Unix socket (instead of --frontend)")
    .option("--health <host:port>", "the server's health port (/readyz, /metrics)", "127.0.0.1:8092")
    .option("--admin <host:port|none>", "the server's admin port (/api/snapshot names the agents)", "127.0.0.1:8095")
    .option("--agent-endpoint <host:port>", "where agents reach the server (for the egress hint in fixes)")
    .option("--port <n>", "the kubelet port", "10250")
    .option("--timeout <seconds>", "deadline for each dial (above the server's backend dial timeout)", "15")
    .addHelpText("after", `
Each node's dial is classified: ok, no-agent (HTTP 500 No agent available), timeout (504 i/o timeout),
refused (502 connection refused), no-route, limit (503), frontend-down, error.

Example:
  nodetunnel doctor cluster --frontend 127.0.0.1:8131 --node node-1=10.224.0.4 --node node-2=10.224.0.5

Exit codes: 0 every node answered, 1 a node failed or no agent is connected, 2 bad usage, 3 the server could not be read.`);
}
