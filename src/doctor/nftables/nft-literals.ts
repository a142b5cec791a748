// The address and port literals of nft matches, sets and maps, read once for both parsers and the
// evaluator. nft refuses a literal that is not one (`ip saddr 10.0.0.300`, `tcp dport 99999`, a
// prefix longer than the address, a range that starts past its end: "Error: Could not resolve
// hostname", "Error: Value 99999 exceeds valid range 0-65535", "Range has zero or negative size"),
// so the parsers make it an input error naming its line rather than a match that never holds.
// `nft -N list ruleset` prints addresses as host names (and `-S` ports as service names): those are
// real rules whose address the input does not show, so the evaluator calls them undecidable, as
// doctor iptables treats a host name in `iptables -L` output without -n.
import ipaddr from "ipaddr.js";
import { DoctorInputError } from "../input-error.js";
import type { NftAtom, NftKey } from "./nft-model.js";
import { nftKeyText, payloadKey } from "./payload-key.js";

export type NftAddressLiteral =
  /** One address is a prefix of its full length. */
  | { readonly kind: "prefix"; readonly net: ipaddr.IPv4 | ipaddr.IPv6; readonly bits: number }
  | { readonly kind: "range"; readonly lo: ipaddr.IPv4 | ipaddr.IPv6; readonly hi: ipaddr.IPv4 | ipaddr.IPv6 }
  /** A name as `nft -N` prints it: the address it stands for is not in the input. */
  | { readonly kind: "host"; readonly name: string }
  | { readonly kind: "invalid"; readonly problem: string };

export type NftPortLiteral =
  | { readonly kind: "range"; readonly lo: number; readonly hi: number }
  /** A service name (`nft -S`) the doctor does not know the number of. */
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "invalid"; readonly problem: string };

/** The service names the doctor maps to their ports (/etc/services); others stay undecidable. */
const serviceNames: Readonly<Record<string, number>> = { ssh: 22, http: 80, https: 443, openvpn: 1194 };

