// `iptables-save` / `ip6tables-save` (with or without `-c`), and `iptables -S`, into a Ruleset.
// The save form is lossless (troubleshooting.md §4.1), so every match is visible; what the
// doctor cannot evaluate becomes an "unknown" condition, never a guess.
import ipaddr from "ipaddr.js";
import { DoctorInputError } from "../input-error.js";
import type { Chain, Condition, IncompatibleTable, Rule, Ruleset, Table } from "./model.js";
import { BUILTIN_CHAINS } from "./model.js";
import { addressCondition, isKnownTarget, parseMarkMask, portCondition as portConditionOf, portSpecError, targetOf } from "./rule-parts.js";
import { protocolNumberOf } from "./services.js";
import { tokenizeShell } from "./tokenize-shell.js";
import type { ShellToken } from "./tokenize-shell.js";

interface PendingRule {
  readonly chain: string;
  readonly text: string;
  readonly line: number;
  readonly conditions: Condition[];
  readonly targetName: string | undefined;
  readonly isGoto: boolean;
  readonly targetOptions: Map<string, string>;
}

interface PendingTable {
  readonly name: string;
  readonly chains: Map<string, { policy: "ACCEPT" | "DROP" | null; policyText: string | null; rules: PendingRule[] }>;
}

// Matches whose outcome depends on state the input does not show (§4.3: rate, ipset contents...).
const UNDECIDABLE_MODULES: Record<string, string> = {
  limit: "a rate limit (-m limit) depends on the packet rate",
  hashlimit: "a rate limit (-m hashlimit) depends on the packet rate",
  recent: "-m recent depends on which packets were seen before",
  set: "-m set depends on the ipset's contents, which iptables-save does not show",
  connlimit: "-m connlimit depends on how many connections are open",
  connbytes: "-m connbytes depends on the connection's traffic",
  statistic: "-m statistic matches a random or every-nth packet",
  time: "-m time depends on the clock",
  string: "-m string depends on the packet's payload",
  u32: "-m u32 depends on the packet's bytes",
  length: "-m length depends on the SYN's size",
  ttl: "-m ttl depends on the sender's TTL",
  hl: "-m hl depends on the sender's hop limit",
  mac: "-m mac depends on the sender's MAC address",
  physdev: "-m physdev depends on the bridge port",
  socket: "-m socket depends on local sockets",
  cgroup: "-m cgroup depends on the local process",
  owner: "-m owner depends on the local process",
  policy: "-m policy depends on IPsec state",
  rpfilter: "-m rpfilter depends on the routing table",
  bpf: "-m bpf runs a BPF program",
  devgroup: "-m devgroup depends on the interface's group",
  helper: "-m helper depends on conntrack helpers",
  tcpmss: "-m tcpmss depends on the SYN's MSS option",
  dscp: "-m dscp depends on the packet's DSCP",
  tos: "-m tos depends on the packet's TOS",
  ecn: "-m ecn depends on the packet's ECN bits",
  ipvs: "-m ipvs depends on IPVS state",
  cluster: "-m cluster depends on the cluster hash",
  quota: "-m quota depends on traffic seen so far",
  nfacct: "-m nfacct depends on traffic seen so far",
  realm: "-m realm depends on the routing table",
};

