// What the long-running commands share: usage errors as exit 2 with one line, option errors
// (TunnelError INVALID_OPTION) likewise, files read with an error naming the flag.
import { readFileSync } from "node:fs";
import { Option, type Command, type CommanderError } from "commander";
import { TunnelError, isTunnelError } from "../protocol/index.js";
import { checkCertificatePem } from "../transport/index.js";
import { checkTlsFlagFiles } from "./check-tls-files.js";
import type { CliIo } from "./cli-io.js";
import { isHelpAskedFor, suggestForAssignedFlags } from "./commander-quirks.js";

export class UsageError extends Error {}

export function withCliErrors(cmd: Command, io: CliIo, prefix: string): Command {
  cmd
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`${prefix}: ${s.replace(/^error: /, "").trim()}\n`),
    })
    .showSuggestionAfterError(true)
    .exitOverride((err: CommanderError) => {
      io.exit(isHelpAskedFor(err) ? 0 : 2);
      throw err;
    });
  return suggestForAssignedFlags(cmd);
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
/**
 * klog's flags, which upstream's binaries register (klog.InitFlags): manifests set them
 * (`--logtostderr=true`, `--alsologtostderr`, `--log-file=...`, `--v=4`), so both commands accept
 * and ignore them, in klog's own spelling and with dashes. nodetunnel logs JSON to stderr
 * (`--log-level`).
 */
export const klogFlags: readonly string[] = [
  "v", "logtostderr", "alsologtostderr", "stderrthreshold", "vmodule",
  ...["log_dir", "log_file", "log_file_max_size", "log_backtrace_at", "add_dir_header", "skip_headers", "skip_log_headers", "one_output"]
    .flatMap((name) => [name, name.replaceAll("_", "-")]),
];

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

/** Flag names of a certificate, its key and a CA, and the paths given for them (undefined or "": not given). */
export interface TlsFlagPaths {
  readonly cert: readonly [flag: string, path: string | undefined];
  readonly key: readonly [flag: string, path: string | undefined];
  readonly ca: readonly [flag: string, path: string | undefined];
}

/** The files of a certificate, key and CA, read and checked to make a TLS context together (check-tls-files.ts). */
export function readTlsFlagFiles(paths: TlsFlagPaths): { cert?: Buffer; key?: Buffer; ca?: Buffer } {
  const cert = readCertificateFlagFile(...paths.cert);
  const key = readFlagFile(...paths.key);
  const ca = readCertificateFlagFile(...paths.ca);
  const file = ([flag, path]: readonly [string, string | undefined], pem: Buffer | undefined) => (pem ? { flag, path: path!, pem } : undefined);
  checkTlsFlagFiles({ cert: file(paths.cert, cert), key: file(paths.key, key), ca: file(paths.ca, ca) });
  return { cert, key, ca };
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
