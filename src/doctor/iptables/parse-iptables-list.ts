// `iptables --list` (`-L`, `-L INPUT`), with or without `--line-numbers`, `-n` and `-v`, into a
// Ruleset. The listing is lossy (troubleshooting.md §4.1): without `-v` interfaces are invisible,
// without `-n` addresses and ports are names. Whatever cannot be read back becomes an "unknown"
// condition, which makes the verdict indeterminate only if it matters.
import { DoctorInputError } from "../input-error.js";
import { parseUint32 } from "../mark-update.js";
import type { Chain, Condition, Rule, Ruleset, Table } from "./model.js";
import { incompatibleTablesOf, legacyWarningOf, parseTcpFlagList } from "./parse-iptables-save.js";
import { addressCondition, markUpdateOf, normaliseCidr, parseMarkMask, portCondition, targetOf } from "./rule-parts.js";
import { protocolNumberOf } from "./services.js";

// Names `-L` prints without `-n` for the well-known local addresses (glibc /etc/hosts and
// /etc/networks on Debian; other images print `localhost/8`). Anything else is a real DNS name.
const KNOWN_HOSTS: Record<string, string> = {
  loopback: "127.0.0.0",
  localhost: "127.0.0.1",
  "localhost.localdomain": "127.0.0.1",
  "ip6-localhost": "::1",
  "ip6-loopback": "::1",
};

const HIDDEN_INTERFACE = "the rule may match an interface (-i/-o), which iptables -L shows only with -v";

interface Header {
  readonly hasNumbers: boolean;
  readonly verbose: boolean;
}

interface PendingChain {
  readonly name: string;
  readonly policy: "ACCEPT" | "DROP" | null;
  /** The `Chain ...` header line, for a chain with a policy. */
  readonly header: string;
  readonly rows: { text: string; line: number; target: string; conditions: Condition[]; isGoto: boolean; options: Map<string, string> }[];
}

function fail(line: number, message: string, expected: string): never {
  throw new DoctorInputError(message, { line, expected });
}

