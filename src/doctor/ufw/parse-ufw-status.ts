// Parses every form of `ufw status` (plain, `verbose`, `numbered`) into typed rules.
// Formats: troubleshooting.md §3.1, checked against real ufw 0.36.2 output
// (test/fixtures/doctor/ufw/generated/). A row is printed as
// "%-26s %-12s%-26s%s%s" (To, "ACTION DIR", From, attribs, comment): columns overflow instead of
// being truncated, so an overflowing To is followed by ONE space. Rows are therefore split on
// the action keyword, never on fixed widths or on "2+ spaces".
import ipaddr from "ipaddr.js";
import { DoctorInputError } from "../input-error.js";

export type UfwAction = "ALLOW" | "DENY" | "REJECT" | "LIMIT";
export type UfwDirection = "in" | "out" | "fwd";
export type UfwPolicy = "allow" | "deny" | "reject";
export type UfwFormat = "plain" | "verbose" | "numbered";

/** A port list as ufw prints it: `80,443`, `6000:6007`, each entry a closed range. */
export type PortRanges = readonly (readonly [number, number])[];

export interface UfwEndpoint {
  /** Address or CIDR; null for "Anywhere". */
  readonly address: string | null;
  /** null when any port. */
  readonly ports: PortRanges | null;
  /** `tcp`, `udp`, `esp`...; null when the rule has no protocol (tcp and udp both). */
  readonly protocol: string | null;
  /** Application profile name (`OpenSSH`), when the rule was written with `app`. */
  readonly app: string | null;
  readonly iface: string | null;
}

export interface UfwRule {
  /** 1-based line in the input. */
  readonly line: number;
  /** The number `ufw status numbered` printed, or null for plain/verbose input. */
  readonly shownNumber: number | null;
  readonly text: string;
  readonly action: UfwAction;
  readonly direction: UfwDirection;
  readonly v6: boolean;
  readonly to: UfwEndpoint;
  readonly from: UfwEndpoint;
  readonly log: "log" | "log-all" | null;
  readonly comment: string | null;
}

export interface UfwDefaults {
  readonly incoming: UfwPolicy;
  readonly outgoing: UfwPolicy;
  /** `disabled` when forwarding is off. */
  readonly routed: UfwPolicy | "disabled";
  /** The `Default: ...` line as the input showed it. */
  readonly text: string;
}

export interface UfwStatus {
  readonly active: boolean;
  readonly format: UfwFormat;
  readonly logging: string | null;
  /** Only `verbose` shows the defaults. */
  readonly defaults: UfwDefaults | null;
  readonly newProfiles: string | null;
  /** In the order listed. For `numbered` input that is ufw's rule order. */
  readonly rules: readonly UfwRule[];
}

const actionRe = /(?:^|\s)(ALLOW|DENY|REJECT|LIMIT)(?: (IN|OUT|FWD))?(?=\s|$)/;
const portSpecRe = /^(\d+(?::\d+)?(?:,\d+(?::\d+)?)*)(?:\/([a-z0-9]+))?$/;
const anyProtoRe = /^Anywhere\/([a-z0-9]+)$/;
// A protocol name starts with a letter, which tells "10.0.0.0/8/tcp" from a CIDR's "/8".
const addressProtoRe = /^(.+)\/([a-z][a-z0-9]*)$/;
const ipv4Re = /^\d{1,3}(?:\.\d{1,3}){3}(?:\/\d{1,2})?$/;
const ipv6Re = /^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*(?:\/\d{1,3})?$/;
const policyRe = /^(allow|deny|reject)$/;