// The options of the modules matchOption reads. iptables gives an option to the newest loaded
// match that knows it, and where none does, loads the match of the rule's protocol (`-p tcp`) and
// gives it that one (libxtables' merged option table; iptables' command_default → load_proto):
// `-m conntrack --ctstate NEW -p tcp --dport 22` is tcp's --dport, as in the canonical order.
const PORT_OPTIONS = ["dport", "destination-port", "sport", "source-port"];
const MODULE_OPTIONS: Record<string, ReadonlySet<string>> = {
  tcp: new Set([...PORT_OPTIONS, "syn", "tcp-flags", "tcp-option"]),
  udp: new Set(PORT_OPTIONS),
  udplite: new Set(PORT_OPTIONS),
  sctp: new Set([...PORT_OPTIONS, "chunk-types"]),
  dccp: new Set([...PORT_OPTIONS, "dccp-types", "dccp-option"]),
  multiport: new Set(["dports", "destination-ports", "sports", "source-ports", "ports"]),
  conntrack: new Set(["ctstate", "ctproto", "ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst", "ctorigsrcport", "ctorigdstport", "ctreplsrcport", "ctrepldstport", "ctstatus", "ctexpire", "ctdir"]),
  state: new Set(["state"]),
  comment: new Set(["comment"]),
  addrtype: new Set(["src-type", "dst-type", "limit-iface-in", "limit-iface-out"]),
  mark: new Set(["mark"]),
  connmark: new Set(["mark"]),
  iprange: new Set(["src-range", "dst-range"]),
  pkttype: new Set(["pkt-type"]),
  icmp: new Set(["icmp-type"]),
  icmp6: new Set(["icmpv6-type"]),
};

/**
 * The module an option belongs to: the newest loaded one that knows it, else the protocol's
 * module where that knows it (iptables loads it then), else the current module (one whose options
 * this doctor does not list, such as -m limit, keeps its own). undefined: no -m and no -p module.
 */
function ownerOf(key: string, loaded: readonly string[], protocol: string | undefined): string | undefined {
  const current = loaded[loaded.length - 1];
  const owner = [...loaded].reverse().find((m) => MODULE_OPTIONS[m]?.has(key));
  if (owner !== undefined) return owner;
  if (protocol !== undefined && MODULE_OPTIONS[protocol]?.has(key)) return protocol;
  return current;
}

const TCP_FLAGS: Record<string, number> = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80, ALL: 0xff, NONE: 0 };

export function parseTcpFlagList(text: string): number | undefined {
  let bits = 0;
  for (const name of text.split(",")) {
    const bit = TCP_FLAGS[name.toUpperCase()];
    if (bit === undefined) return undefined;
    bits |= bit;
  }
  return bits;
}

function fail(line: number, message: string, expected: string): never {
  throw new DoctorInputError(message, { line, expected });
}

// An address iptables-restore would refuse (`10.0.0.0/33`, `999.0.0.1`) is invalid input; a name
// (iptables resolves host names when the rule is added, iptables-save never prints one) stays
// for addressCondition to call undecidable.
function checkAddress(text: string, option: string, line: number): void {
  const [address, prefix] = text.split("/");
  const isQuad = /^\d+(\.\d+){3}$/.test(address!);
  const isV6 = address!.includes(":");
  if (!isQuad && !isV6) return;
  const bits = isV6 ? 128 : 32;
  const valid = isV6 ? ipaddr.IPv6.isValid(address!) : address!.split(".").every((octet) => Number(octet) <= 255);
  if (!valid) fail(line, `${option} "${text}": "${address}" is not an IP address`, "an IPv4 or IPv6 address, optionally /prefix");
  if (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= bits) && !(bits === 32 && ipaddr.IPv4.isValidFourPartDecimal(prefix))) {
    fail(line, `${option} "${text}": /${prefix} is not a prefix length 0-${bits} or a netmask`, `an address with a prefix length 0-${bits}`);
  }
}

// The types REJECT takes (libipt_REJECT, libip6t_REJECT); any other is refused by iptables-restore.
const REJECT_TYPES = new Set([
  "icmp-net-unreachable", "net-unreach", "icmp-host-unreachable", "host-unreach", "icmp-proto-unreachable", "proto-unreach",
  "icmp-port-unreachable", "port-unreach", "icmp-net-prohibited", "net-prohib", "icmp-host-prohibited", "host-prohib",
  "icmp-admin-prohibited", "admin-prohib", "tcp-reset", "tcp-rst",
  "icmp6-no-route", "no-route", "icmp6-adm-prohibited", "adm-prohibited", "icmp6-addr-unreachable", "addr-unreach",
  "icmp6-port-unreachable", "icmp6-policy-fail", "policy-fail", "icmp6-reject-route", "reject-route",
]);

