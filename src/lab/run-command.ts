// Runs the lab's system commands (ip, iptables, ufw, conntrack, curl) with a deadline, inside a
// namespace when asked. Nothing here uses a shell unless the caller passes `sh -c` itself.
import { execFile } from "node:child_process";

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Run inside this network namespace (`ip netns exec`). */
  readonly ns?: string;
  readonly timeoutMs?: number;
  /** Resolve with the exit code instead of rejecting when the command fails. */
  readonly allowFailure?: boolean;
  readonly env?: Readonly<Record<string, string>>;
}

export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(readonly argv: readonly string[], readonly result: CommandResult) {
    super(`${argv.join(" ")} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim().split("\n").slice(-3).join(" / ")}`);
  }
}

export function inNamespace(ns: string | undefined, argv: readonly string[]): string[] {
  return ns === undefined ? [...argv] : ["ip", "netns", "exec", ns, ...argv];
}

export function run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const full = inNamespace(options.ns, argv);
  return new Promise((resolve, reject) => {
    execFile(
      full[0]!,
      full.slice(1),
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 32 * 1024 * 1024, env: options.env ? { ...options.env, PATH: pathEnv } : { PATH: pathEnv } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
        const result = { code, stdout: String(stdout), stderr: String(stderr) + (err && typeof err.code !== "number" ? `${err.message}\n` : "") };
        if (code !== 0 && !options.allowFailure) reject(new CommandError(full, result));
        else resolve(result);
      },
    );
  });
}

// A fixed PATH: the lab runs system tools as root and must not pick up whatever is first on the caller's PATH.
export const pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
