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
  const number = (s: string) => (/^\d+$/.test(s) ? Number(s) : /^0x[0-9a-f]+$/i.test(s) ? Number.parseInt(s, 16) : NaN);
  const m = /^([^-]+)(?:-([^-]+))?$/.exec(text);
  const lo = number(m?.[1] ?? "");
  const hi = m?.[2] === undefined ? lo : number(m[2]);
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

/** What nft takes for a key; null for keys whose values are not checked here. */
function expectedFor(key: NftKey): string | null {
  if (key.name === "saddr" || key.name === "daddr") {
    const v = key.impliedFamily === "ip6" ? "IPv6" : key.impliedFamily === "ip" ? "IPv4" : "IP";
    return `an ${v} address, prefix (address/length) or range (a-b) for ${nftKeyText(key)}, or a host name as nft -N lists it`;
  }
  if (key.name === "dport" || key.name === "sport") return `a port 0-65535 or range lo-hi (lo <= hi) for ${nftKeyText(key)}, or a service name`;
  if (key.name === "l4proto") return `a protocol name or number 0-255 for ${nftKeyText(key)}`;
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
    case "l4proto":
      return /^\d+$/.test(atom) && Number(atom) > 255 ? `${atom} is more than 255` : null;
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