/** Reads one option's arguments: every following token that is not an option or a `!`. */
function takeArguments(tokens: readonly ShellToken[], start: number): { args: string[]; next: number } {
  const args: string[] = [];
  let i = start;
  while (i < tokens.length) {
    const t = tokens[i]!;
    if (!t.quoted && (t.value === "!" || t.value.startsWith("-"))) break;
    args.push(t.value);
    i++;
  }
  return { args, next: i };
}

function parseRule(chain: string, tokens: readonly ShellToken[], text: string, line: number): PendingRule {
  const conditions: Condition[] = [];
  const targetOptions = new Map<string, string>();
  let targetName: string | undefined;
  let isGoto = false;
  // Every match loaded so far, in order (-m, or the protocol's, loaded for its options).
  const loaded: string[] = [];
  let protocolModule: string | undefined;
  let inTarget = false;
  let negate = false;
  const unknownModules = new Set<string>();
  let i = 0;
  const needArg = (args: string[], option: string, count = 1): string[] => {
    if (args.length < count) fail(line, `${option} needs ${count} argument(s)`, `an argument after ${option}`);
    return args;
  };
  while (i < tokens.length) {
    const token = tokens[i]!;
    if (!token.quoted && token.value === "!") {
      negate = true;
      i++;
      continue;
    }
    if (token.quoted || !token.value.startsWith("-")) fail(line, `unexpected "${token.value}" in a rule`, "an option such as -p, -s, -m or -j");
    const option = token.value;
    const { args, next } = takeArguments(tokens, i + 1);
    i = next;
    const neg = negate;
    negate = false;
    switch (option) {
      case "-p":
      case "--protocol": {
        const [name] = needArg(args, option);
        const protocol = protocolNumberOf(name!);
        if (protocol === undefined && /^\d+$/.test(name!)) fail(line, `protocol ${name} is past 255`, "a protocol name or a number 0-255");
        // iptables loads a protocol's match for its options only where -p is not negated.
        protocolModule = neg ? undefined : name!.toLowerCase();
        conditions.push(protocol === undefined ? { kind: "unknown", reason: `protocol "${name}" is not known` } : { kind: "protocol", negate: neg, protocol });
        continue;
      }
      case "-s":
      case "--source":
      case "-d":
      case "--destination": {
        const [value] = needArg(args, option);
        const field = option === "-s" || option === "--source" ? "source" : "destination";
        for (const item of value!.split(",")) checkAddress(item, option, line);
        conditions.push(value!.includes(",") ? { kind: "unknown", reason: `${field} list "${value}"` } : addressCondition(field, neg, value!));
        continue;
      }
      case "-i":
      case "--in-interface":
      case "-o":
      case "--out-interface": {
        const [name] = needArg(args, option);
        conditions.push({ kind: "interface", direction: option.startsWith("-i") || option === "--in-interface" ? "in" : "out", negate: neg, name: name! });
        continue;
      }
      case "-f":
      case "--fragment":
        conditions.push({ kind: "fragment", negate: neg });
        continue;
      case "-m":
      case "--match": {
        const [name] = needArg(args, option);
        const module = name!;
        loaded.push(module);
        inTarget = false;
        const reason = UNDECIDABLE_MODULES[module];
        if (reason !== undefined && !unknownModules.has(module)) {
          unknownModules.add(module);
          conditions.push({ kind: "unknown", reason });
        }
        continue;
      }
      case "-j":
      case "--jump":
      case "-g":
      case "--goto": {
        const [name] = needArg(args, option);
        targetName = name!;
        isGoto = option === "-g" || option === "--goto";
        inTarget = true;
        continue;
      }
      case "-c":
      case "--set-counters":
        continue;
    }
    if (!option.startsWith("--")) fail(line, `unknown option ${option}`, "an iptables rule option");
    const key = option.slice(2);
    if (inTarget) {
      targetOptions.set(key, args.join(" "));
      continue;
    }
    const module = ownerOf(key, loaded, protocolModule);
    if (module !== undefined && !loaded.includes(module)) loaded.push(module);
    if (module !== undefined && UNDECIDABLE_MODULES[module] !== undefined) continue;
    const condition = matchOption(module, key, neg, args, line);
    if (condition) conditions.push(condition);
  }
  const rejectWith = targetOptions.get("reject-with");
  if (targetName === "REJECT" && rejectWith !== undefined && !REJECT_TYPES.has(rejectWith)) {
    fail(line, `--reject-with ${rejectWith} is not a type REJECT knows`, "a REJECT type such as icmp-port-unreachable, icmp-host-prohibited, tcp-reset or icmp6-adm-prohibited");
  }
  return { chain, text, line, conditions, targetName, isGoto, targetOptions };
}

