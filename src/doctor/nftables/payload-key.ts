// The key of a payload match (`ip saddr`, `tcp dport`, `icmp type`...) with what it implies about
// the packet. nft(8) "PAYLOAD EXPRESSION": a header field is read only after nft has checked the
// header's protocol (the implicit `meta l4proto icmp` dependency nft adds and then hides when it
// lists the rule), and for icmp/icmpv6 the family too. So a match on another protocol's header
// never matches the flow, not even with `!=` — the evaluator decides that without knowing the
// field's value. Shared by the text and the JSON parser so that both listings agree.
import type { NftKey } from "./nft-model.js";

interface Header {
  /** The protocol as `meta l4proto` names it; undefined for network headers and `th`. */
  readonly proto?: string;
  readonly family?: "ip" | "ip6";
  readonly fields: readonly string[];
}

const headers: Readonly<Record<string, Header>> = {
  ip: { family: "ip", fields: ["saddr", "daddr", "protocol"] },
  ip6: { family: "ip6", fields: ["saddr", "daddr", "nexthdr"] },
  th: { fields: ["dport", "sport"] },
  // TCP's other fields (flags, sequence...) are not read yet: they stay unknown expressions.
  tcp: { proto: "tcp", fields: ["dport", "sport"] },
  udp: { proto: "udp", fields: ["dport", "sport", "length", "checksum"] },
  udplite: { proto: "udplite", fields: ["dport", "sport", "checksum"] },
  sctp: { proto: "sctp", fields: ["dport", "sport", "vtag", "checksum"] },
  dccp: { proto: "dccp", fields: ["dport", "sport", "type"] },
  icmp: { proto: "icmp", family: "ip", fields: ["type", "code", "checksum", "id", "sequence", "gateway", "mtu"] },
  icmpv6: { proto: "ipv6-icmp", family: "ip6", fields: ["type", "code", "checksum", "parameter-problem", "packet-too-big", "id", "sequence", "max-delay"] },
};

/** The header names a payload match starts with (`ip`, `tcp`, `icmpv6`...). */
export const payloadProtocols: readonly string[] = Object.keys(headers);

/** The key for `<protocol> <field>`, or null when the evaluator does not know that field. */
export function payloadKey(protocol: string, field: string): NftKey | null {
  const h = Object.hasOwn(headers, protocol) ? headers[protocol]! : undefined;
  if (!h?.fields.includes(field)) return null;
  const implied = { impliedProto: h.proto ?? null, impliedFamily: h.family ?? null };
  // `ip protocol` and `ip6 nexthdr` are the family's spelling of `meta l4proto`.
  if (field === "protocol" || field === "nexthdr") return { name: "l4proto", ...implied };
  // Ports and addresses keep their short names: the evaluator compares them with the flow.
  if (["saddr", "daddr", "dport", "sport"].includes(field)) return { name: field, ...implied };
  return { name: `${protocol} ${field}`, ...implied };
}

/** A key as nft writes it: `ip saddr`, `tcp dport`, `meta l4proto`, `meta mark & 0x0000ff00`. */
export const nftKeyText = (k: NftKey): string =>
  k.impliedFamily && (k.name === "saddr" || k.name === "daddr") ? `${k.impliedFamily} ${k.name}`
    : k.impliedFamily && k.name === "l4proto" ? (k.impliedFamily === "ip" ? "ip protocol" : "ip6 nexthdr")
    : k.name === "dport" || k.name === "sport" ? `${k.impliedProto ?? "th"} ${k.name}`
    : k.name === "mark" && k.mask !== undefined ? `meta mark & 0x${k.mask.toString(16).padStart(8, "0")}`
    : ["l4proto", "nfproto", "mark"].includes(k.name) ? `meta ${k.name}` : k.name;
