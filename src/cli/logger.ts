// Logs: pino JSON by default, a readable format on a TTY (pino-pretty, no colour with NO_COLOR),
// levels by --log-level or NODETUNNEL_LOG_LEVEL. Named tracers for deep debugging:
// NODETUNNEL_TRACE=packets,dials (or "all") turns their debug lines on whatever the level.
import { pino, type Logger } from "pino";
import type { CliIo } from "./cli-io.js";

export const tracerNames = ["packets", "dials", "flow", "transport"] as const;

export function createLogger(io: CliIo, options: { level?: string; component?: string } = {}): Logger {
  const level = options.level ?? io.env.NODETUNNEL_LOG_LEVEL ?? "info";
  const trace = (io.env.NODETUNNEL_TRACE ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const effective = trace.length > 0 && !["trace", "debug"].includes(level) ? "debug" : level;
  const pretty = Boolean(io.stderr.isTTY) && io.env.NODETUNNEL_LOG_FORMAT !== "json";
  const transport = pretty
    ? pino.transport({ target: "pino-pretty", options: { destination: 2, colorize: io.env.NO_COLOR === undefined, translateTime: "HH:MM:ss.l", ignore: "pid,hostname" } })
    : pino.destination({ dest: 2, sync: false });
  const log = pino({ level: effective, base: options.component ? { component: options.component } : undefined }, transport);
  if (trace.length > 0) log.debug({ tracers: trace }, "tracers on");
  return log;
}