// null: an option that holds for every packet (a comment, --limit-iface-in).
function matchOption(module: string | undefined, key: string, negate: boolean, args: readonly string[], line: number): Condition | null {
  const arg = args[0] ?? "";
  const where = `-m ${module ?? "?"} --${key}`;
  // A port iptables would refuse is invalid input, not something the input does not show.
  const portCondition = (field: "dport" | "sport" | "either", negate: boolean, text: string, what: string): Condition => {
    const why = portSpecError(text);
    if (why !== undefined) fail(line, `port "${text}" in ${what} is not valid: ${why}`, "a port 0-65535 or a service name, or a range N:M with N ≤ M");
    return portConditionOf(field, negate, text, what);
  };
  const unknown = (reason = `${where} is not evaluated by this doctor`): Condition => ({ kind: "unknown", reason });
  switch (module) {
    case undefined: // `-p tcp --dport 22` without `-m tcp` (iptables loads the module itself)
    case "tcp":
    case "udp":
    case "sctp":
    case "dccp":
    case "udplite":
      switch (key) {
        case "dport":
        case "destination-port":
          return portCondition("dport", negate, arg, where);
        case "sport":
        case "source-port":
          return portCondition("sport", negate, arg, where);
        case "syn":
          return { kind: "tcp-flags", negate, mask: 0x17, comparison: 0x02 };
        case "tcp-flags": {
          const mask = parseTcpFlagList(args[0] ?? "");
          const comparison = parseTcpFlagList(args[1] ?? "");
          if (mask === undefined || comparison === undefined) fail(line, `bad --tcp-flags "${args.join(" ")}"`, "--tcp-flags MASK COMP");
          return { kind: "tcp-flags", negate, mask, comparison };
        }
      }
      return unknown();
    case "multiport":
      // xt_multiport holds at most 15 ports, a range taking two (iptables-extensions(8)).
      if (args[0] !== undefined && args[0].split(",").reduce((n, item) => n + (item.includes(":") ? 2 : 1), 0) > 15) {
        fail(line, `${where} "${arg}" lists more than 15 ports (a range counts as two)`, "at most 15 ports in one multiport match");
      }
      switch (key) {
        case "dports":
        case "destination-ports":
          return portCondition("dport", negate, arg, where);
        case "sports":
        case "source-ports":
          return portCondition("sport", negate, arg, where);
        case "ports":
          return portCondition("either", negate, arg, where);
      }
      return unknown();
    case "conntrack":
    case "state":
      if (key === "ctstate" || key === "state") return { kind: "ctstate", negate, states: arg.toUpperCase().split(",") };
      if (key === "ctproto") {
        const protocol = protocolNumberOf(arg);
        return protocol === undefined ? unknown() : { kind: "protocol", negate, protocol };
      }
      if (key === "ctorigsrc") return addressCondition("source", negate, arg);
      if (key === "ctorigdst") return addressCondition("destination", negate, arg);
      if (key === "ctorigdstport") return portCondition("dport", negate, arg, where);
      if (key === "ctorigsrcport") return portCondition("sport", negate, arg, where);
      if (key === "ctdir") return { kind: "ctstate", negate: arg.toUpperCase() === "ORIGINAL" ? negate : !negate, states: ["NEW", "INVALID", "UNTRACKED", "ESTABLISHED", "RELATED", "SNAT", "DNAT"] };
      return unknown();
    case "comment":
      return null;
    case "addrtype":
      if (key === "src-type" || key === "dst-type") {
        return { kind: "addrtype", side: key === "src-type" ? "source" : "destination", negate, types: arg.toUpperCase().split(",") };
      }
      if (key === "limit-iface-in" || key === "limit-iface-out") return null;
      return unknown();
    case "mark":
    case "connmark": {
      if (key !== "mark") return unknown();
      const parsed = parseMarkMask(arg);
      if (!parsed) fail(line, `bad mark "${arg}"`, "--mark VALUE[/MASK]");
      return { kind: "mark", which: module === "mark" ? "packet" : "connection", negate, ...parsed };
    }
    case "iprange": {
      const [from, to] = arg.split("-");
      if ((key === "src-range" || key === "dst-range") && from && to) {
        const kinds = [from, to].map((a) => (ipaddr.isValid(a) ? ipaddr.parse(a).kind() : fail(line, `${where} "${a}" is not an IP address`, "--src-range FROM-TO with two addresses")));
        if (kinds[0] !== kinds[1]) fail(line, `${where} "${arg}" mixes an IPv4 and an IPv6 address`, "both ends of the range in one address family");
        return { kind: "address-range", field: key === "src-range" ? "source" : "destination", negate, from, to };
      }
      return unknown();
    }
    case "pkttype":
      return key === "pkt-type" ? { kind: "pkttype", negate, type: arg.toLowerCase() } : unknown();
    case "icmp":
    case "icmp6":
    case "icmpv6":
      // Only loadable with -p icmp, which a TCP or UDP packet never matches.
      return { kind: "protocol", negate: false, protocol: module === "icmp" ? 1 : 58 };
  }
  return unknown(`-m ${module} is not evaluated by this doctor`);
}

