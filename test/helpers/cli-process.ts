// `nodetunnel` as a child process for tests that run the commands as users do: JSON logs on
// stderr, collected for assertions; the caller ends it (by its PID, through the handle).
import { spawn, type ChildProcess } from "node:child_process";

export const nodetunnelBin = new URL("../../bin/nodetunnel.js", import.meta.url).pathname;

export interface CliChild extends ChildProcess {
  /** Everything the process wrote on stderr so far. */
  stderrText(): string;
}

/** Starts `nodetunnel ARGS` with `env` over the test's environment, less any proxy variables of the machine's. */
export function runNodetunnel(args: readonly string[], env: Record<string, string> = {}): CliChild {
  const own = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(https?_proxy|no_proxy|all_proxy)$/i.test(k)));
  const child = spawn(process.execPath, [nodetunnelBin, ...args], {
    stdio: ["ignore", "ignore", "pipe"], env: { ...own, NODETUNNEL_LOG_FORMAT: "json", ...env },
  }) as CliChild;
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  child.stderrText = () => err;
  return child;
}

/** Polls `check` every 100 ms until it holds (a throw counts as not yet); fails naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await Promise.resolve().then(check).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
