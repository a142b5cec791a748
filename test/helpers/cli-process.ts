// `nodetunnel` as a child process for tests that run the commands as users do: JSON logs on
// stderr, collected for assertions; the caller ends it (by its PID, through the handle).
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import type { PemPair, Pki } from "../../src/transport/index.js";

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

export interface ProcessBed {
  /** A temporary directory for certificates and sockets; `file(name)` is a path in it. */
  readonly dir: string;
  file(name: string): string;
  /** An echo server on loopback: the destination to tunnel to. */
  readonly echoPort: number;
  /** runNodetunnel(), the process killed when the test ends. */
  run(args: readonly string[], env?: Record<string, string>): CliChild;
}

/**
 * What a test of the commands as processes needs: a temporary directory, an echo destination, and
 * processes that end with the test. The cleanup is registered before anything can fail or hang.
 */
export async function startProcessBed(t: Pick<TestContext, "after">, prefix: string): Promise<ProcessBed> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const children: CliChild[] = [];
  const echo = net.createServer((s) => s.on("error", () => {}).pipe(s)).listen(0, "127.0.0.1");
  t.after(() => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    echo.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await once(echo, "listening");
  return {
    dir,
    file: (name) => join(dir, name),
    echoPort: (echo.address() as net.AddressInfo).port,
    run: (args, env) => {
      const child = runNodetunnel(args, env);
      children.push(child);
      return child;
    },
  };
}

/** The files the commands read: ca.crt, server.crt and server.key from `pki`, agent.crt and agent.key from `agent`. */
export function writeTlsFiles(file: (name: string) => string, pki: Pki, agent: PemPair): void {
  writeFileSync(file("ca.crt"), pki.ca);
  writeFileSync(file("server.crt"), pki.server.cert);
  writeFileSync(file("server.key"), pki.server.key);
  writeFileSync(file("agent.crt"), agent.cert);
  writeFileSync(file("agent.key"), agent.key);
}