export function parseUfwStatus(text: string): UfwStatus {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let active: boolean | null = null;
  let logging: string | null = null;
  let defaults: UfwDefaults | null = null;
  let newProfiles: string | null = null;
  let numbered = false;
  let sawHeader = false;
  const rules: UfwRule[] = [];

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!.replace(/\s+$/, "");
    const trimmed = raw.trim();
    if (trimmed === "") continue;
    if (active === null) {
      const m = /^Status: (active|inactive)$/.exec(trimmed);
      if (!m) throw new DoctorInputError(`not ufw status output: ${JSON.stringify(trimmed)}`, { line: lineNo, expected: '"Status: active" or "Status: inactive"' });
      active = m[1] === "active";
      continue;
    }
    if (trimmed.startsWith("Logging: ")) {
      logging = trimmed.slice("Logging: ".length);
      continue;
    }
    if (trimmed.startsWith("Default: ")) {
      defaults = parseDefaults(trimmed, lineNo);
      continue;
    }
    if (trimmed.startsWith("New profiles: ")) {
      newProfiles = trimmed.slice("New profiles: ".length);
      continue;
    }
    if (/^To\s+Action\s+From$/.test(trimmed)) {
      sawHeader = true;
      numbered = raw.startsWith(" ");
      continue;
    }
    if (/^--\s+------\s+----$/.test(trimmed)) continue;
    if (!active || !sawHeader) {
      throw new DoctorInputError(`unexpected line in ufw status output: ${JSON.stringify(trimmed)}`, {
        line: lineNo,
        expected: active ? 'a "Logging:", "Default:", "New profiles:" line or the "To  Action  From" header' : "nothing after \"Status: inactive\"",
      });
    }
    rules.push(parseRow(raw, lineNo, numbered));
  }
  if (active === null) throw new DoctorInputError("empty input: not ufw status output", { line: 1, expected: '"Status: active" or "Status: inactive"' });
  const format: UfwFormat = numbered || rules.some((r) => r.shownNumber !== null) ? "numbered" : defaults !== null || logging !== null ? "verbose" : "plain";
  return { active, format, logging, defaults, newProfiles, rules };
}

function parseDefaults(line: string, lineNo: number): UfwDefaults {
  const m = /^Default: (\w+) \(incoming\), (\w+) \(outgoing\), (\w+) \(routed\)$/.exec(line);
  const bad = () => new DoctorInputError(`cannot read the default policies: ${JSON.stringify(line)}`, {
    line: lineNo,
    expected: '"Default: <allow|deny|reject> (incoming), <...> (outgoing), <...|disabled> (routed)"',
  });
  if (!m || !policyRe.test(m[1]!) || !policyRe.test(m[2]!) || !(policyRe.test(m[3]!) || m[3] === "disabled")) throw bad();
  return { incoming: m[1] as UfwPolicy, outgoing: m[2] as UfwPolicy, routed: m[3] as UfwPolicy | "disabled", text: line };
}

function parseRow(raw: string, lineNo: number, numberedHeader: boolean): UfwRule {
  const expected = 'a rule row "<To>  <ALLOW|DENY|REJECT|LIMIT> [IN|OUT|FWD]  <From>"';
  let rest = raw.trim();
  let shownNumber: number | null = null;
  const num = /^\[\s*(\d+)\]\s/.exec(rest);
  if (num) {
    shownNumber = Number(num[1]);
    rest = rest.slice(num[0].length);
  } else if (numberedHeader) {
    throw new DoctorInputError(`rule row without its [N] number in numbered output: ${JSON.stringify(raw.trim())}`, { line: lineNo, expected });
  }
  const am = actionRe.exec(rest);
  if (!am || am.index === 0 && !/^\s/.test(rest)) throw new DoctorInputError(`no ufw action in row: ${JSON.stringify(raw.trim())}`, { line: lineNo, expected });
  const toText = rest.slice(0, am.index).trim();
  const action = am[1] as UfwAction;
  const direction = (am[2]?.toLowerCase() ?? "in") as UfwDirection;
  let after = rest.slice(am.index + am[0].length).trim();

  let comment: string | null = null;
  const hash = after.indexOf(" # ");
  if (hash >= 0) {
    comment = after.slice(hash + 3);
    after = after.slice(0, hash).trim();
  }
  let log: UfwRule["log"] = null;
  for (;;) {
    const attr = /\s*\((log|log-all|out)\)$/.exec(after);
    if (!attr) break;
    if (attr[1] !== "out") log = attr[1] as "log" | "log-all";
    after = after.slice(0, attr.index).trim();
  }
  if (toText === "" || after === "") throw new DoctorInputError(`rule row lacks a To or From column: ${JSON.stringify(raw.trim())}`, { line: lineNo, expected });
  const to = parseEndpoint(toText, lineNo);
  const from = parseEndpoint(after, lineNo);
  const v6 = to.v6 || from.v6 || isV6(to.endpoint.address) || isV6(from.endpoint.address);
  // A port spec's protocol may sit on either side (`from X port 53 proto udp` puts it on From).
  const protocol = to.endpoint.protocol ?? from.endpoint.protocol;
  return {
    line: lineNo,
    shownNumber,
    text: raw.trim(),
    action,
    direction,
    v6,
    to: { ...to.endpoint, protocol },
    from: { ...from.endpoint, protocol },
    log,
    comment,
  };
}

