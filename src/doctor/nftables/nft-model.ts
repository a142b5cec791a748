// The typed ruleset both parsers (text `nft list ruleset` and `nft -j list ruleset`) produce,
// holding just what the input-hook evaluator needs (troubleshooting.md §4.4, doctor-cli.md).
import type { MarkUpdate } from "../mark-update.js";

export type NftFamily = "ip" | "ip6" | "inet" | "arp" | "bridge" | "netdev";

/** A match key: `ip saddr`, `tcp dport` (dport with an implied protocol), `ct state`... */
export interface NftKey {
  readonly name: string;
  /** Protocol the key implies, as `meta l4proto` names it (`tcp dport` only matches TCP, `icmpv6 type` only ipv6-icmp); null for `th dport` and others. */
  readonly impliedProto?: string | null;
  /** Family the key implies (`ip saddr` only matches IPv4). */
  readonly impliedFamily?: "ip" | "ip6" | null;
  /** `meta mark and M` / `meta mark & M`: the key's value ANDed with M before it is compared. */
  readonly mask?: number;
  /** A named set's element type (`ipv4_addr`, `inet_service`) that this key stands for. */
  readonly setType?: string;
}

/** A literal as nft prints it (`10.0.0.0/8`, `10000-11000`, `"eth*"`, `tcp`), or a concatenation of them. */
export type NftAtom = readonly string[];

export type NftValue =
  | { readonly kind: "set"; readonly items: readonly NftAtom[] }
  | { readonly kind: "ref"; readonly name: string };

export type NftVerdict =
  | { readonly kind: "accept" | "drop" | "continue" | "return" }
  | { readonly kind: "reject"; readonly with: string | null }
  | { readonly kind: "jump" | "goto"; readonly target: string }
  /** Hands the packet to a userspace program (nft(8) QUEUE STATEMENT); `options` as listed (`num 3`, `flags bypass to 1-3`). */
  | { readonly kind: "queue"; readonly options: string };

export type NftStatement =
  | { readonly kind: "match"; readonly keys: readonly NftKey[]; readonly op: string; readonly value: NftValue }
  | { readonly kind: "verdict"; readonly verdict: NftVerdict }
  | { readonly kind: "vmap"; readonly keys: readonly NftKey[]; readonly map: readonly NftMapEntry[] | { readonly ref: string } }
  /**
   * `tcp flags ...` (tcp-flags.ts): the flags byte ANDed with `mask`, then compared: "==" / "!=" with
   * any of `values`, "any" / "none" of the bits of `values[0]` set.
   */
  | { readonly kind: "tcp-flags"; readonly mask: number; readonly op: "==" | "!=" | "any" | "none"; readonly values: readonly number[] }
  /** `meta mark set ...`: the packet mark later rules read; null where the doctor cannot compute it (`ct mark`, a map). */
  | { readonly kind: "mark-set"; readonly update: MarkUpdate | null }
  /**
   * `dnat [ip|ip6] to ADDR[:PORT]`, `redirect [to :PORT]` (in nat chains only): where the connection's
   * destination is rewritten to. `family`: the packets of one family an inet table's statement is
   * for (others pass it by); `to.address` null: the address of the interface the packet came in on,
   * the node's own (redirect); `to.port` null: unchanged; `to` null: a target the input does not
   * show as one address and port (a map, a range, a host name).
   */
  | { readonly kind: "nat"; readonly nat: "dnat" | "redirect"; readonly family: "ip" | "ip6" | null; readonly to: NftNatTarget | null }
  /**
   * `notrack`: exempts the packet from conntrack where it runs before conntrack has (prerouting or
   * output at a priority below -200); its connection is then `untracked` (evaluate-nftables.ts).
   */
  | { readonly kind: "notrack" }
  | { readonly kind: "nop" }
  | { readonly kind: "unknown"; readonly text: string };

export interface NftNatTarget { readonly address: string | null; readonly port: number | null }

export interface NftMapEntry { readonly key: NftAtom; readonly verdict: NftVerdict }

export interface NftRule {
  /** 1-based position in its chain, in listed order. */
  readonly index: number;
  readonly handle: number | null;
  readonly text: string;
  /** 1-based input line (text form); null for JSON. */
  readonly line: number | null;
  readonly statements: readonly NftStatement[];
}

export interface NftBaseHook {
  readonly type: string;
  readonly hook: string;
  readonly priority: number;
  readonly policy: "accept" | "drop";
  /**
   * The devices an `ingress` chain is attached to (`device "eth0"`, `devices = { eth0, eth1 }`,
   * JSON `dev`); absent where the input names none.
   */
  readonly devices?: readonly string[];
  /** The chain's hook and policy as the input showed them (`type filter hook input priority 0; policy drop;`; built from the fields for JSON). */
  readonly text: string;
}

export interface NftChain {
  readonly name: string;
  readonly base: NftBaseHook | null;
  readonly rules: readonly NftRule[];
}

export interface NftSet {
  readonly name: string;
  readonly elements: readonly NftAtom[];
  /** Maps (`map name { ... : verdict }`) keep their verdict entries here. */
  readonly entries: readonly NftMapEntry[];
  /** The keys of its elements, from its `type` or `typeof`, where the input shows it. */
  readonly keys?: readonly NftKey[];
}

export interface NftTable {
  readonly family: NftFamily;
  readonly name: string;
  readonly chains: readonly NftChain[];
  readonly sets: ReadonlyMap<string, NftSet>;
}

export interface NftRuleset {
  readonly tables: readonly NftTable[];
  /** The input's own text showed a warning that iptables-legacy tables also exist. */
  readonly legacyWarning: boolean;
  readonly format: "text" | "json";
}

// Priority names (nft(8), "CHAINS"): the values for the ip/ip6/inet families.
export const priorityNames: Readonly<Record<string, number>> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
};
