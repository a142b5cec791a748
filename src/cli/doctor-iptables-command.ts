// `nodetunnel doctor iptables` (doctor-cli.md `doctor iptables`).
import type { Command } from "commander";
import { checkIptables } from "../doctor/index.js";
import type { CliIo } from "./cli-io.js";
import { chainFlag, flowFlags, interfaceFlag, UsageError } from "./doctor-flags.js";
import { addFlowOptions, checkCommand } from "./doctor-run.js";

export function iptablesCommand(io: CliIo): Command {
  const cmd = checkCommand(io, "iptables", async (opts, _args, { inputs }) => {
    const flow = flowFlags(opts);
    const inInterface = interfaceFlag("--in-interface", opts.inInterface as string);
    const chain = chainFlag("--chain", opts.chain as string);
    if (typeof opts.file !== "string") throw new UsageError("--file: required, the output of `iptables-save` or `iptables --list --line-numbers` (or - for standard input)");
    const { text } = await inputs.file("--file", opts.file);
    return checkIptables(text, { ...flow, inInterface, chain });
  })
    .description("simulate a new connection through the filter table's INPUT chain and name the rule that decides it")
    .option("--file <file>", "`iptables-save`, or `iptables --list --line-numbers` with or without -n/-v; - for stdin");
  return addFlowOptions(cmd, "optional")
    .option("--in-interface <name>", "interface the packet arrives on", "eth0")
    .option("--chain <name>", "chain to start in", "INPUT")
    .addHelpText("after", `
iptables-save shows everything the evaluator needs; \`iptables -L\` without -v hides interfaces,
so a rule that names one makes the answer indeterminate (exit 3) unless an earlier rule decides.

Examples:
  iptables-save > rules.txt
  nodetunnel doctor iptables --file rules.txt --source 10.224.0.7
  iptables --list --line-numbers -n -v | nodetunnel doctor iptables --file - --source 10.224.0.7 --destination 10.224.0.5
  az vmss run-command invoke ... --scripts "iptables-save" --query 'value[0].message' -o tsv \\
    | nodetunnel doctor iptables --file - --source 10.224.0.7 --output json

Exit codes: 0 allowed, 1 blocked, 2 bad usage or input, 3 indeterminate.`);
}
