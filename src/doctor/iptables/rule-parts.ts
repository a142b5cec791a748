// Pieces both parsers share: numbers, port lists, marks and the meaning of target names.
import ipaddr from "ipaddr.js";
import type { Condition, MarkUpdate, PortRange, Target } from "./model.js";
import { markOperation, parseUint32 } from "../mark-update.js";
import { portNumberOf } from "./services.js";

const FULL_MASK = 0xffffffff;

/** `v` or `v/m` as the mark match takes it (mask defaults to all ones). */
export function parseMarkMask(text: string): { value: number; mask: number } | undefined {
  const [v, m] = text.split("/");
  const value = parseUint32(v ?? "");
  const mask = m === undefined ? FULL_MASK : parseUint32(m);
  return value === undefined || mask === undefined ? undefined : { value, mask };
}

// Every MARK/CONNMARK form iptables knows reduces to `(old & and) ^ xor` (xt_mark's xset);
// the save form always prints `--set-xmark v/m`, meaning and = ~m, xor = v.
export function markUpdateOf(op: string, text: string): MarkUpdate | undefined {
  const parsed = parseMarkMask(text);
  if (!parsed) return undefined;
  const { value, mask } = parsed;
  const u = (and: number, xor: number): MarkUpdate => ({ and: and >>> 0, xor: xor >>> 0 });
  switch (op) {
    case "xset":
      return u(~mask, value);
    case "set":
      // --set-mark v/m zeroes the mask bits, then ORs v: the same as xset v/(m|v).
      return u(~(mask | value), value);
    default:
      return markOperation(op, value); // --or-mark, --and-mark, --xor-mark v: the mask does not apply
  }
}

/** `N`, `N:M`, `:M`, `N:` (ports may be service names in `-L` output). */
export function parsePortRange(text: string): PortRange | undefined {
  const parts = text.split(":");
  if (parts.length === 1) {
    const port = portNumberOf(parts[0]!);
    return port === undefined ? undefined : [port, port];
  }
  if (parts.length !== 2) return undefined;
  const lo = parts[0] === "" ? 0 : portNumberOf(parts[0]!);
  const hi = parts[1] === "" ? 65535 : portNumberOf(parts[1]!);
  return lo === undefined || hi === undefined ? undefined : [lo, hi];
}

export function parsePortList(text: string): PortRange[] | undefined {
  const ranges: PortRange[] = [];
  for (const item of text.split(",")) {
    const range = parsePortRange(item);
    if (!range) return undefined;
    ranges.push(range);
  }
  return ranges;
}

/**
 * Why `text` cannot be a port spec iptables would take (`N`, `N:M`, `:M`, `N:`, a service name,
 * comma lists for multiport), or undefined when it can — a service name this doctor does not know
 * may still be in the node's /etc/services, so that is left to portCondition (undecidable).
 * libxtables refuses a number past 65535 and a range whose start is past its end.
 */
export function portSpecError(text: string): string | undefined {
  for (const item of text.split(",")) {
    const parts = item.split(":");
    if (parts.length > 2) return `"${item}" has more than one ":"`;
    if (parts.length === 1 && parts[0] === "") return "a port is missing";
    const numbers: number[] = [];
    for (const part of parts) {
      if (part === "") continue;
      if (/^\d+$/.test(part)) {
        if (Number(part) > 65535) return `${part} is past 65535`;
        numbers.push(Number(part));
      } else if (!/^[a-z][\w.+-]*$/i.test(part)) {
        return `"${part}" is neither a number nor a service name`;
      } else {
        const port = portNumberOf(part);
        if (port !== undefined) numbers.push(port);
      }
    }
    if (parts.length === 2 && parts[0] !== "" && parts[1] !== "" && numbers.length === 2 && numbers[0]! > numbers[1]!) {
      return `the range ${item} starts past its end`;
    }
  }
  return undefined;
}

export function portCondition(field: "dport" | "sport" | "either", negate: boolean, text: string, what: string): Condition {
  const ranges = field === "either" || text.includes(",") ? parsePortList(text) : parsePortRange(text) && [parsePortRange(text)!];
  return ranges
    ? { kind: "port", field, negate, ranges }
    : { kind: "unknown", reason: `port "${text}" in ${what} is not a number or a service name this doctor knows` };
}

/** An address or CIDR as iptables prints it (`10.0.0.0/8`, `10.9.9.9`, `::1/128`). */
export function addressCondition(field: "source" | "destination", negate: boolean, text: string): Condition {
  const cidr = normaliseCidr(text);
  return cidr
    ? { kind: "address", field, negate, cidr }
    : { kind: "unknown", reason: `${field} "${text}" is a host name this doctor cannot resolve` };
}