// iptables-save ends every table it prints with COMMIT (iptables-restore applies a table only at
// its COMMIT), so a table without one is a cut-off dump: `az vmss run-command invoke` returns at
// most 4 KiB of output, a terminal's scrollback or a paste may end early. Its last rule may be cut
// mid-option (`--dpo`), and the rules after it are missing, so no verdict drawn from it can be
// trusted. `iptables -S` prints no `*table` lines and no COMMIT, and is not concerned.
function failTruncated(open: { name: string; line: number }, line: number, what: string): never {
  fail(line, `table ${open.name} (*${open.name} at line ${open.line}) has no COMMIT before ${what}: iptables-save ends every table with COMMIT, so the input looks truncated (az vmss run-command, for one, cuts its output at 4 KiB)`, `the whole output of iptables-save, each table ending with COMMIT`);
}

// iptables-nft prints this (on stderr, often captured with the dump) where the legacy backend's
// tables hold rules too: the kernel runs those as well, and this dump does not show them (§4.1).
const LEGACY_WARNING = /^#\s*Warning:\s*(ip6?tables)-legacy tables present/;

export const isLegacyWarning = (text: string): boolean => LEGACY_WARNING.test(text.trim());

/** The legacy-tables warning for `family` anywhere in `lines`, or null. */
export function legacyWarningOf(lines: readonly string[], family: "ipv4" | "ipv6"): { line: number; text: string } | null {
  const tool = family === "ipv6" ? "ip6tables" : "iptables";
  const index = lines.findIndex((l) => LEGACY_WARNING.exec(l.trim())?.[1] === tool);
  return index < 0 ? null : { line: index + 1, text: lines[index]!.trim() };
}

// iptables-nft prints this (on stdout, before the table's stub: its built-in chains with policy
// ACCEPT and none of the nftables chains) where a table of an iptables name (`table ip filter`)
// holds base chains it did not make; reproduced with nft -f and iptables-nft-save 1.8.9. Those
// chains filter, and no iptables dump shows them.
const INCOMPATIBLE_TABLE = /^#\s*Table `(\w+)' contains incompatible base-chains/;

const isIncompatibleTableComment = (text: string): boolean => INCOMPATIBLE_TABLE.test(text.trim());