export function isIptablesList(firstLine: string): boolean {
  return /^Chain \S+ \((policy \S+|\d+ references)/.test(firstLine);
}

function addressOf(field: "source" | "destination", text: string): Condition | null {
  const negate = text.startsWith("!");
  const value = negate ? text.slice(1) : text;
  if (value === "anywhere" || value === "0.0.0.0/0" || value === "::/0") {
    return negate ? { kind: "address", field, negate, cidr: field === "source" && value === "::/0" ? "::/0" : "0.0.0.0/0" } : null;
  }
  if (normaliseCidr(value)) return addressCondition(field, negate, value);
  const [name, prefix] = value.split("/");
  const known = KNOWN_HOSTS[name!.toLowerCase()];
  if (known !== undefined) return addressCondition(field, negate, prefix === undefined ? known : `${known}/${prefix}`);
  return { kind: "unknown", reason: `${field} "${value}" is a host name (listing without -n); re-run with -n to see the address` };
}

function interfaceOf(direction: "in" | "out", text: string): Condition | null {
  const negate = text.startsWith("!");
  const name = negate ? text.slice(1) : text;
  if (name === "*" || name === "any") return null;
  return { kind: "interface", direction, negate, name };
}

/** The text a target appends after the matches; stripped before the matches are read. */
function splitTargetText(target: string, rest: string): { matches: string; options: Map<string, string> } {
  const options = new Map<string, string>();
  let m: RegExpExecArray | null;
  if (target === "REJECT" && (m = /(?:^|\s)reject-with (\S+)\s*$/.exec(rest))) {
    options.set("reject-with", m[1]!);
    return { matches: rest.slice(0, m.index), options };
  }
  if (target === "MARK" && (m = /(?:^|\s)MARK (set|or|and|xor|xset) (\S+)\s*$/.exec(rest))) {
    options.set("set-xmark", m[2]!);
    options.set("op", m[1]!);
    return { matches: rest.slice(0, m.index), options };
  }
  if (target === "CONNMARK" && (m = /(?:^|\s)CONNMARK (set|xset|or|and|xor|save|restore)(.*)$/.exec(rest))) {
    if (m[1] === "save" || m[1] === "restore") {
      options.set(`${m[1]}-mark`, "");
      const masks = /(?:nfmask|mask) (\S+)(?: ctmask (\S+))?/.exec(m[2]!);
      if (masks) options.set("nfmask", masks[1]!.startsWith("~") ? "0" : masks[1]!);
      if (masks?.[2]) options.set("ctmask", masks[2].startsWith("~") ? "0" : masks[2]);
    } else {
      options.set("op", m[1]!);
      options.set("set-xmark", m[2]!.trim());
    }
    return { matches: rest.slice(0, m.index), options };
  }
  if (target === "LOG" && (m = /(?:^|\s)LOG (flags|level) /.exec(rest))) return { matches: rest.slice(0, m.index), options };
  if (target === "NFLOG" && (m = /(?:^|\s)nflog-/.exec(rest))) return { matches: rest.slice(0, m.index), options };
  return { matches: rest, options };
}

/** Reads the free-text match column (`tcp dpt:10250`, `ctstate NEW`, `/* comment *\/`...). */
export function parseMatchText(text: string): { conditions: Condition[]; isGoto: boolean } {
  const conditions: Condition[] = [];
  let isGoto = false;
  let s = text.trim();
  const take = (re: RegExp): RegExpExecArray | null => {
    const m = re.exec(s);
    if (!m || m.index !== 0) return null;
    s = s.slice(m[0].length).trim();
    return m;
  };
  let m: RegExpExecArray | null;
  while (s !== "") {
    if (take(/^\[goto\]/)) {
      isGoto = true;
    } else if (take(/^\/\* .*? \*\//)) {
      // a comment matches every packet
    } else if ((m = take(/^(! )?(ctstate|state) (\S+)/))) {
      conditions.push({ kind: "ctstate", negate: m[1] !== undefined, states: m[3]!.toUpperCase().split(",") });
    } else if ((m = take(/^(! )?ctproto (\S+)/))) {
      const protocol = protocolNumberOf(m[2]!);
      conditions.push(protocol === undefined ? { kind: "unknown", reason: `ctproto ${m[2]}` } : { kind: "protocol", negate: m[1] !== undefined, protocol });
    } else if ((m = take(/^(! )?ctorig(src|dst)port (\S+)/))) {
      conditions.push(portCondition(m[2] === "src" ? "sport" : "dport", m[1] !== undefined, m[3]!, "ctorigdstport"));
    } else if ((m = take(/^(! )?ctorig(src|dst) (\S+)/))) {
      conditions.push(addressCondition(m[2] === "src" ? "source" : "destination", m[1] !== undefined, m[3]!));
    } else if ((m = take(/^(tcp|udp|sctp|dccp|udplite)(?=\s)/))) {
      let sub: RegExpExecArray | null;
      while ((sub = take(/^(spts?|dpts?):(!)?(\S+)/)) || (sub = take(/^flags:(!)?([^/\s]+)\/(\S+)/))) {
        if (sub[0].startsWith("flags")) {
          const mask = /^0x/.test(sub[2]!) ? parseUint32(sub[2]!) : parseTcpFlagList(sub[2]!);
          const comparison = /^0x/.test(sub[3]!) ? parseUint32(sub[3]!) : parseTcpFlagList(sub[3]!);
          conditions.push(mask === undefined || comparison === undefined
            ? { kind: "unknown", reason: `tcp flags "${sub[0]}"` }
            : { kind: "tcp-flags", negate: sub[1] !== undefined, mask, comparison });
        } else {
          conditions.push(portCondition(sub[1]!.startsWith("d") ? "dport" : "sport", sub[2] !== undefined, sub[3]!, `${m[1]} ${sub[0]}`));
        }
      }
    } else if ((m = take(/^multiport (dports|sports|ports) +(!)?(\S+)/))) {
      const field = m[1] === "dports" ? "dport" : m[1] === "sports" ? "sport" : "either";
      conditions.push(portCondition(field, m[2] !== undefined, m[3]!, `multiport ${m[1]}`));
    } else if (take(/^ADDRTYPE match/)) {
      let sub: RegExpExecArray | null;
      while ((sub = take(/^(src|dst)-type (!)?(\S+)/)) || (sub = take(/^limit-(in|out)/))) {
        if (sub[0].startsWith("limit")) continue;
        conditions.push({ kind: "addrtype", side: sub[1] === "src" ? "source" : "destination", negate: sub[2] !== undefined, types: sub[3]!.toUpperCase().split(",") });
      }
    } else if ((m = take(/^(mark|connmark) match +(! ?)?(\S+)/))) {
      const parsed = parseMarkMask(m[3]!);
      conditions.push(parsed
        ? { kind: "mark", which: m[1] === "mark" ? "packet" : "connection", negate: m[2] !== undefined, ...parsed }
        : { kind: "unknown", reason: `${m[0]}` });
    } else if ((m = take(/^(! )?(source|destination) IP range (\S+?)-(\S+)/))) {
      conditions.push({ kind: "address-range", field: m[2] as "source" | "destination", negate: m[1] !== undefined, from: m[3]!, to: m[4]! });
    } else if ((m = take(/^PKTTYPE (!?)= (\S+)/))) {
      conditions.push({ kind: "pkttype", negate: m[1] === "!", type: m[2]!.toLowerCase() });
    } else if ((m = take(/^(icmp|icmptype|ipv6-icmp|icmpv6)\b.*$/))) {
      conditions.push({ kind: "protocol", negate: false, protocol: m[1]!.includes("6") ? 58 : 1 });
    } else {
      const reason = /^limit:/.test(s) ? "a rate limit (limit:) depends on the packet rate"
        : /^recent:/.test(s) ? "-m recent depends on which packets were seen before"
        : /match-set/.test(s) ? "-m set depends on the ipset's contents"
        : `"${s}" is a match this doctor does not evaluate`;
      conditions.push({ kind: "unknown", reason });
      s = "";
    }
  }
  return { conditions, isGoto };
}

export function parseIptablesList(text: string): Ruleset {
  const chains: PendingChain[] = [];
  let chain: PendingChain | undefined;
  let header: Header | undefined;
  let anyVerbose = false;
  let anyNumeric = true;
  // The first row that shows each family by an address (with -n, every row does: 0.0.0.0/0 or ::/0).
  const shown: { ipv4?: { line: number; text: string }; ipv6?: { line: number; text: string } } = {};
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    let m = /^Chain (\S+) \((?:policy (ACCEPT|DROP)(?: \d+ packets, \d+ bytes)?|\d+ references)\)$/.exec(trimmed);
    if (m) {
      chain = { name: m[1]!, policy: (m[2] as "ACCEPT" | "DROP" | undefined) ?? null, header: trimmed, rows: [] };
      chains.push(chain);
      header = undefined;
      return;
    }
    if (!chain) fail(line, `"${trimmed.slice(0, 60)}" before any "Chain" header`, "a line such as \"Chain INPUT (policy ACCEPT)\"");
    if (!header) {
      const words = trimmed.split(/\s+/);
      if (!words.includes("target") || !words.includes("source")) fail(line, "missing the column header", "a header such as \"num  target     prot opt source               destination\"");
      header = { hasNumbers: words[0] === "num", verbose: words.includes("pkts") };
      anyVerbose ||= header.verbose;
      return;
    }
    const tokens = [...raw.matchAll(/\S+/g)];
    let i = 0;
    if (header.hasNumbers) {
      m = /^\d+$/.exec(tokens[0]?.[0] ?? "");
      if (!m) fail(line, "a rule without its number", "a rule line starting with its number");
      if (Number(m[0]) !== chain.rows.length + 1) fail(line, `rule number ${m[0]} out of sequence`, `rule ${chain.rows.length + 1}`);
      i++;
    }
    if (header.verbose) i += 2;
    const isOpt = (t: string | undefined) => t === "--" || t === "-f" || t === "!f";
    // ip6tables before 1.8.9 prints the opt column blank (IPv6 has no -f), so the row reads
    // `1  ACCEPT  all      ::/0  ::/0`: then the protocol is the token after the target, or the
    // first one where the target is empty too.
    const isProt = (t: string | undefined) => t !== undefined && protocolNumberOf(t.replace(/^!/, "")) !== undefined;
    let target = "";
    let protAt: number;
    let opt = "--";
    if (isOpt(tokens[i + 2]?.[0])) {
      target = tokens[i]![0];
      protAt = i + 1;
      opt = tokens[i + 2]![0];
      i += 3;
    } else if (isOpt(tokens[i + 1]?.[0])) {
      protAt = i;
      opt = tokens[i + 1]![0];
      i += 2;
    } else if (isProt(tokens[i + 1]?.[0])) {
      target = tokens[i]![0];
      protAt = i + 1;
      i += 2;
    } else if (isProt(tokens[i]?.[0])) {
      protAt = i;
      i += 1;
    } else {
      fail(line, "cannot find the prot and opt columns", "target, prot, opt (\"--\", or blank in ip6tables before 1.8.9), source and destination columns");
    }
    const prot = tokens[protAt]![0];
    const conditions: Condition[] = [];
    const protNegated = prot.startsWith("!");
    const protName = protNegated ? prot.slice(1) : prot;
    const protocol = protocolNumberOf(protName);
    if (protocol === undefined) conditions.push({ kind: "unknown", reason: `protocol "${prot}" is not known` });
    else if (protocol !== 0 || protNegated) conditions.push({ kind: "protocol", negate: protNegated, protocol });
    if (opt !== "--") conditions.push({ kind: "fragment", negate: opt === "!f" });
    if (header.verbose) {
      for (const direction of ["in", "out"] as const) {
        const t = tokens[i++]?.[0];
        if (t === undefined) fail(line, `missing the ${direction} column`, "in and out interface columns (-v)");
        const c = interfaceOf(direction, t);
        if (c) conditions.push(c);
      }
    } else {
      conditions.push({ kind: "unknown", reason: HIDDEN_INTERFACE });
    }
    const source = tokens[i++]?.[0];
    const destination = tokens[i]?.[0];
    if (source === undefined || destination === undefined) fail(line, "missing the source or destination column", "source and destination columns");
    if (/:/.test(source + destination) && !/^[!]?[\w.-]+$/.test(source)) shown.ipv6 ??= { line, text: raw.trimEnd() };
    if (/^!?\d{1,3}(\.\d{1,3}){3}\b/.test(source) || /^!?\d{1,3}(\.\d{1,3}){3}\b/.test(destination)) shown.ipv4 ??= { line, text: raw.trimEnd() };
    if (/anywhere/.test(source + destination)) anyNumeric = false;
    for (const [field, value] of [["source", source], ["destination", destination]] as const) {
      const c = addressOf(field, value);
      if (c) conditions.push(c);
    }
    const next = tokens[i + 1];
    const rest = next === undefined ? "" : raw.slice(next.index).trimEnd();
    const { matches, options } = splitTargetText(target, rest);
    const parsed = parseMatchText(matches);
    conditions.push(...parsed.conditions);
    chain.rows.push({ text: raw.trimEnd(), line, target, conditions, isGoto: parsed.isGoto, options });
  });
  if (chains.length === 0) fail(1, "no chains found", "iptables --list output");
  const names = new Set(chains.filter((c) => c.policy === null).map((c) => c.name));
  const resolved = new Map<string, Chain>();
  for (const c of chains) {
    const rules: Rule[] = c.rows.map((row, index) => {
      let target = targetOf(row.target, row.options, names, row.isGoto);
      const op = row.options.get("op");
      if (target.kind === "mark" && op !== undefined) target = { ...target, update: markUpdateOf(op, row.options.get("set-xmark")!) ?? null };
      return { chain: c.name, number: index + 1, text: row.text, line: row.line, conditions: row.conditions, target };
    });
    resolved.set(c.name, { name: c.name, policy: c.policy, policyText: c.policy === null ? null : c.header, rules });
  }
  const notes: string[] = [
    "iptables -L lists one table (filter): raw NOTRACK and nat DNAT rules, which change what filter INPUT sees, are not in the input (iptables-save shows them).",
  ];
  if (!anyVerbose) notes.push("The listing has no -v, so interface matches are invisible; a rule the packet could match makes the verdict indeterminate (use iptables-save or iptables -L -n -v --line-numbers).");
  if (!anyNumeric) notes.push("The listing has no -n: service and host names were mapped back to numbers where this doctor knows them.");
  const table: Table = { name: "filter", chains: resolved };
  const family = shown.ipv6 ? "ipv6" : "ipv4";
  return { format: "iptables-list", family, familyShownAt: shown[family] ?? null, showsInterfaces: anyVerbose, tables: new Map([["filter", table]]), notes, legacyTables: legacyWarningOf(lines, family), incompatibleTables: incompatibleTablesOf(lines) };
}