export function normaliseCidr(text: string): string | undefined {
  try {
    if (text.includes("/")) {
      const [addr, bits] = text.split("/");
      // -L prints a non-contiguous mask as a dotted quad.
      if (bits !== undefined && bits.includes(".")) {
        const prefix = ipaddr.IPv4.parse(bits).prefixLengthFromSubnetMask();
        if (prefix === null) return undefined;
        return `${ipaddr.parse(addr!).toString()}/${prefix}`;
      }
      const [parsed, prefix] = ipaddr.parseCIDR(text);
      return `${parsed.toString()}/${prefix}`;
    }
    const parsed = ipaddr.parse(text);
    return `${parsed.toString()}/${parsed.kind() === "ipv4" ? 32 : 128}`;
  } catch {
    return undefined;
  }
}

// Every target name iptables-save can print besides a chain of the table: the built-in ones, the
// extensions of iptables-extensions(8) (iptables 1.8), older ones still found in dumps, and those
// of xtables-addons and Jool. In an iptables-save dump, which declares every chain of its table,
// any other name is invalid input (doctor-cli.md: exit 2): iptables-restore refuses it too.
const KNOWN_TARGETS = new Set([
  "ACCEPT", "DROP", "RETURN", "QUEUE",
  "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNMARK", "CONNSECMARK", "CT", "DNAT", "DNPT", "DSCP",
  "ECN", "HL", "HMARK", "IDLETIMER", "LED", "LOG", "MARK", "MASQUERADE", "NETMAP", "NFLOG", "NFQUEUE",
  "NOTRACK", "RATEEST", "REDIRECT", "REJECT", "SECMARK", "SET", "SNAT", "SNPT", "SYNPROXY", "TCPMSS",
  "TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TRACE", "TTL", "ULOG",
  "MIRROR", "SAME", "ROUTE", "IPV4OPTSSTRIP", "IMQ",
  "ACCOUNT", "CHAOS", "DELUDE", "DHCPMAC", "DNETMAP", "ECHO", "IPMARK", "LOGMARK", "PROTO", "RAWDNAT",
  "RAWSNAT", "STEAL", "SYSRQ", "TARPIT",
  "JOOL", "JOOL_SIIT",
]);

/** A target iptables knows without a chain of that name (ACCEPT, REJECT, an extension...). */
export const isKnownTarget = (name: string): boolean => KNOWN_TARGETS.has(name);

// Targets that never end the walk and change nothing a filter match reads (§4.3 "non-terminating").
const NON_TERMINATING = new Set([
  "LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "CLASSIFY", "DSCP", "TOS", "TTL", "HL", "TCPMSS",
  "TCPOPTSTRIP", "CHECKSUM", "SET", "IDLETIMER", "LED", "SECMARK", "CONNSECMARK", "RATEEST", "TEE", "NOTRACK", "CT",
]);

export const REJECT_DEFAULT = "icmp-port-unreachable";

/**
 * The target of a rule, from its name and options (`--reject-with`, `--set-xmark`...).
 * `chains` are the user chains of the table; `isGoto` for `-g`.
 */
export function targetOf(name: string | undefined, options: ReadonlyMap<string, string>, chains: ReadonlySet<string>, isGoto: boolean): Target {
  if (name === undefined || name === "") return { kind: "continue", name: "" };
  if (chains.has(name)) return { kind: "jump", chain: name, goto: isGoto };
  if (isGoto) return { kind: "unknown", name, reason: `chain ${name} is not in the input` };
  switch (name) {
    case "ACCEPT":
      return { kind: "accept" };
    case "DROP":
      return { kind: "drop" };
    case "RETURN":
      return { kind: "return" };
    case "REJECT":
      return { kind: "reject", rejectWith: options.get("reject-with") ?? REJECT_DEFAULT };
    case "MARK":
    case "CONNMARK": {
      const which = name === "MARK" ? "packet" : "connection";
      if (name === "CONNMARK" && (options.has("save-mark") || options.has("restore-mark"))) {
        const masks = ["nfmask", "ctmask", "mask"].map((k) => options.get(k)).filter((v) => v !== undefined);
        if (masks.some((m) => parseUint32(m!) !== FULL_MASK)) {
          return { kind: "mark", which: options.has("save-mark") ? "connection" : "packet", update: null };
        }
        return options.has("save-mark") ? { kind: "connmark-save" } : { kind: "connmark-restore" };
      }
      for (const [option, op] of [["set-xmark", "xset"], ["set-mark", "set"], ["or-mark", "or"], ["and-mark", "and"], ["xor-mark", "xor"]] as const) {
        const text = options.get(option);
        if (text !== undefined) return { kind: "mark", which, update: markUpdateOf(op, text) ?? null };
      }
      return { kind: "mark", which, update: null };
    }
  }
  if (NON_TERMINATING.has(name)) return { kind: "continue", name };
  if (/^[A-Z0-9_]+$/.test(name)) {
    return { kind: "unknown", name, reason: `target ${name} is an extension whose verdict this doctor does not know` };
  }
  return { kind: "unknown", name, reason: `chain ${name} is not in the input` };
}
