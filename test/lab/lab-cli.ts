// Runs `nodetunnel lab …` from this checkout, as a user would, and collects what it printed.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const repo = fileURLToPath(new URL("../../", import.meta.url));

export interface LabCliResult { readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly stdout: string; readonly stderr: string }

export interface LabCliRun {
  readonly child: ChildProcess;
  /** stderr so far. */
  stderr(): string;
  readonly done: Promise<LabCliResult>;
}

export function startLabCli(args: readonly string[]): LabCliRun {
  const child = spawn(process.execPath, ["bin/nodetunnel.js", "lab", ...args], {
    cwd: repo, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODETUNNEL_FROM_SOURCE: "1" },
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<LabCliResult>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, stderr: () => stderr, done };
}

export const labCli = (...args: string[]): Promise<LabCliResult> => startLabCli(args).done;
