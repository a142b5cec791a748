// A long-running peer process (Python, Go) that reports what it saw as JSON lines on stdout.
import { spawn } from "node:child_process";

export interface JsonLinesChild {
  /** Every line read so far, parsed. */
  readonly lines: Array<Record<string, unknown>>;
  readonly stderr: () => string;
}

/** Starts `file args`; it is killed by its PID after the test. */
export function spawnJsonLines(t: { after(fn: () => unknown): void }, file: string, args: string[], env: NodeJS.ProcessEnv = {}): JsonLinesChild {
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  t.after(() => void child.kill("SIGKILL"));
  const lines: Array<Record<string, unknown>> = [];
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  let partial = "";
  child.stdout.on("data", (c: Buffer) => {
    partial += c.toString();
    for (let i = partial.indexOf("\n"); i >= 0; i = partial.indexOf("\n")) {
      lines.push(JSON.parse(partial.slice(0, i)) as Record<string, unknown>);
      partial = partial.slice(i + 1);
    }
  });
  return { lines, stderr: () => stderr };
}