function isAddressOrCidr(text: string): boolean {
  if (!text.includes("/")) return ipaddr.IPv4.isValidFourPartDecimal(text) || ipaddr.IPv6.isValid(text);
  try {
    ipaddr.parseCIDR(text);
    return ipaddr.IPv4.isValidFourPartDecimal(text.split("/")[0]!) || text.includes(":");
  } catch {
    return false;
  }
}

function isV6(address: string | null): boolean {
  return address !== null && address.includes(":");
}

/** One To/From cell: `[addr] [ports[/proto]] [(app)] [(v6)] [on iface]`, or an app name, or `Anywhere`. */
function parseEndpoint(cell: string, lineNo: number): { endpoint: UfwEndpoint; v6: boolean } {
  let s = cell;
  let iface: string | null = null;
  let v6 = false;
  const on = /\s+on\s+(\S+)$/.exec(s);
  if (on) {
    iface = on[1]!;
    s = s.slice(0, on.index);
  }
  const v6m = /\s+\(v6\)$/.exec(s);
  if (v6m) {
    v6 = true;
    s = s.slice(0, v6m.index);
  }
  // `verbose` prints app rules as "22/tcp (OpenSSH)" or "22/tcp (OpenSSH (v6))".
  let app: string | null = null;
  const appm = /^(.*?\S)\s+\((.+?)(\s+\(v6\))?\)$/.exec(s);
  if (appm && portSpecRe.test(appm[1]!.split(/\s+/).at(-1)!)) {
    app = appm[2]!;
    if (appm[3]) v6 = true;
    s = appm[1]!;
  }
  const tokens = s.split(/\s+/);
  let address: string | null = null;
  let ports: PortRanges | null = null;
  let protocol: string | null = null;
  const bad = () => new DoctorInputError(`cannot read ufw address/port ${JSON.stringify(cell)}`, {
    line: lineNo,
    expected: '"Anywhere", an address or CIDR, a port spec like "10250/tcp", "80,443/tcp", "6000:6007/tcp", or an app profile name',
  });
  let k = 0;
  if (tokens[0] === "Anywhere") {
    k = 1;
  } else if (anyProtoRe.test(tokens[0]!)) {
    protocol = anyProtoRe.exec(tokens[0]!)![1]!;
    k = 1;
  } else if (ipv4Re.test(tokens[0]!) || (ipv6Re.test(tokens[0]!) && !portSpecRe.test(tokens[0]!))) {
    address = tokens[0]!;
    k = 1;
  } else if (addressProtoRe.test(tokens[0]!) && !portSpecRe.test(tokens[0]!)) {
    // An address with a protocol and no port: ufw appends "/<proto>" to the address itself
    // (`ufw deny from 10.0.0.0/8 proto tcp` shows "10.0.0.0/8/tcp"; seen with ufw 0.36.2).
    const m = addressProtoRe.exec(tokens[0]!)!;
    if (ipv4Re.test(m[1]!) || ipv6Re.test(m[1]!)) {
      address = m[1]!;
      protocol = m[2]!;
      k = 1;
    }
  }
  // The shape matched; the value must be an address too (300.1.1.1 or a /33 is a damaged input).
  if (address !== null && !isAddressOrCidr(address)) {
    throw new DoctorInputError(`${JSON.stringify(address)}${address === cell.trim() ? "" : ` in ${JSON.stringify(cell)}`} is not an address or CIDR`, {
      line: lineNo,
      expected: "an IPv4 or IPv6 address, or a CIDR such as 10.224.0.0/16",
    });
  }
  const remaining = tokens.slice(k);
  if (remaining.length === 1 && portSpecRe.test(remaining[0]!)) {
    const pm = portSpecRe.exec(remaining[0]!)!;
    ports = pm[1]!.split(",").map((part) => {
      const [lo, hi] = part.split(":").map(Number) as [number, number | undefined];
      if (lo > 65535 || (hi ?? lo) > 65535 || (hi ?? lo) < lo) throw bad();
      return [lo, hi ?? lo] as const;
    });
    protocol = pm[2] ?? null;
  } else if (remaining.length > 0) {
    if (app !== null || k === 1 && address === null) throw bad();
    // Plain/numbered output shows an app rule by its profile name only (names may have spaces).
    const name = remaining.join(" ");
    if (!/^[A-Za-z0-9][\w .+-]*$/.test(name)) throw bad();
    app = name;
  }
  return { endpoint: { address, ports, protocol, app, iface }, v6 };
}
