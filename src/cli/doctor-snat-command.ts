// `nodetunnel doctor snat` (doctor-cli.md `doctor snat`).
import type { Command } from "commander";
import { checkSnat, DoctorInputError, parseConnections, parseSnatMetrics, type CheckResult } from "../doctor/index.js";
import type { CliIo } from "./cli-io.js";
import { cidrFlag, collect, intFlag, UsageError } from "./doctor-flags.js";
import { checkCommand, InputErrorInFile, type DoctorInputs } from "./doctor-run.js";

const maxCount = 100_000;

export function snatCommand(io: CliIo): Command {
  return checkCommand(io, "snat", async (opts, _args, { inputs }) => {
    if (opts.nodes === undefined) throw new UsageError("--nodes: required, the number of nodes that share the outbound IPs");
    const nodes = intFlag("--nodes", opts.nodes as string, 1, maxCount);
    const outboundIpsGiven = opts.outboundIps !== undefined;
    const outboundIps = outboundIpsGiven ? intFlag("--outbound-ips", opts.outboundIps as string, 1, 1000) : 1;
    const portsPerNode = opts.portsPerNode === undefined ? undefined : intFlag("--ports-per-node", opts.portsPerNode as string, 0, 64_000);
    const maxSurge = intFlag("--max-surge", opts.maxSurge as string, 0, maxCount);
    const maxNodes = opts.maxNodes === undefined ? undefined : intFlag("--max-nodes", opts.maxNodes as string, 1, maxCount);
    const vnets = ((opts.vnet as string[] | undefined) ?? []).map((v) => cidrFlag("--vnet", v));
    const metricsText = await parsedFile(inputs, "--metrics", opts.metrics, parseSnatMetrics);
    const connectionsText = await parsedFile(inputs, "--connections", opts.connections, parseConnections);
    const result: CheckResult = checkSnat({
      nodes, outboundIps, maxSurge, natGateway: opts.natGateway === true, vnets,
      ...(portsPerNode === undefined ? {} : { portsPerNode }),
      ...(maxNodes === undefined ? {} : { maxNodes }),
      ...(metricsText === undefined ? {} : { metricsText }),
      ...(connectionsText === undefined ? {} : { connectionsText }),
    });
    if (outboundIpsGiven) return result;
    return { ...result, assumptions: [...result.assumptions, "1 outbound IP, the AKS default (give --outbound-ips for more)"] };
  })
    .description("SNAT port arithmetic of an Azure Standard Load Balancer or NAT gateway, and connection churn")
    .option("--nodes <n>", "nodes behind the outbound IPs now")
    .option("--outbound-ips <n>", "outbound public IPs (default: 1, as AKS creates)")
    .option("--ports-per-node <n>", "allocated outbound ports per node (0 or absent: the default allocation table)")
    .option("--max-surge <n>", "extra nodes during an upgrade", "1")
    .option("--max-nodes <n>", "the cluster autoscaler's maximum")
    .option("--nat-gateway", "outbound through a NAT gateway instead of the load balancer")
    .option("--metrics <file>", "`az monitor metrics list` JSON for SnatConnectionCount, UsedSnatPorts, AllocatedSnatPorts; - for stdin")
    .option("--connections <file>", "`ss -tan` output from a node, or `conntrack -L` from the NAT device; - for stdin")
    .option("--vnet <cidr>", "with --connections: a VNet or peering range with public addresses, reached without SNAT (repeatable; private, shared, loopback and link-local ranges always are)", collect)
    .addHelpText("after", `
Examples:
  nodetunnel doctor snat --nodes 52 --outbound-ips 1
  nodetunnel doctor snat --nodes 30 --outbound-ips 2 --ports-per-node 4000 --max-surge 3 --max-nodes 40
  ss -tan | nodetunnel doctor snat --nodes 30 --connections - --output json
  az monitor metrics list --resource <lb-id> --metric SnatConnectionCount UsedSnatPorts AllocatedSnatPorts \\
    --interval PT1M -o json > snat.json && nodetunnel doctor snat --nodes 30 --metrics snat.json

Exit codes: 0 nothing wrong (or only a warning), 1 a problem, 2 bad usage or input.`);
}

// Each file is parsed here first so that an input error names the file it is in.
async function parsedFile(inputs: DoctorInputs, flag: string, path: unknown, parse: (text: string) => unknown): Promise<string | undefined> {
  if (typeof path !== "string") return undefined;
  const file = await inputs.file(flag, path);
  try {
    parse(file.text);
  } catch (err) {
    if (err instanceof DoctorInputError) throw new InputErrorInFile(file.label, err);
    throw err;
  }
  return file.text;
}
