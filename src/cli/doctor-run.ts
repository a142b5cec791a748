// What every `nodetunnel doctor <check>` shares (doctor-cli.md, "Common rules"): `--output`,
// reading inputs (`-` is standard input), the exit codes, and one-line errors for exit 2 (with
// nothing on stdout in JSON mode but the JSON error object).
import { readFile } from "node:fs/promises";
import { Command, CommanderError, Option } from "commander";
import {
  DoctorInputError, exitCodeOf, renderErrorJson, renderErrorLine, renderJson, renderText,
  type CheckResult, type ReportError,
} from "../doctor/index.js";
import { useColor, type CliIo } from "./cli-io.js";
import { isHelpAskedFor, suggestForAssignedFlags } from "./commander-quirks.js";
import { UsageError } from "./doctor-flags.js";

export type OutputFormat = "text" | "json";

export interface InputFile { readonly label: string; readonly text: string }

/** Inputs of one run; remembers what was read so an input error can name its file. */
export class DoctorInputs {
  readonly read: string[] = [];
  #stdinUsedBy: string | undefined;

  constructor(private readonly io: CliIo) {}

  async file(flag: string, path: string): Promise<InputFile> {
    if (path === "-") {
      if (this.#stdinUsedBy !== undefined) throw new UsageError(`${flag}: standard input is already read by ${this.#stdinUsedBy}`);
      this.#stdinUsedBy = flag;
      const label = "<stdin>";
      this.read.push(label);
      return { label, text: await readStream(this.io.stdin) };
    }
    this.read.push(path);
    try {
      return { label: path, text: await readFile(path, "utf8") };
    } catch (err) {
      throw new InputFileError(path, readErrorText(err));
    }
  }
}

/** A file that could not be read at all (exit 2, naming the file). */
export class InputFileError extends Error {
  override readonly name = "InputFileError";
  constructor(readonly file: string, message: string) {
    super(message);
  }
}

/** A DoctorInputError together with the file it was found in. */
export class InputErrorInFile extends Error {
  override readonly name = "InputErrorInFile";
  constructor(readonly file: string, readonly error: DoctorInputError) {
    super(error.message, { cause: error });
  }
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

function readErrorText(err: unknown): string {
  const code = typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
  const known: Record<string, string> = {
    ENOENT: "no such file",
    EACCES: "permission denied",
    EISDIR: "is a directory, expected a file",
    ENOTDIR: "a part of the path is not a directory",
  };
  return `cannot read the file: ${known[code] ?? (err instanceof Error ? err.message : String(err))}`;
}

export interface CheckRun {
  readonly inputs: DoctorInputs;
  readonly output: OutputFormat;
}

/**
 * A doctor subcommand with the common `--output` flag, usage errors as exit 2 on one line, and
 * an action that runs the check, prints the report and sets the exit code.
 */
export function checkCommand(
  io: CliIo,
  name: string,
  run: (opts: Record<string, unknown>, args: readonly string[], ctx: CheckRun) => Promise<CheckResult> | CheckResult,
  exitCode: (result: CheckResult) => number = (r) => exitCodeOf(r.status),
): Command {
  const cmd = new Command(name)
    .addOption(new Option("--output <format>", "report format: text or json").choices(["text", "json"]).default("text"));
  withUsageErrors(cmd, io);
  cmd.action(async (...actionArgs: unknown[]) => {
    const command = actionArgs.at(-1) as Command;
    const opts = command.opts();
    const output = opts.output === "json" ? "json" : "text";
    const inputs = new DoctorInputs(io);
    try {
      const result = await run(opts, command.args, { inputs, output });
      io.stdout.write(output === "json" ? renderJson(result) : renderText(result, { color: useColor(io) }));
      io.exit(exitCode(result));
    } catch (err) {
      reportError(io, `nodetunnel doctor ${name}`, output, errorReport(err, inputs));
    }
  });
  return cmd;
}

function errorReport(err: unknown, inputs: DoctorInputs): ReportError {
  if (err instanceof UsageError) return { message: err.message };
  if (err instanceof InputFileError) return { message: err.message, file: err.file };
  const input = err instanceof InputErrorInFile ? err.error : err instanceof DoctorInputError ? err : undefined;
  if (input) {
    // A check that read a single file found the problem in it; several files must say which.
    const file = err instanceof InputErrorInFile ? err.file : inputs.read.length === 1 ? inputs.read[0]! : null;
    return { message: input.message, file, line: input.line ?? null, expected: input.expected ?? null };
  }
  // A check that throws anything else did not understand its input: still a one-line exit 2,
  // never a stack trace that scripts would mistake for a verdict.
  const message = err instanceof Error ? err.message : String(err);
  return { message: `could not evaluate the input: ${message}`, file: inputs.read.length === 1 ? inputs.read[0]! : null };
}

export function reportError(io: CliIo, prefix: string, output: OutputFormat, error: ReportError): void {
  io.stderr.write(`${prefix}: ${renderErrorLine(error)}\n`);
  if (output === "json") io.stdout.write(renderErrorJson(error));
  io.exit(2);
}

/**
 * Commander's own usage errors (unknown option, missing value, bad choice) become exit 2 with one
 * line on stderr; `--help` exits 0. Commander must not end the process itself (only the CLI's
 * main does), so the override throws the CommanderError for main to swallow.
 */
export function withUsageErrors(cmd: Command, io: CliIo): Command {
  let lastError = "";
  cmd
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => {
        lastError = s.replace(/^error: /, "").replace(/\s*\n\s*/g, " ").trim();
        write(`${cmd.name() === "doctor" ? "nodetunnel doctor" : `nodetunnel doctor ${cmd.name()}`}: ${lastError}\n`);
      },
    })
    .showSuggestionAfterError(true)
    .exitOverride((err: CommanderError) => {
      const isHelp = isHelpAskedFor(err);
      if (!isHelp && cmd.opts().output === "json") io.stdout.write(renderErrorJson({ message: lastError || err.message }));
      io.exit(isHelp ? 0 : 2);
      throw err;
    });
  return suggestForAssignedFlags(cmd);
}

export { CommanderError };

/** The flags of every flow check, with the contract's defaults. */
export function addFlowOptions(cmd: Command, destination: "required" | "optional" | "none"): Command {
  cmd
    .option("--source <ip>", "the address the connection comes from (the konnectivity agent's or API server's IP)")
    .option("--port <n>", "destination port", "10250")
    .option("--protocol <tcp|udp>", "transport protocol", "tcp");
  if (destination === "required") cmd.option("--destination <ip>", "the node's address (required)");
  if (destination === "optional") cmd.option("--destination <ip>", "the node's address (optional; rules that name one need it)");
  return cmd;
}
