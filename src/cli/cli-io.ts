// The process seam: everything the CLI needs from the process, so commands can run in-process in tests.
import type { Readable } from "node:stream";

export interface CliIo {
  readonly stdout: { write(s: string): unknown; readonly isTTY?: boolean; readonly columns?: number };
  readonly stderr: { write(s: string): unknown; readonly isTTY?: boolean };
  readonly stdin: Readable;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Sets the exit code the process will end with; commands return after calling it. */
  exit(code: number): void;
  /** Runs `handler` on each SIGINT/SIGTERM; returns the remover. Absent in tests. */
  onSignal?(handler: (signal: "SIGINT" | "SIGTERM") => void): () => void;
}

/** Colour only on a TTY and never with NO_COLOR set (https://no-color.org). */
export const useColor = (io: CliIo): boolean => Boolean(io.stdout.isTTY) && io.env.NO_COLOR === undefined;

/** The terminal's width when stdout is one, else `COLUMNS` when set, else 100. */
export function terminalColumns(io: CliIo): number {
  if (io.stdout.isTTY && io.stdout.columns) return io.stdout.columns;
  const fromEnv = Number(io.env.COLUMNS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 100;
}

/** A reader that went away (`nodetunnel server --help | head`): end quietly, with the exit code set so far. */
function onStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code !== "EPIPE") throw err;
  process.exit();
}

export function processIo(): CliIo {
  if (!process.stdout.listeners("error").includes(onStdoutError)) process.stdout.on("error", onStdoutError);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    exit(code) {
      process.exitCode = code;
    },
    onSignal(handler) {
      const onInt = () => handler("SIGINT");
      const onTerm = () => handler("SIGTERM");
      process.on("SIGINT", onInt);
      process.on("SIGTERM", onTerm);
      return () => {
        process.off("SIGINT", onInt);
        process.off("SIGTERM", onTerm);
      };
    },
  };
}
