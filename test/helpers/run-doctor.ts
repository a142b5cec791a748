// `nodetunnel doctor` run in-process through CliIo, as main.ts runs it: the command added to the
// program, usage errors surfacing as CommanderError; what it wrote and the exit code it asked for.
import { Readable } from "node:stream";
import { Command, CommanderError } from "commander";
import type { CliIo } from "../../src/cli/cli-io.js";
import { doctorCommand } from "../../src/cli/doctor-command.js";

export interface RunOptions { readonly stdin?: string; readonly env?: Record<string, string>; readonly isTTY?: boolean }
export interface RunResult { readonly code: number | undefined; readonly stdout: string; readonly stderr: string }

export async function runDoctor(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  let stdout = "";
  let stderr = "";
  let code: number | undefined;
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s), isTTY: options.isTTY ?? false },
    stderr: { write: (s: string) => (stderr += s), isTTY: options.isTTY ?? false },
    stdin: Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]),
    env: options.env ?? {},
    exit: (c) => {
      code = c;
    },
  };
  // What the lead's main.ts does: add the command to the program, let usage errors surface as CommanderError.
  const program = new Command("nodetunnel").exitOverride();
  program.addCommand(doctorCommand(io));
  try {
    await program.parseAsync(["doctor", ...args], { from: "user" });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
  }
  return { code, stdout, stderr };
}
