// The typed form both parsers produce and the evaluator walks. It keeps only what decides a
// new connection's fate in the filter table (troubleshooting.md §4.3), plus the rule's text as
// the input showed it, so that a report can quote it back to the user.
import type { MarkUpdate } from "../mark-update.js";

export type InputFormat = "iptables-save" | "iptables-list";

/** A port interval, both ends inclusive. */
export type PortRange = readonly [number, number];

/**
 * One match of a rule. Every kind can be negated, as iptables allows (`! -s`, `! --dport`...).
 * "unknown" stands for anything the evaluator cannot decide from the input (a rate limit, an
 * ipset, an interface hidden by `-L` without `-v`, a host name it cannot resolve): it never
 * silently matches or misses (§4.3 "anything unknown").
 */
export type Condition =
  | { readonly kind: "protocol"; readonly negate: boolean; readonly protocol: number }
  | { readonly kind: "address"; readonly field: "source" | "destination"; readonly negate: boolean; readonly cidr: string }
  | { readonly kind: "address-range"; readonly field: "source" | "destination"; readonly negate: boolean; readonly from: string; readonly to: string }
  | { readonly kind: "interface"; readonly direction: "in" | "out"; readonly negate: boolean; readonly name: string }
  | { readonly kind: "port"; readonly field: "dport" | "sport" | "either"; readonly negate: boolean; readonly ranges: readonly PortRange[] }
  | { readonly kind: "tcp-flags"; readonly negate: boolean; readonly mask: number; readonly comparison: number }
  | { readonly kind: "ctstate"; readonly negate: boolean; readonly states: readonly string[] }
  | { readonly kind: "addrtype"; readonly side: "source" | "destination"; readonly negate: boolean; readonly types: readonly string[] }
  | { readonly kind: "mark"; readonly which: "packet" | "connection"; readonly negate: boolean; readonly value: number; readonly mask: number }
  | { readonly kind: "fragment"; readonly negate: boolean }
  | { readonly kind: "pkttype"; readonly negate: boolean; readonly type: string }
  | { readonly kind: "unknown"; readonly reason: string };

/** Every MARK/CONNMARK form reduces to a MarkUpdate (null in a target: an update the doctor cannot follow). */
export type { MarkUpdate };

export type Target =
  | { readonly kind: "accept" }
  | { readonly kind: "drop" }
  | { readonly kind: "reject"; readonly rejectWith: string }
  | { readonly kind: "return" }
  | { readonly kind: "jump"; readonly chain: string; readonly goto: boolean }
  | { readonly kind: "mark"; readonly which: "packet" | "connection"; readonly update: MarkUpdate | null }
  | { readonly kind: "connmark-save" }
  | { readonly kind: "connmark-restore" }
  /** No verdict and no state the filter walk reads (LOG, NFLOG, no target at all...). */
  | { readonly kind: "continue"; readonly name: string }
  /** A target whose effect the evaluator cannot know (NFQUEUE, an undeclared chain, an extension). */
  | { readonly kind: "unknown"; readonly name: string; readonly reason: string };

export interface Rule {
  readonly chain: string;
  /** 1-based position in its chain, as `--line-numbers` prints it. */
  readonly number: number;
  /** The rule as the input showed it (the save line or the -L line). */
  readonly text: string;
  /** 1-based line of the input. */
  readonly line: number;
  readonly conditions: readonly Condition[];
  readonly target: Target;
}

export interface Chain {
  readonly name: string;
  /** Built-in chains have a policy; user chains have null. */
  readonly policy: "ACCEPT" | "DROP" | null;
  /** The line that set the policy, as the input showed it (`:INPUT DROP [12:34]`, `Chain INPUT (policy DROP 0 packets, 0 bytes)`); null where none did. */
  readonly policyText: string | null;
  readonly rules: readonly Rule[];
}

export interface Table {
  readonly name: string;
  readonly chains: ReadonlyMap<string, Chain>;
}

export interface Ruleset {
  readonly format: InputFormat;
  readonly family: "ipv4" | "ipv6";
  /**
   * The input line that shows `family` (iptables-save's or ip6tables-save's header comment, an
   * address, an ICMP or ICMPv6 reject type); null where none does and `family` is only the default.
   */
  readonly familyShownAt: { readonly line: number; readonly text: string } | null;
  /** Whether interfaces are visible (save and `-L -v`); false for `-L` without `-v`. */
  readonly showsInterfaces: boolean;
  readonly tables: ReadonlyMap<string, Table>;
  /** Things the parser had to assume, for the report. */
  readonly notes: readonly string[];
  /**
   * iptables-nft's "# Warning: iptables-legacy tables present" line, where the input holds it:
   * the legacy backend's rules filter too, and are not in this input (§4.1, §4.4 "split brain").
   */
  readonly legacyTables?: { readonly line: number; readonly text: string } | null;
  /**
   * iptables-nft's "# Table `filter' contains incompatible base-chains" lines: an nftables table of
   * that name holds base chains iptables did not make, which filter too and which the dump does
   * not show (it prints a stub of the table instead).
   */
  readonly incompatibleTables?: readonly IncompatibleTable[];
}

export interface IncompatibleTable {
  readonly table: string;
  readonly line: number;
  readonly text: string;
}

export const BUILTIN_CHAINS = new Set(["INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"]);