/** Every table `lines` say holds incompatible base chains, in order. */
export function incompatibleTablesOf(lines: readonly string[]): IncompatibleTable[] {
  return lines.flatMap((l, index) => {
    const table = INCOMPATIBLE_TABLE.exec(l.trim())?.[1];
    return table === undefined ? [] : [{ table, line: index + 1, text: l.trim() }];
  });
}

export function isIptablesSave(firstLine: string): boolean {
  return /^(\*\w|:\S+ \S+|(\[\d+:\d+\] )?-[APN] )/.test(firstLine);
}

// Where each dump of a file starts. Support bundles often hold `iptables-save` output followed by
// `ip6tables-save` output; IPv4 packets meet only the first's rules and IPv6 packets only the
// second's (troubleshooting.md §4), so the two must never be merged into one table. The tools
// print `# Generated by iptables-save ...` (or `ip6tables-save`) before every table, so a dump
// starts at such a line that names the other tool than the lines before it (or that follows rules
// printed without one), or, without those lines, at a `*table` that the dump already opened (one
// dump never holds a table twice) — together with the header lines just before that table.
function dumpStarts(lines: readonly string[]): number[] {
  const starts = [0];
  let tables = new Set<string>();
  let tool: "iptables" | "ip6tables" | undefined;
  let hasContent = false;
  let headerAt: number | undefined; // the first `# Generated by` line since the last rule line
  // The first incompatible-table comment since the last rule line: iptables-nft prints it before
  // the `# Generated by` line of the dump whose table it is about.
  let warnedAt: number | undefined;
  const headerStart = (index: number) => Math.min(headerAt ?? index, warnedAt ?? index, index);
  const split = (at: number) => {
    starts.push(at);
    tables = new Set();
    tool = undefined;
    hasContent = false;
  };
  lines.forEach((raw, index) => {
    const text = raw.trim();
    if (text === "") return;
    const header = /^#\s*Generated by\s+(\S+)/.exec(text)?.[1];
    if (header !== undefined) {
      const by = /ip6tables/.test(header) ? "ip6tables" : "iptables";
      if (hasContent && tool !== by) split(warnedAt ?? index);
      tool ??= by;
      headerAt ??= index;
      return;
    }
    if (isIncompatibleTableComment(text)) warnedAt ??= index;
    if (text.startsWith("#")) return;
    const table = /^\*(\S+)/.exec(text)?.[1];
    if (table !== undefined && tables.has(table)) split(headerStart(index));
    if (table !== undefined) tables.add(table);
    hasContent = true;
    headerAt = undefined;
    warnedAt = undefined;
  });
  return starts;
}

const familyName = (family: "ipv4" | "ipv6") => (family === "ipv6" ? "ip6tables-save (IPv6)" : "iptables-save (IPv4)");

/**
 * Every dump in the input, in order: one for plain `iptables-save` output, two where
 * `iptables-save` and `ip6tables-save` output share the file. Line numbers stay those of the file.
 */
