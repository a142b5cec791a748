// `nodetunnel doctor node` (doctor-cli.md `doctor node`): run on a node, as root.
import type { Command } from "commander";
import { checkNode, collectNodeState, defaultRouteAddress } from "../doctor/node/index.js";
import type { CliIo } from "./cli-io.js";
import { collect, hostPortFlag, interfaceFlag, intFlag, ipFlag, portFlag, secondsFlag } from "./doctor-flags.js";
import { checkCommand } from "./doctor-run.js";

export function nodeCommand(io: CliIo): Command {
  return checkCommand(io, "node", async (opts) => {
    const server = typeof opts.server === "string" ? hostPortFlag("--server", opts.server) : undefined;
    const agentHealth = opts.agentHealth === "none" ? null : hostPortFlag("--agent-health", String(opts.agentHealth));
    const timeoutMs = Math.round(secondsFlag("--timeout", String(opts.timeout), 60) * 1000);
    const port = portFlag("--port", String(opts.port));
    const snatPortsPerNode = opts.snatPorts === undefined ? undefined : intFlag("--snat-ports", String(opts.snatPorts), 1, 64000);
    const explicitSources = ((opts.source as string[] | undefined) ?? []).map((s) => ipFlag("--source", s));
    const route = opts.nodeIp === undefined || opts.inInterface === undefined ? await defaultRouteAddress() : null;
    const nodeIp = opts.nodeIp !== undefined ? ipFlag("--node-ip", String(opts.nodeIp)) : route?.ip ?? null;
    const inInterface = opts.inInterface !== undefined ? interfaceFlag("--in-interface", String(opts.inInterface)) : route?.iface ?? "eth0";
    const assumptions: string[] = [];
    if (opts.nodeIp === undefined) assumptions.push(nodeIp ? `This node's address is ${nodeIp} (the default route's interface ${inInterface}); give --node-ip otherwise.` : "This node's address is unknown (no default route): rules that name a destination address are judged without it.");
    const sources = explicitSources.length > 0 ? explicitSources : nodeIp ? [nodeIp] : ["10.0.0.1"];
    if (explicitSources.length === 0) assumptions.push(`Connections to port ${port} were assumed to come from ${sources[0]}; give --source with the address of each agent that dials this node (agents on other nodes, or the control plane's).`);
    if (!server) assumptions.push("No --server given: egress to the tunnel server was not probed.");
    const state = await collectNodeState({
      ...(server ? { server } : {}),
      ...(typeof opts.alpn === "string" ? { alpn: opts.alpn } : {}),
      agentHealth, timeoutMs,
      progress: (line) => io.stderr.write(`doctor node: ${line}\n`),
    });
    return checkNode(state, { sources, nodeIp, port, inInterface, assumptions, ...(snatPortsPerNode === undefined ? {} : { snatPortsPerNode }) });
  })
    .description("on a node (as root): firewall rules, kubelet listener, egress to the server, the local agent, connection churn")
    .option("--server <host:port>", "the tunnel server the agent dials (probed like doctor egress)")
    .option("--alpn <name>", "ALPN to offer when probing the server (konnectivity agents offer konnectivity)")
    .option("--source <ip>", "an address kubelet connections come from: the agents' (repeatable; default this node's)", collect)
    .option("--node-ip <ip>", "this node's address (default: the default route's interface address)")
    .option("--port <n>", "the kubelet port", "10250")
    .option("--in-interface <name>", "the interface kubelet connections arrive on (default: the default route's)")
    .option("--agent-health <host:port|none>", "the local agent's health endpoint", "127.0.0.1:8093")
    .option("--snat-ports <n>", "this node's SNAT port allocation, when known (scales the churn threshold)")
    .option("--timeout <seconds>", "deadline for each probe", "2")
    .addHelpText("after", `
Progress goes to stderr while the probes run; the report (one finding per check) to stdout.

Examples:
  nodetunnel doctor node --server 10.225.0.4:8132 --source 10.224.0.4
  az vmss run-command invoke ... --scripts "nodetunnel doctor node --output json --server myaks.hcp.westeurope.azmk8s.io:443"

Exit codes: 0 nothing wrong found, 1 a problem was found, 2 bad usage, 3 indeterminate.`);
}
