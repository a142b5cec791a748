// `nodetunnel doctor ufw` (doctor-cli.md `doctor ufw`).
import type { Command } from "commander";
import { checkUfw } from "../doctor/index.js";
import type { CliIo } from "./cli-io.js";
import { flowFlags, interfaceFlag, UsageError } from "./doctor-flags.js";
import { addFlowOptions, checkCommand } from "./doctor-run.js";

export function ufwCommand(io: CliIo): Command {
  const cmd = checkCommand(io, "ufw", async (opts, _args, { inputs }) => {
    const flow = flowFlags(opts);
    const inInterface = interfaceFlag("--in-interface", opts.inInterface as string);
    if (typeof opts.file !== "string") throw new UsageError("--file: required, the output of `ufw status verbose` (or - for standard input)");
    const { text } = await inputs.file("--file", opts.file);
    return checkUfw(text, { ...flow, destination: flow.destination, inInterface });
  })
    .description("decide whether ufw lets a new connection in to the kubelet port, and name the rule")
    .option("--file <file>", "`ufw status`, `ufw status verbose` or `ufw status numbered` output; - for stdin");
  return addFlowOptions(cmd, "optional")
    .option("--in-interface <name>", "interface the packet arrives on", "eth0")
    .addHelpText("after", `
Plain \`ufw status\` does not show the default policy: deny (incoming), ufw's default, is assumed.
\`ufw status numbered\` gives rule numbers that \`ufw delete N\` accepts.

Examples:
  ufw status numbered > ufw.txt
  nodetunnel doctor ufw --file ufw.txt --source 10.224.0.7
  az vmss run-command invoke ... --scripts "ufw status verbose" --query 'value[0].message' -o tsv \\
    | nodetunnel doctor ufw --file - --source 10.224.0.7 --output json

Exit codes: 0 allowed, 1 blocked, 2 bad usage or input, 3 indeterminate.`);
}
