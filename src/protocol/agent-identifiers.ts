// The `agentidentifiers` metadata value: a URL query such as
// `host=node-1&ipv4=10.224.0.5&ipv6=fd00::5&cidr=10.224.0.0/16&default-route=true`
// (shared/spec/konnectivity.md §1.3). The server ignores unknown keys ("fail open");
// the agent validates its own flag strictly.
import { isIPv4, isIPv6 } from "node:net";
import { TunnelError } from "./tunnel-error.js";

export interface AgentIdentifiers {
  readonly host: readonly string[];
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
  readonly cidr: readonly string[];
  readonly defaultRoute: boolean;
}

export const noIdentifiers: AgentIdentifiers = { host: [], ipv4: [], ipv6: [], cidr: [], defaultRoute: false };

const KNOWN = new Set(["host", "ipv4", "ipv6", "cidr", "default-route"]);
// Go's strconv.ParseBool, which upstream reads default-route with: case matters.
const GO_TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const GO_FALSE = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/**
 * What Go's url.ParseQuery, which upstream's server reads the value with, refuses: a `;` in a
 * pair (Go ≥ 1.17) or a `%` not followed by two hex digits. Its error text; null when it parses.
 */
export function goQueryError(text: string): string | null {
  for (const pair of text.split("&")) {
    if (pair.includes(";")) return "invalid semicolon separator in query";
    const bad = /%(?![0-9A-Fa-f]{2})/.exec(pair);
    if (bad) return `invalid URL escape ${JSON.stringify(pair.slice(bad.index, bad.index + 3))}`;
  }
  return null;
}

/**
 * `strict` (the agent's own flag) rejects unknown keys and bad values; the server is lenient,
 * apart from what Go's url.ParseQuery refuses (goQueryError; upstream refuses the Connect).
 */
export function parseAgentIdentifiers(text: string, options: { strict?: boolean } = {}): AgentIdentifiers {
  const queryError = options.strict ? goQueryError(text) : null;
  if (queryError !== null) throw new TunnelError("INVALID_OPTION", `agent identifiers: ${queryError}`);
  const params = new URLSearchParams(text);
  const out = { host: [] as string[], ipv4: [] as string[], ipv6: [] as string[], cidr: [] as string[], defaultRoute: false };
  let hasDefaultRoute = false;
  for (const [key, value] of params) {
    if (!KNOWN.has(key)) {
      if (options.strict) throw new TunnelError("INVALID_OPTION", `agent identifiers: unknown key "${key}" (known: ${[...KNOWN].join(", ")})`);
      continue;
    }
    if (key === "default-route") {
      // Upstream reads the first value only (ids[0]) and takes anything ParseBool refuses as false.
      if (options.strict && !GO_TRUE.has(value) && !GO_FALSE.has(value))
        throw new TunnelError("INVALID_OPTION", `agent identifiers: default-route must be true or false, not "${value}"`);
      if (options.strict && hasDefaultRoute) throw new TunnelError("INVALID_OPTION", "agent identifiers: default-route is given twice");
      if (!hasDefaultRoute) out.defaultRoute = GO_TRUE.has(value);
      hasDefaultRoute = true;
      continue;
    }
    if (options.strict && value === "") throw new TunnelError("INVALID_OPTION", `agent identifiers: empty value for "${key}"`);
    if (options.strict && key === "ipv4" && !isIPv4(value)) throw new TunnelError("INVALID_OPTION", `agent identifiers: "${value}" is not an IPv4 address`);
    if (options.strict && key === "ipv6" && !isIPv6(value)) throw new TunnelError("INVALID_OPTION", `agent identifiers: "${value}" is not an IPv6 address`);
    out[key as "host" | "ipv4" | "ipv6" | "cidr"].push(key === "host" ? value.toLowerCase() : value);
  }
  return out;
}

/** Every value that destHost routing matches a dial's host against. */
export const hostIdentities = (ids: AgentIdentifiers): string[] => [...ids.ipv4, ...ids.ipv6, ...ids.host];

/** Splits `host:port` / `[v6]:port` as Go's net.SplitHostPort does; null when malformed. */
export function splitHostPort(address: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:[\]]*):(\d+)$/.exec(address);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { host: m[1]!, port };
}
