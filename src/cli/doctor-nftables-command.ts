// `nodetunnel doctor nftables` (doctor-cli.md `doctor nftables`).
import type { Command } from "commander";
import { checkNftables } from "../doctor/index.js";
import type { CliIo } from "./cli-io.js";
import { flowFlags, interfaceFlag, UsageError } from "./doctor-flags.js";
import { addFlowOptions, checkCommand } from "./doctor-run.js";

export function nftablesCommand(io: CliIo): Command {
  const cmd = checkCommand(io, "nftables", async (opts, _args, { inputs }) => {
    const flow = flowFlags(opts);
    const inInterface = interfaceFlag("--in-interface", opts.inInterface as string);
    if (typeof opts.file !== "string") throw new UsageError("--file: required, the output of `nft -a list ruleset` or `nft -j list ruleset` (or - for standard input)");
    const { text } = await inputs.file("--file", opts.file);
    return checkNftables(text, { ...flow, inInterface, ...(opts.legacyRules === true ? { legacyRulesPresent: true } : {}) });
  })
    .description("walk every nftables base chain a new connection meets (ingress, prerouting, input), in hook and priority order")
    .option("--file <file>", "`nft list ruleset` (best with -a for handles) or `nft -j list ruleset`; - for stdin");
  return addFlowOptions(cmd, "optional")
    .option("--in-interface <name>", "interface the packet arrives on", "eth0")
    .option("--legacy-rules", "iptables-legacy rules are loaded too (iptables-legacy-save prints rules): warn that neither tool shows both, and that their nat rules may set ct status dnat")
    .addHelpText("after", `
An accept ends only its own base chain; drop and reject are final. The fix is an
\`nft insert rule ... accept\` for the flow; with handles in the input (nft -a), also an
\`nft delete rule ... handle N\` where the blocking rule is for the flow's port alone (never a
catch-all such as a bare drop or reject). In firewalld's tables, which firewalld rewrites on
reload, the fix is a firewall-cmd rich rule in the packet's zone instead. Give the whole ruleset
(nft list ruleset, not one table or chain): \`ct status dnat\` is decided from the dnat rules in it.

Examples:
  nft -a list ruleset > ruleset.txt
  nodetunnel doctor nftables --file ruleset.txt --source 10.224.0.7 --destination 10.224.0.5
  nft -j list ruleset | nodetunnel doctor nftables --file - --source 10.224.0.7 --output json

Exit codes: 0 allowed, 1 blocked, 2 bad usage or input, 3 indeterminate.`);
}
