// nodetunnel's command line: the only module that touches the process.
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { processIo, type CliIo } from "./cli-io.js";
import { withCliErrors } from "./command-support.js";

const version = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

// Each command's module (and what it needs: the server, the agent, the doctor, the lab) is loaded
// only when that command runs, so a server or agent process does not carry the doctor, the lab and
// the demo (~7 MiB of RSS each process).
const commands = {
  server: async () => (await import("./server-command.js")).serverCommand,
  agent: async () => (await import("./agent-command.js")).agentCommand,
  demo: async () => (await import("./demo-command.js")).demoCommand,
  doctor: async () => (await import("./doctor-command.js")).doctorCommand,
  lab: async () => (await import("./lab-command.js")).labCommand,
} satisfies Record<string, () => Promise<(io: CliIo) => Command>>;

/** The program with every command, or with only `command` when it is one of them. */
export async function buildProgram(io: CliIo, command?: string): Promise<Command> {
  const program = withCliErrors(new Command("nodetunnel"), io, "nodetunnel")
    .description("A Konnectivity-compatible control-plane-to-node tunnel for Kubernetes, and a doctor for broken tunnels.")
    .version(version, "--version")
    .addHelpText("after", `
Examples:
  nodetunnel demo                                   # server, agents and kubelets on loopback
  nodetunnel server --uds-name=/run/konnectivity.sock --server-port=0 --cluster-cert=s.crt --cluster-key=s.key --cluster-ca-cert=ca.crt
  nodetunnel agent --proxy-server-host=cp.example --proxy-server-port=8132 --ca-cert=ca.crt --agent-cert=a.crt --agent-key=a.key
  nodetunnel doctor explain "dial tcp 10.224.0.5:10250: i/o timeout"

Exit codes: 0 success; 1 failure (doctor: a problem was found); 2 bad usage or input; 3 doctor: indeterminate.`);
  const names = command !== undefined && Object.hasOwn(commands, command) ? [command as keyof typeof commands] : (Object.keys(commands) as Array<keyof typeof commands>);
  for (const name of names) program.addCommand((await commands[name]())(io));
  return program;
}

export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<void> {
  try {
    const program = await buildProgram(io, argv.find((a) => !a.startsWith("-")));
    await program.parseAsync([...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return; // already reported, exit code set
    io.stderr.write(`nodetunnel: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    io.exit(1);
  }
}

// Run as a script itself (`tsx src/cli/main.ts ...`); bin/nodetunnel.js imports it and calls main().
if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv.slice(2));
}
