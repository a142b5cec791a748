// Flag values of `nodetunnel doctor`, validated at the edge (doctor-cli.md): a bad value is a
// usage error, exit 2, with one line naming the flag, what it got and what it expected.
import { isIP } from "node:net";
import { parseHostPort, type EgressTarget } from "../doctor/index.js";

export class UsageError extends Error {
  override readonly name = "UsageError";
}

const got = (value: string) => JSON.stringify(value);

export function ipFlag(flag: string, value: string): string {
  const v = value.trim();
  if (isIP(v) === 0) throw new UsageError(`${flag}: expected an IP address, got ${got(value)}`);
  return v;
}

export function intFlag(flag: string, value: string, min: number, max: number, what = `a whole number ${min}–${max}`): number {
  const v = value.trim();
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${flag}: expected ${what}, got ${got(value)}`);
  return n;
}

export const portFlag = (flag: string, value: string): number => intFlag(flag, value, 1, 65535, "a port number 1–65535");

export function protocolFlag(flag: string, value: string): "tcp" | "udp" {
  const v = value.trim().toLowerCase();
  if (v !== "tcp" && v !== "udp") throw new UsageError(`${flag}: expected tcp or udp, got ${got(value)}`);
  return v;
}

// Linux interface names: at most 15 bytes, no slash or whitespace (IFNAMSIZ, dev_valid_name()).
// `+` is allowed because iptables uses it as a wildcard and users paste such names.
export function interfaceFlag(flag: string, value: string): string {
  if (!/^[^\s/:]{1,15}$/.test(value) || value === "." || value === "..") {
    throw new UsageError(`${flag}: expected a network interface name (up to 15 characters), got ${got(value)}`);
  }
  return value;
}

export function chainFlag(flag: string, value: string): string {
  if (!/^[^\s]{1,28}$/.test(value)) throw new UsageError(`${flag}: expected a chain name (up to 28 characters, no spaces), got ${got(value)}`);
  return value;
}

export function cidrFlag(flag: string, value: string): string {
  const [addr = "", bits, ...rest] = value.trim().split("/");
  const family = isIP(addr);
  const maxBits = family === 6 ? 128 : 32;
  if (family === 0 || rest.length > 0 || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > maxBits))) {
    throw new UsageError(`${flag}: expected an address range like 10.224.0.0/16, got ${got(value)}`);
  }
  return `${addr}/${bits ?? maxBits}`;
}

// `--asg NAME=IP[,IP]`, repeatable; the same name twice adds members.
export function asgFlags(flag: string, values: readonly string[]): Record<string, string[]> {
  const asgs: Record<string, string[]> = {};
  for (const value of values) {
    const m = /^([^=\s]+)=(.+)$/.exec(value.trim());
    if (!m) throw new UsageError(`${flag}: expected NAME=IP[,IP], got ${got(value)}`);
    const ips = m[2]!.split(",").map((ip) => ip.trim());
    for (const ip of ips) {
      if (isIP(ip) === 0) throw new UsageError(`${flag}: expected NAME=IP[,IP] with IP addresses, got ${got(value)}`);
    }
    asgs[m[1]!] = [...(asgs[m[1]!] ?? []), ...ips];
  }
  return asgs;
}

export function hostPortFlag(flag: string, value: string): EgressTarget {
  const target = parseHostPort(value);
  if (!target) throw new UsageError(`${flag}: expected HOST:PORT (IPv6 as [ADDR]:PORT), got ${got(value)}`);
  return target;
}

export function secondsFlag(flag: string, value: string, maxSeconds: number): number {
  const v = value.trim();
  const s = /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
  if (!(s > 0) || s > maxSeconds) throw new UsageError(`${flag}: expected a number of seconds above 0 and at most ${maxSeconds}, got ${got(value)}`);
  return s;
}

/** The argParser of a repeatable flag. */
export const collect = (value: string, previous: readonly string[] = []): string[] => [...previous, value];

export interface FlowFlags {
  readonly source: string;
  readonly destination: string | undefined;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
}

/** The flow every flow check takes (doctor-cli.md: --source, --destination, --port, --protocol). */
export function flowFlags(opts: Record<string, unknown>): FlowFlags {
  if (typeof opts.source !== "string") throw new UsageError("--source: required, the address the connection comes from (the agent's or API server's IP)");
  return {
    source: ipFlag("--source", opts.source),
    destination: typeof opts.destination === "string" ? ipFlag("--destination", opts.destination) : undefined,
    port: portFlag("--port", String(opts.port)),
    protocol: protocolFlag("--protocol", String(opts.protocol)),
  };
}