export function parseIptablesSaveDumps(text: string): Ruleset[] {
  const lines = text.split(/\r?\n/);
  const starts = dumpStarts(lines);
  if (starts.length === 1) return [parseIptablesSave(text)];
  const ranges = starts.map((start, i) => {
    const end = (starts[i + 1] ?? lines.length) - 1;
    let last = end;
    while (last > start && lines[last]!.trim() === "") last--;
    return { first: start + 1, last: last + 1, end: end + 1 };
  });
  const dumps = ranges.map(({ first, end }) => {
    // The other dumps' lines are blanked, not removed, so that every line number is the file's.
    const own = lines.map((line, i) => (i + 1 >= first && i + 1 <= end ? line : "")).join("\n");
    return parseIptablesSave(own);
  });
  const expected = "one dump per file, or each dump with the \"# Generated by iptables-save\" or \"# Generated by ip6tables-save\" line the tools print";
  dumps.forEach((dump, i) => {
    const { first, last } = ranges[i]!;
    if (dump.familyShownAt === null) {
      fail(first, `the input holds ${dumps.length} iptables-save dumps, and nothing in the one at lines ${first}-${last} (no "# Generated by" line, no address, no ICMP type) shows whether it is iptables-save (IPv4) or ip6tables-save (IPv6) output, so which packets meet its rules cannot be told`, expected);
    }
    const earlier = dumps.findIndex((d) => d.family === dump.family);
    if (earlier !== i) {
      const other = ranges[earlier]!;
      fail(dump.familyShownAt.line, `the dumps at lines ${other.first}-${other.last} and ${first}-${last} are both ${familyName(dump.family)} output (as ${JSON.stringify(dump.familyShownAt.text.slice(0, 80))} shows); one family's packets cannot meet two rule sets`, expected);
    }
  });
  return dumps.map((dump, i) => {
    const other = ranges[1 - i]!;
    const otherFamily = dumps[1 - i]!.family;
    const { first, last } = ranges[i]!;
    const note = `The input holds two dumps: this one (lines ${first}-${last}) is ${familyName(dump.family)} output, which ${dump.family === "ipv6" ? "IPv6" : "IPv4"} flows are judged against; ${otherFamily === "ipv6" ? "IPv6" : "IPv4"} flows meet only the ${familyName(otherFamily)} rules at lines ${other.first}-${other.last}.`;
    // The warning is the tool's, on stderr: it may land among the other dump's lines.
    return { ...dump, notes: [...dump.notes, note], legacyTables: legacyWarningOf(lines, dump.family) };
  });
}

