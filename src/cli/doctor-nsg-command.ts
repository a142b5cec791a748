// `nodetunnel doctor nsg` (doctor-cli.md `doctor nsg`).
import type { Command } from "commander";
import { checkNsg, DoctorInputError, parseNsg, type NsgInputs } from "../doctor/index.js";
import type { CliIo } from "./cli-io.js";
import { asgFlags, cidrFlag, collect, flowFlags, portFlag, UsageError } from "./doctor-flags.js";
import { addFlowOptions, checkCommand, InputErrorInFile, type InputFile } from "./doctor-run.js";

// The four places an NSG can stand, in the order Azure evaluates them (troubleshooting.md §2.4).
const attachments = [
  { key: "sourceNic", flag: "--source-nic-nsg", option: "sourceNicNsg" },
  { key: "sourceSubnet", flag: "--source-subnet-nsg", option: "sourceSubnetNsg" },
  { key: "destSubnet", flag: "--dest-subnet-nsg", option: "destSubnetNsg" },
  { key: "destNic", flag: "--dest-nic-nsg", option: "destNicNsg" },
] as const;

export function nsgCommand(io: CliIo): Command {
  const cmd = checkCommand(io, "nsg", async (opts, _args, { inputs }) => {
    const flow = flowFlags(opts);
    if (flow.destination === undefined) throw new UsageError("--destination: required, the node's address (the kubelet's IP)");
    const sourcePort = opts.sourcePort === undefined ? undefined : portFlag("--source-port", opts.sourcePort as string);
    const vnets = ((opts.vnet as string[] | undefined) ?? []).map((v) => cidrFlag("--vnet", v));
    const asgs = asgFlags("--asg", (opts.asg as string[] | undefined) ?? []);
    const files: { -readonly [K in keyof NsgInputs]: InputFile } = {};
    for (const a of attachments) {
      const path = opts[a.option];
      if (typeof path !== "string") continue;
      const file = await inputs.file(a.flag, path);
      // Parsed here first, one file at a time, so an input error names the file it is in.
      try {
        parseNsg(file.text, file.label);
      } catch (err) {
        if (err instanceof DoctorInputError) throw new InputErrorInFile(file.label, err);
        throw err;
      }
      files[a.key] = file;
    }
    return checkNsg(files, {
      source: flow.source, destination: flow.destination, port: flow.port, protocol: flow.protocol,
      ...(sourcePort === undefined ? {} : { sourcePort }),
      vnets, asgs,
    });
  }).description("evaluate Azure network security groups for one flow, as Network Watcher's IP flow verify would");
  return addFlowOptions(cmd, "required")
    .option("--source-port <n>", "source port (default: an ephemeral port; the answer only depends on it where a rule does)")
    .option("--source-nic-nsg <file>", "NSG on the source's NIC (outbound), as `az network nsg show -o json` prints it; - for stdin")
    .option("--source-subnet-nsg <file>", "NSG on the source's subnet (outbound)")
    .option("--dest-subnet-nsg <file>", "NSG on the node's subnet (inbound)")
    .option("--dest-nic-nsg <file>", "NSG on the node's NIC (inbound)")
    .option("--vnet <cidr>", "address space behind the VirtualNetwork tag (repeatable; default: the RFC 1918 ranges, which hold no IPv6 space: give the VNet's IPv6 prefixes for an IPv6 flow)", collect)
    .option("--asg <name=ip[,ip]>", "application security group membership (repeatable)", collect)
    .addHelpText("after", `
Each NSG file is what \`az network nsg show -o json\` prints, or \`az network nsg rule list
--include-default -o json\`. A missing NSG allows all. Order: source NIC (out), source subnet (out),
destination subnet (in), destination NIC (in); the first deny decides.

Examples:
  az network nsg show -g MC_rg_aks_westeurope -n aks-agentpool-12345678-nsg -o json > nic-nsg.json
  az network nsg show -g my-rg -n aks-subnet-nsg -o json > subnet-nsg.json
  nodetunnel doctor nsg --source 10.224.0.7 --destination 10.224.0.5 \\
    --dest-subnet-nsg subnet-nsg.json --dest-nic-nsg nic-nsg.json --vnet 10.224.0.0/12
  nodetunnel doctor nsg --source 10.224.0.7 --destination 10.224.0.5 --dest-subnet-nsg subnet-nsg.json \\
    --asg asg-aks-nodes=10.224.0.6,10.224.0.7 --output json

Exit codes: 0 allowed, 1 blocked, 2 bad usage or input, 3 indeterminate.`);
}
