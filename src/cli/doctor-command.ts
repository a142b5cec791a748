// `nodetunnel doctor`: every check of doctor-cli.md as a subcommand. Each subcommand lives in its
// own doctor-<check>-command.ts; the shared flags, inputs, outputs and exit codes in doctor-run.ts.
import { Command } from "commander";
import type { CliIo } from "./cli-io.js";
import { clusterCommand } from "./doctor-cluster-command.js";
import { egressCommand } from "./doctor-egress-command.js";
import { explainCommand } from "./doctor-explain-command.js";
import { iptablesCommand } from "./doctor-iptables-command.js";
import { nftablesCommand } from "./doctor-nftables-command.js";
import { nodeCommand } from "./doctor-node-command.js";
import { nsgCommand } from "./doctor-nsg-command.js";
import { withUsageErrors } from "./doctor-run.js";
import { snatCommand } from "./doctor-snat-command.js";
import { ufwCommand } from "./doctor-ufw-command.js";

export function doctorCommand(io: CliIo): Command {
  const doctor = withUsageErrors(new Command("doctor"), io)
    .description("find out why a control-plane-to-node tunnel is broken: firewalls, NSGs, egress, SNAT")
    .addHelpText("after", `
Exit codes: 0 nothing wrong found, 1 a problem was found, 2 bad usage or invalid input,
3 indeterminate (the answer depends on something the input does not show).
Every check takes --output text|json; input files are named by flag and - means standard input.`);
  for (const make of [explainCommand, nsgCommand, iptablesCommand, ufwCommand, nftablesCommand, snatCommand, egressCommand, nodeCommand, clusterCommand]) doctor.addCommand(make(io));
  return doctor;
}