/** One `iptables-save` (or `ip6tables-save`, or `iptables -S`) dump; see parseIptablesSaveDumps for a file holding both. */
export function parseIptablesSave(text: string): Ruleset {
  const tables = new Map<string, PendingTable>();
  let current: PendingTable | undefined;
  // The first line that shows each family; IPv6 wins where both are shown, as before.
  const shown: { ipv4?: { line: number; text: string }; ipv6?: { line: number; text: string } } = {};
  const show = (family: "ipv4" | "ipv6", line: number, text: string) => (shown[family] ??= { line, text });
  const lines = text.split(/\r?\n/);
  const tableFor = (name: string): PendingTable => {
    let table = tables.get(name);
    if (!table) {
      table = { name, chains: new Map() };
      tables.set(name, table);
    }
    return table;
  };
  const chainFor = (table: PendingTable, name: string) => {
    let chain = table.chains.get(name);
    if (!chain) {
      chain = { policy: BUILTIN_CHAINS.has(name) ? "ACCEPT" : null, policyText: null, rules: [] };
      table.chains.set(name, chain);
    }
    return chain;
  };
  // The table a `*name` line opened and where, until its COMMIT; and the last line read.
  let open: { name: string; line: number } | undefined;
  let lastLine = 0;
  lines.forEach((raw, index) => {
    const line = index + 1;
    const text = raw.trim();
    if (text === "") return;
    lastLine = line;
    if (text.startsWith("#")) {
      if (isLegacyWarning(text)) return;
      if (/ip6tables/.test(text)) show("ipv6", line, text);
      else if (/\biptables(-nft|-legacy)?-save\b/.test(text)) show("ipv4", line, text);
      return;
    }
    if (text.startsWith("*")) {
      if (open) failTruncated(open, line, `*${text.slice(1)} opens the next table`);
      current = tableFor(text.slice(1));
      open = { name: current.name, line };
      return;
    }
    if (text === "COMMIT") {
      current = undefined;
      open = undefined;
      return;
    }
    // `iptables -S` has no table header: it lists the filter table unless `-t` was given.
    const table = current ?? tableFor("filter");
    let m = /^:(\S+)\s+(\S+)(\s+\[\d+:\d+\])?$/.exec(text);
    if (m) {
      const policy = m[2] === "-" ? null : m[2] === "ACCEPT" || m[2] === "DROP" ? m[2] : fail(line, `unknown policy ${m[2]}`, "ACCEPT, DROP or -");
      Object.assign(chainFor(table, m[1]!), { policy, policyText: policy === null ? null : text });
      return;
    }
    m = /^-P\s+(\S+)\s+(ACCEPT|DROP)(\s+-c\s+\d+\s+\d+)?$/.exec(text);
    if (m) {
      Object.assign(chainFor(table, m[1]!), { policy: m[2] as "ACCEPT" | "DROP", policyText: text });
      return;
    }
    m = /^-N\s+(\S+)$/.exec(text);
    if (m) {
      Object.assign(chainFor(table, m[1]!), { policy: null, policyText: null });
      return;
    }
    m = /^(?:\[\d+:\d+\]\s+)?-A\s+(\S+)(.*)$/.exec(text);
    if (!m) fail(line, `cannot read "${text.slice(0, 60)}"`, "an iptables-save line (*table, :CHAIN POLICY, -A CHAIN ..., COMMIT)");
    const tokens = tokenizeShell(m[2]!);
    if ("error" in tokens) fail(line, `rule has ${tokens.error}`, "balanced quotes");
    const chain = chainFor(table, m[1]!);
    const rule = parseRule(m[1]!, tokens, text.replace(/^\[\d+:\d+\]\s+/, ""), line);
    if (/:/.test(m[2]!) && /\s-[sd]\s+[0-9a-f:]+:[0-9a-f:]*/i.test(m[2]!)) show("ipv6", line, text);
    if (/\s-[sd]\s+\d{1,3}(\.\d{1,3}){3}\b/.test(m[2]!)) show("ipv4", line, text);
    // REJECT's ICMP types are per family: ip6tables has only the icmp6-* ones.
    if (/\s--reject-with\s+icmp6-/.test(m[2]!)) show("ipv6", line, text);
    if (/\s--reject-with\s+icmp-/.test(m[2]!)) show("ipv4", line, text);
    // So are the ICMP matches (libxt_icmp is IPv4's, icmp6 IPv6's), and ICMPv6, which only
    // ip6tables rules name.
    if (/\s-m\s+icmp6\b|\s-p\s+(ipv6-icmp|icmpv6)\b/.test(m[2]!)) show("ipv6", line, text);
    if (/\s-m\s+icmp(?!6)\b/.test(m[2]!)) show("ipv4", line, text);
    chain.rules.push(rule);
  });
  if (open) failTruncated(open, lastLine, "the input ends");
  if (tables.size === 0) fail(1, "no tables or rules found", "iptables-save output");
  const resolved = new Map<string, Table>();
  for (const table of tables.values()) {
    const userChains = new Set([...table.chains].filter(([, c]) => c.policy === null).map(([n]) => n));
    const chains = new Map<string, Chain>();
    for (const [name, chain] of table.chains) {
      // The dump declares every chain of its table, so a target that is neither one of them nor
      // a target iptables knows is invalid input (iptables-restore refuses it), not an unknown.
      for (const r of chain.rules) {
        const target = r.targetName;
        if (target === undefined || target === "" || userChains.has(target)) continue;
        if (r.isGoto) fail(r.line, `-g ${target}: table ${table.name} declares no chain ${target}`, `a chain of table ${table.name} (declared with :${target} - [0:0] or -N ${target})`);
        if (!isKnownTarget(target)) {
          fail(r.line, `-j ${target}: table ${table.name} declares no chain ${target}, and it is not a target iptables knows`, `a built-in or extension target (ACCEPT, DROP, RETURN, REJECT, LOG, MARK...) or a chain of table ${table.name} (:${target} - [0:0] or -N ${target})`);
        }
      }
      const rules: Rule[] = chain.rules.map((r, i) => ({
        chain: name,
        number: i + 1,
        text: r.text,
        line: r.line,
        conditions: r.conditions,
        target: targetOf(r.targetName, r.targetOptions, userChains, r.isGoto),
      }));
      chains.set(name, { name, policy: chain.policy, policyText: chain.policyText, rules });
    }
    resolved.set(table.name, { name: table.name, chains });
  }
  const family = shown.ipv6 ? "ipv6" : "ipv4";
  return { format: "iptables-save", family, familyShownAt: shown[family] ?? null, showsInterfaces: true, tables: resolved, notes: [], legacyTables: legacyWarningOf(lines, family), incompatibleTables: incompatibleTablesOf(lines) };
}
