// Flag value parsers shared by the commands. Durations take Go's syntax (upstream's flags are
// Go durations: "1h", "30s", "1m30s", "500ms"); a bare number means seconds.
import { TunnelError } from "../protocol/index.js";

const unitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(flag: string, text: string): number {
  // As Go's time.ParseDuration: an optional sign, and numbers such as "1.5", ".5" or "1." before each unit.
  const signed = text.trim();
  if (signed.startsWith("-") && /[1-9]/.test(signed)) throw new TunnelError("INVALID_OPTION", `${flag}: "${text}" is negative`);
  const t = signed.replace(/^[+-]/, "");
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  if (t === "0") return 0;
  const re = /(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    total += Number(m[1]) * unitMs[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched !== t.length || t.length === 0) {
    throw new TunnelError("INVALID_OPTION", `${flag}: "${text}" is not a duration (like 30s, 5m, 1h, 1m30s, 500ms)`);
  }
  return Math.round(total);
}

export function parseInteger(flag: string, text: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(text.trim())) throw new TunnelError("INVALID_OPTION", `${flag}: "${text}" is not an integer`);
  const n = Number(text);
  if (n < min || n > max) throw new TunnelError("INVALID_OPTION", `${flag}: ${n} is out of range ${min}-${max}`);
  return n;
}

/** A boolean flag's value; `true` is a bare `--flag`, which means true (as Go's pflag). */
export function parseBoolean(flag: string, text: string | true): boolean {
  if (text === true) return true;
  const t = text.trim().toLowerCase();
  if (["true", "1", "t", "yes"].includes(t)) return true;
  if (["false", "0", "f", "no"].includes(t)) return false;
  throw new TunnelError("INVALID_OPTION", `${flag}: "${text}" is not true or false`);
}

/** Comma-separated and repeatable list flags collect into one array. */
export const collectList = (value: string, previous: string[] | undefined): string[] =>
  [...(previous ?? []), ...value.split(",").map((s) => s.trim()).filter((s) => s !== "")];

/**
 * --allowed-destinations: repeatable and comma-separated like collectList, except that a bare port
 * or port range after a CIDR:PORT entry extends that entry's ports, so `10.0.0.0/8:10250,10255`
 * is one entry (the form DestinationPolicy documents) and `10.0.0.0/8,192.168.0.0/16` two.
 */
export const collectDestinations = (value: string, previous: string[] | undefined): string[] => {
  const out = [...(previous ?? [])];
  const fresh = out.length;
  for (const part of value.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const last = out.length > fresh ? out[out.length - 1]! : undefined;
    if (/^\d+(-\d+)?$/.test(part) && last !== undefined && /:\d+(-\d+)?(,\d+(-\d+)?)*$/.test(last)) out[out.length - 1] = `${last},${part}`;
    else out.push(part);
  }
  return out;
};
