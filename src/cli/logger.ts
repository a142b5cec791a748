// Logs: pino JSON by default, a readable format on a TTY (pino-pretty, no colour with NO_COLOR),
// levels by --log-level or NODETUNNEL_LOG_LEVEL. Named tracers for deep debugging, as grpc-js's
// GRPC_TRACE: NODETUNNEL_TRACE=packets,dials (or "all") turns their debug lines on whatever the
// level, without turning on every other debug line.
//   packets  each packet on an agent stream (server: from agents; agent: to and from servers):
//            type, connectID/dialID, DATA size (never the payload)
//   dials    each dial's start (address, agent, strategy) and end (outcome, reason, ms); on the
//            agent, its dials to destinations
import { pino, type DestinationStream, type Logger } from "pino";
import type { AgentTracers } from "../agent/index.js";
import type { ServerTracers } from "../server/index.js";
import type { CliIo } from "./cli-io.js";

export const tracerNames = ["packets", "dials"] as const;
export type TracerName = (typeof tracerNames)[number];

export interface LoggerOptions {
  readonly level?: string;
  readonly component?: string;
  /** Where JSON lines go (tests); default: stderr, buffered. */
  readonly destination?: DestinationStream;
}

export function createLogger(io: CliIo, options: LoggerOptions = {}): Logger {
  const level = options.level ?? io.env.NODETUNNEL_LOG_LEVEL ?? "info";
  const pretty = options.destination === undefined && Boolean(io.stderr.isTTY) && io.env.NODETUNNEL_LOG_FORMAT !== "json";
  const destination = options.destination ?? (pretty
    ? pino.transport({ target: "pino-pretty", options: { destination: 2, colorize: io.env.NO_COLOR === undefined, translateTime: "HH:MM:ss.l", ignore: "pid,hostname" } })
    : pino.destination({ dest: 2, sync: false }));
  return pino({
    level,
    base: options.component ? { component: options.component } : undefined,
    // Defence in depth: nothing logs these today, and a future `log.info({ metadata })` must not leak a token.
    redact: { paths: ["authorization", "*.authorization", "headers.authorization", "metadata.authorization", "token", "*.token"], censor: "[redacted]" },
  }, destination);
}

/** The tracers NODETUNNEL_TRACE names; unknown names are reported once on `log`. */
export function enabledTracers(io: CliIo, log: Logger): ReadonlySet<TracerName> {
  const names = (io.env.NODETUNNEL_TRACE ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  const on = new Set<TracerName>();
  for (const name of names) {
    if (name === "all") tracerNames.forEach((t) => on.add(t));
    else if ((tracerNames as readonly string[]).includes(name)) on.add(name as TracerName);
    else log.warn({ tracer: name, known: tracerNames }, "NODETUNNEL_TRACE names an unknown tracer");
  }
  if (on.size > 0) log.info({ tracers: [...on] }, "tracers on");
  return on;
}

/** Child loggers at debug (pino lets a child log below its parent's level), undefined when off. */
function tracers(io: CliIo, log: Logger, component: "server" | "agent"): ServerTracers & AgentTracers {
  const on = enabledTracers(io, log);
  const tracer = (name: TracerName) => (on.has(name) ? log.child({ component, tracer: name }, { level: "debug" }) : undefined);
  return { packets: tracer("packets"), dials: tracer("dials") };
}

export const serverTracers = (io: CliIo, log: Logger): ServerTracers => tracers(io, log, "server");
export const agentTracers = (io: CliIo, log: Logger): AgentTracers => tracers(io, log, "agent");