// A host name: labels of letters, digits, `-` and `_`, at least one letter (so `10.0.0.300` is a
// bad address, not a name).
const hostName = /^(?=[^:]*[a-z_])[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?$/i;
const serviceName = /^[a-z][a-z0-9_+.-]*$/i;

function ipOf(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  // IPv6 addresses in nft's port syntax stand in brackets: `[fd00::1]`.
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  return ipaddr.isValid(bare) ? ipaddr.parse(bare) : null;
}

const bitsOf = (a: ipaddr.IPv4 | ipaddr.IPv6) => (a.kind() === "ipv4" ? 32 : 128);

export function readAddressLiteral(text: string): NftAddressLiteral {
  const slash = text.lastIndexOf("/");
  if (slash >= 0) {
    const [addr, bits] = [text.slice(0, slash), text.slice(slash + 1)];
    const net = ipOf(addr);
    if (net === null) return hostName.test(addr) && /^\d+$/.test(bits) ? { kind: "host", name: text } : { kind: "invalid", problem: `${addr} is not an address` };
    if (!/^\d+$/.test(bits) || Number(bits) > bitsOf(net)) return { kind: "invalid", problem: `/${bits} is not a prefix length of an ${net.kind() === "ipv4" ? "IPv4" : "IPv6"} address (0-${bitsOf(net)})` };
    return { kind: "prefix", net, bits: Number(bits) };
  }
  const single = ipOf(text);
  if (single !== null) return { kind: "prefix", net: single, bits: bitsOf(single) };
  // `a-b`: host names hold dashes too, so a range is one whose two sides are addresses.
  for (let dash = text.indexOf("-"); dash > 0; dash = text.indexOf("-", dash + 1)) {
    const lo = ipOf(text.slice(0, dash));
    const hi = ipOf(text.slice(dash + 1));
    if (lo === null || hi === null) continue;
    if (lo.kind() !== hi.kind()) return { kind: "invalid", problem: `the range ${text} mixes IPv4 and IPv6` };
    if (compareBytes(lo.toByteArray(), hi.toByteArray()) > 0) return { kind: "invalid", problem: `the range ${text} starts past its end` };
    return { kind: "range", lo, hi };
  }
  if (hostName.test(text)) return { kind: "host", name: text };
  if (/^\d+(\.\d+){3}$/.test(text)) return { kind: "invalid", problem: `${text} is not an IPv4 address (each of its four numbers is 0-255)` };
  return { kind: "invalid", problem: `${text} is not an address` };
}

export function readPortLiteral(text: string): NftPortLiteral {
  const m = /^([^-]+)(?:-([^-]+))?$/.exec(text);
  const lo = nftNumber(m?.[1] ?? "");
  const hi = m?.[2] === undefined ? lo : nftNumber(m[2]);
  if (!Number.isNaN(lo) && !Number.isNaN(hi)) {
    const over = [lo, hi].find((n) => n > 65535);
    if (over !== undefined) return { kind: "invalid", problem: `${over} is more than 65535` };
    if (lo > hi) return { kind: "invalid", problem: `the range ${text} starts past its end` };
    return { kind: "range", lo, hi };
  }
  const named = Object.hasOwn(serviceNames, text) ? serviceNames[text] : undefined;
  if (named !== undefined) return { kind: "range", lo: named, hi: named };
  if (serviceName.test(text)) return { kind: "name", name: text };
  return { kind: "invalid", problem: `${text} is not a port number` };
}

export function compareBytes(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

// The symbols nft knows for the keys the evaluator reads by name (`nft describe ct state`, ...;
// nft 1.0.6). nft refuses any other word ("Error: Could not parse conntrack state") and lists a
// value without a symbol as a number: hexadecimal for the bitmasks, decimal for the others.
export const ctStateBits: Readonly<Record<string, number>> = { invalid: 0x1, established: 0x2, related: 0x4, new: 0x8, untracked: 0x40 };
export const ctStatusBits: Readonly<Record<string, number>> = {
  expected: 0x1, "seen-reply": 0x2, assured: 0x4, confirmed: 0x8, snat: 0x10, dnat: 0x20, dying: 0x200,
};
export const fibAddressTypes: readonly string[] = ["unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit"];
export const nfprotoNumbers: Readonly<Record<string, number>> = { ipv4: 2, ipv6: 10 };
// `meta l4proto` and `ip protocol` names: nft resolves them through /etc/protocols; these are the
// names Debian's lists (`nft describe meta l4proto`), RHEL's other names, and nft's own keywords.
export const protocolNumbers: Readonly<Record<string, number>> = {
  ip: 0, hopopt: 0, icmp: 1, igmp: 2, ggp: 3, ipencap: 4, ipv4: 4, st: 5, tcp: 6, egp: 8, igp: 9, pup: 12, udp: 17, hmp: 20,
  "xns-idp": 22, rdp: 27, "iso-tp4": 29, dccp: 33, xtp: 36, ddp: 37, "idpr-cmtp": 38, ipv6: 41,
  "ipv6-route": 43, "ipv6-frag": 44, idrp: 45, rsvp: 46, gre: 47, esp: 50, ah: 51, skip: 57,
  "ipv6-icmp": 58, icmpv6: 58, "ipv6-nonxt": 59, "ipv6-opts": 60, rspf: 73, vmtp: 81, eigrp: 88, ospf: 89,
  "ax.25": 93, ipip: 94, etherip: 97, encap: 98, pim: 103, ipcomp: 108, comp: 108, vrrp: 112, l2tp: 115,
  isis: 124, sctp: 132, fc: 133, "mobility-header": 135, udplite: 136, "mpls-in-ip": 137,
  manet: 138, hip: 139, shim6: 140, wesp: 141, rohc: 142, ethernet: 143,
};

/** A number as nft lists one (decimal or 0x hexadecimal); NaN for anything else. */
export function nftNumber(text: string): number {
  return /^\d+$/.test(text) ? Number(text) : /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text, 16) : NaN;
}

/** The number a value stands for (`ct state` bits, a protocol, ...): a symbol's, or a number's; NaN for neither. */
export function symbolValue(symbols: Readonly<Record<string, number>>, atom: string): number {
  return Object.hasOwn(symbols, atom) ? symbols[atom]! : nftNumber(atom);
}

/** Why `atom` is not a value nft takes for a key of symbols or numbers up to `max`; null where it is one. */
function symbolProblem(atom: string, known: readonly string[], max: number, what: string): string | null {
  if (known.includes(atom)) return null;
  const n = nftNumber(atom);
  if (Number.isNaN(n)) return `${atom} is not a ${what} nft knows (${known.join(", ")}, or a number)`;
  return n > max ? `${atom} is more than ${max}` : null;
}

/** What nft takes for a key; null for keys whose values are not checked here. */
function expectedFor(key: NftKey): string | null {
  if (key.name === "saddr" || key.name === "daddr") {
    const v = key.impliedFamily === "ip6" ? "IPv6" : key.impliedFamily === "ip" ? "IPv4" : "IP";
    return `an ${v} address, prefix (address/length) or range (a-b) for ${nftKeyText(key)}, or a host name as nft -N lists it`;
  }
  if (key.name === "dport" || key.name === "sport") return `a port 0-65535 or range lo-hi (lo <= hi) for ${nftKeyText(key)}, or a service name`;
  if (key.name === "l4proto") return `a protocol name or number 0-255 for ${nftKeyText(key)}`;
  if (key.name === "ct state") return `a conntrack state (${Object.keys(ctStateBits).join(", ")}) for ct state`;
  if (key.name === "ct status") return `a conntrack status (${Object.keys(ctStatusBits).join(", ")}) for ct status`;
  if (key.name === "fib daddr type") return `an address type (${fibAddressTypes.join(", ")}) for fib daddr type`;
  if (key.name === "nfproto") return "ipv4 or ipv6 for meta nfproto";
  return null;
}

/** Why `atom` is not a value of `key` (nft would refuse it); null where it is one or is not checked. */
export function literalProblem(key: NftKey, atom: string): string | null {
  switch (key.name) {
    case "saddr":
    case "daddr": {
      const a = readAddressLiteral(atom);
      if (a.kind === "invalid") return a.problem;
      const kind = a.kind === "prefix" ? a.net.kind() : a.kind === "range" ? a.lo.kind() : null;
      const want = key.impliedFamily === "ip" ? "ipv4" : key.impliedFamily === "ip6" ? "ipv6" : null;
      // An IPv4-mapped IPv6 address is an IPv6 address to nft.
      if (kind !== null && want !== null && kind !== want) return `${atom} is not an ${want === "ipv4" ? "IPv4" : "IPv6"} address`;
      return null;
    }
    case "dport":
    case "sport": {
      const p = readPortLiteral(atom);
      return p.kind === "invalid" ? p.problem : null;
    }
    // A protocol name is resolved through the machine's /etc/protocols, which differs by
    // distribution (RHEL's has hopopt, ipv4): an unknown name is undecidable, not an error.
    case "l4proto":
      return /^\d+$/.test(atom) && Number(atom) > 255 ? `${atom} is more than 255` : null;
    case "ct state":
      return symbolProblem(atom, Object.keys(ctStateBits), 0xffffffff, "conntrack state");
    case "ct status":
      return symbolProblem(atom, Object.keys(ctStatusBits), 0xffffffff, "conntrack status");
    case "fib daddr type":
      return symbolProblem(atom, fibAddressTypes, 0xffffffff, "fib address type");
    case "nfproto":
      return symbolProblem(atom, Object.keys(nfprotoNumbers), 255, "netfilter protocol");
    default:
      return null;
  }
}

/**
 * Throws the input error for the first element of `items` that is not a value of its key (a
 * concatenation `a . b` is checked part by part; an element of another length is left to the
 * evaluator, which cannot decide it). `line`: the input line; the JSON parser adds its own place.
 */
export function checkNftLiterals(keys: readonly NftKey[], items: readonly NftAtom[], where: string, line?: number): void {
  for (const item of items) {
    if (item.length !== keys.length) continue;
    for (let i = 0; i < keys.length; i++) {
      const problem = literalProblem(keys[i]!, item[i]!);
      if (problem === null) continue;
      const key = keys[i]!;
      const named = key.setType === undefined ? nftKeyText(key) : key.setType;
      throw new DoctorInputError(`${where}: ${named} ${item[i]}: ${problem}, so nft refuses it`, { line, expected: expectedFor(key)! });
    }
  }
}

/** The data types of a set's elements (nft(8) SETS, `type`), as the keys whose literals they hold. */
const setTypes: Readonly<Record<string, NftKey>> = {
  ipv4_addr: { name: "saddr", impliedFamily: "ip", setType: "ipv4_addr" },
  ipv6_addr: { name: "saddr", impliedFamily: "ip6", setType: "ipv6_addr" },
  inet_service: { name: "dport", setType: "inet_service" },
  inet_proto: { name: "l4proto", setType: "inet_proto" },
  ct_state: { name: "ct state", setType: "ct_state" },
  ct_status: { name: "ct status", setType: "ct_status" },
};

/**
 * The keys of a set's or map's elements, from its `type ipv4_addr . inet_service [: verdict]` or
 * `typeof ip saddr . tcp dport` (JSON: the type name or the list of them); a part of another
 * type is a key whose literals are not checked. null where the input shows no type.
 */
export function setElementKeys(type: string | readonly string[] | undefined): NftKey[] | null {
  if (type === undefined) return null;
  const text = typeof type === "string" ? type : type.join(" . ");
  const m = /^(typeof\s+|type\s+)?([^:]+)/.exec(text.trim());
  if (!m) return null;
  const byTypeof = m[1]?.startsWith("typeof") ?? false;
  return m[2]!.trim().split(/\s+\.\s+/).map((part): NftKey => {
    if (!byTypeof) return setTypes[part] ?? { name: "other", setType: part };
    const [proto, field] = part.split(/\s+/);
    if (proto === "meta" && field === "l4proto") return { name: "l4proto" };
    return payloadKey(proto ?? "", field ?? "") ?? { name: "other" };
  });
}
