// nodetunnel's command line: the only module that touches the process.
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { agentCommand } from "./agent-command.js";
import { processIo, type CliIo } from "./cli-io.js";
import { withCliErrors } from "./command-support.js";
import { demoCommand } from "./demo-command.js";
import { doctorCommand } from "./doctor-command.js";
import { labCommand } from "./lab-command.js";
import { serverCommand } from "./server-command.js";

const version = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

export function buildProgram(io: CliIo): Command {
  const program = withCliErrors(new Command("nodetunnel"), io, "nodetunnel")
    .description("A Konnectivity-compatible control-plane-to-node tunnel for Kubernetes, and a doctor for broken tunnels.")
    .version(version, "--version")
    .addHelpText("after", `
Examples:
  nodetunnel demo                                   # server, agents and kubelets on loopback
  nodetunnel server --uds-name=/run/konnectivity.sock --server-port=0 --cluster-cert=s.crt --cluster-key=s.key
  nodetunnel agent --proxy-server-host=cp.example --proxy-server-port=8132 --ca-cert=ca.crt
  nodetunnel doctor explain "dial tcp 10.224.0.5:10250: i/o timeout"

Exit codes: 0 success; 1 failure (doctor: a problem was found); 2 bad usage or input; 3 doctor: indeterminate.`);
  program.addCommand(serverCommand(io));
  program.addCommand(agentCommand(io));
  program.addCommand(demoCommand(io));
  program.addCommand(doctorCommand(io));
  program.addCommand(labCommand(io));
  return program;
}

export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<void> {
  try {
    await buildProgram(io).parseAsync([...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return; // already reported, exit code set
    io.stderr.write(`nodetunnel: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    io.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("bin/nodetunnel.js")) {
  await main(process.argv.slice(2));
}
