// What the long-running commands share: usage errors as exit 2 with one line, option errors
// (TunnelError INVALID_OPTION) likewise, files read with an error naming the flag.
import { readFileSync } from "node:fs";
import { Option, type Command, type CommanderError } from "commander";
import { TunnelError, isTunnelError } from "../protocol/index.js";
import { checkCertificatePem } from "../transport/index.js";
import type { CliIo } from "./cli-io.js";

export class UsageError extends Error {}

export function withCliErrors(cmd: Command, io: CliIo, prefix: string): Command {
  return cmd
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`${prefix}: ${s.replace(/^error: /, "").trim()}\n`),
    })
    .showSuggestionAfterError(true)
    .exitOverride((err: CommanderError) => {
      const isHelp = err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help";
      io.exit(isHelp ? 0 : 2);
      throw err;
    });
}

/** An option whose value may also come from NODETUNNEL_<NAME> (issue: config by flags and environment). */
export function envOption(flags: string, description: string, defaultValue?: string, env?: string): Option {
  const long = /--([a-z0-9-]+)/.exec(flags)![1]!;
  const opt = new Option(flags, description).env(env ?? `NODETUNNEL_${long.toUpperCase().replace(/-/g, "_")}`);
  if (defaultValue !== undefined) opt.default(defaultValue);
  return opt;
}

/**
 * An upstream flag nodetunnel accepts and ignores. klog's `--v` also has its one-letter form
 * (`-v=4`, `-v 4`), as pflag gives every one-letter Go flag.
 */
export function ignoredUpstreamOption(name: string): Option {
  return new Option(name === "v" ? "-v, --v [value]" : `--${name} [value]`, "accepted for upstream compatibility; ignored").hideHelp();
}

export function readFlagFile(flag: string, path: string | undefined): Buffer | undefined {
  if (path === undefined || path === "") return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TunnelError("INVALID_OPTION", `${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** A certificate or CA file, checked as OpenSSL will read it (an empty CA file would refuse every peer). */
export function readCertificateFlagFile(flag: string, path: string | undefined): Buffer | undefined {
  const pem = readFlagFile(flag, path);
  if (pem !== undefined) checkCertificatePem(`${flag} ${path}`, pem);
  return pem;
}

/** Runs a command body: option errors → exit 2 with one line; other failures → exit 1. */
export async function runCommand(io: CliIo, prefix: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (isTunnelError(err, "INVALID_OPTION") || err instanceof UsageError) {
      io.stderr.write(`${prefix}: ${(err as Error).message}\n`);
      io.exit(2);
      return;
    }
    io.stderr.write(`${prefix}: ${err instanceof Error ? err.message : String(err)}\n`);
    io.exit(1);
  }
}
