// What the tables that run before filter INPUT do to a new connection for this node
// (troubleshooting.md §4.3): raw PREROUTING → (conntrack) → mangle PREROUTING → nat PREROUTING
// (DNAT may change the destination) → routing → mangle INPUT → filter INPUT.
//
// Each is walked as the kernel would (jumps, gotos, RETURN; ACCEPT ends only that table's chain,
// DROP and REJECT are final; the first NAT target binds the connection's mapping and ends nat's
// walk; running off a raw or mangle built-in chain applies its policy). raw runs before conntrack,
// so its state matches read INVALID. A rule is *certain* when it matches for sure and every rule
// before it on the way was decided; only certain rules change the verdict. An uncertain DROP is a
// note, not a verdict (its match cannot be decided, and these tables rarely filter); an uncertain
// MARK makes the mark it may set unknown, so that a later `-m mark` is undecidable rather than
// guessed.
import ipaddr from "ipaddr.js";
import { applyMarkUpdate } from "../mark-update.js";
import { matchAll } from "./match-condition.js";
import type { MatchState, Packet } from "./match-condition.js";
import type { Chain, Rule, Ruleset, Table, Target } from "./model.js";

// As evaluate-iptables.ts: the kernel refuses loops; a bound keeps a hand-written one from hanging.
const MAX_DEPTH = 64;
const MAX_STEPS = 200_000;

export const DESTINATION_NAT = new Set(["DNAT", "REDIRECT", "NETMAP", "DNPT"]);
// Targets that end a walk of the nat table (a NAT target binds the connection's mapping).
const ENDS_NAT_WALK = new Set([...DESTINATION_NAT, "SNAT", "MASQUERADE", "SNPT"]);

/** A rule the packet may reach and match; `doubt` says why it is not certain. */
export interface EarlierRule {
  readonly table: string;
  readonly rule: Rule;
  readonly certain: boolean;
  readonly doubt: string | null;
}

/** The name of a target the model keeps only by name (DNAT, NOTRACK, CT...); "" for others. */
export const extensionName = (rule: Rule): string => (rule.target.kind === "unknown" || rule.target.kind === "continue" ? rule.target.name : "");

function markTargetApplied(target: Target, marks: MatchState): MatchState {
  switch (target.kind) {
    case "mark":
      return target.which === "packet"
        ? { ...marks, mark: applyMarkUpdate(marks.mark, target.update) }
        : { ...marks, connmark: applyMarkUpdate(marks.connmark, target.update) };
    case "connmark-save":
      return { ...marks, connmark: marks.mark };
    case "connmark-restore":
      return { ...marks, mark: marks.connmark };
    default:
      return marks;
  }
}

// raw's conntrack targets change the state the rest of raw reads (xt_conntrack, xt_state): NOTRACK
// and CT --notrack make it UNTRACKED; another CT attaches a template entry, which reads as NEW
// (checked in the kernel: `-j CT --zone 1` then `--ctstate NEW -j DROP` drops the SYN).
function conntrackTargetApplied(rule: Rule, certain: boolean, packet: Packet): Packet {
  if (extensionName(rule) !== "NOTRACK" && extensionName(rule) !== "CT") return packet;
  if (!certain) {
    const why = `raw ${rule.chain} rule ${rule.number} ("${rule.text}") before it may change the connection's conntrack state, and whether it applies cannot be decided`;
    return { ...packet, ctstateUnknown: packet.ctstateUnknown ?? why };
  }
  const { ctstateUnknown: _unknown, ...rest } = packet;
  return { ...rest, ctstates: new Set([isNotrack(rule) ? "UNTRACKED" : "NEW"]) };
}

/** How the walk of a built-in chain ended: "returned" ran off its end (its policy applies), "maybe" either. */
export interface EarlierEnd {
  readonly end: "ended" | "returned" | "maybe";
  readonly doubt: string | null;
}

/**
 * Walks a built-in chain of a table that runs before filter and calls `visit` for every rule the
 * packet may reach and match, in the kernel's order. `marks.current` follows the MARK and CONNMARK
 * rules met: a certain one sets its value, one that may apply makes what it would change unknown.
 * Returns how the walk ended, for the chain's policy.
 */
export function walkEarlierChain(
  table: Table | undefined,
  chainName: string,
  packet: Packet,
  marks: { current: MatchState },
  visit: (met: EarlierRule) => void,
  excluded: ReadonlySet<Rule> = new Set(),
): EarlierEnd {
  if (!table) return { end: "returned", doubt: null };
  let steps = 0;
  let current = packet;
  // "ended": a verdict or NAT target certainly applied; "returned": certainly came back; "maybe": either.
  type End = EarlierEnd["end"];
  const walk = (name: string, reached: boolean, doubtIn: string | null, depth: number): { end: End; doubt: string | null } => {
    const chain = table.chains.get(name);
    if (!chain || depth > MAX_DEPTH) return { end: "maybe", doubt: doubtIn ?? `${table.name} chain ${name} cannot be followed` };
    let sure = reached;
    let doubt = doubtIn;
    for (const rule of chain.rules) {
      if (++steps > MAX_STEPS) return { end: "maybe", doubt: doubt ?? "too many rules to follow" };
      if (excluded.has(rule)) continue;
      const m = matchAll(rule.conditions, current, marks.current);
      if (m === false) continue;
      const certain = sure && m === true;
      const why = certain ? null : m === true ? doubt : m.unknown;
      visit({ table: table.name, rule, certain, doubt: why });
      current = conntrackTargetApplied(rule, certain, current);
      const t = rule.target;
      if (t.kind === "mark" || t.kind === "connmark-save" || t.kind === "connmark-restore") {
        const applied = markTargetApplied(t, marks.current);
        const before = marks.current;
        marks.current = certain ? applied : {
          mark: applied.mark === before.mark ? before.mark : null,
          connmark: applied.connmark === before.connmark ? before.connmark : null,
        };
        continue;
      }
      let end: End | "continue";
      if (t.kind === "jump") {
        const sub = walk(t.chain, certain, why, depth + 1);
        // A goto never comes back here: its chain's RETURN is this chain's.
        end = t.goto ? sub.end : sub.end === "returned" ? "continue" : sub.end;
        if (sub.end === "maybe") doubt ??= sub.doubt;
      } else if (t.kind === "return") end = "returned";
      else if (t.kind === "accept" || t.kind === "drop" || t.kind === "reject" || (t.kind === "unknown" && ENDS_NAT_WALK.has(t.name))) end = "ended";
      else if (t.kind === "unknown") end = "maybe";
      else end = "continue";
      if (end === "continue") continue;
      if (certain && end !== "maybe") return { end, doubt };
      sure = false;
      doubt ??= `${table.name} ${rule.chain} rule ${rule.number} before it may end the walk (${why ?? (t.kind === "unknown" ? t.reason : "it cannot be decided")})`;
    }
    return sure ? { end: "returned", doubt } : { end: "maybe", doubt };
  };
  return walk(chainName, true, null, 0);
}

/** A DROP or REJECT before filter that certainly applies, or a built-in chain's policy DROP: the verdict. */
export type EarlierBlock =
  | { readonly kind: "rule"; readonly table: string; readonly rule: Rule; readonly effect: "drop" | "reject"; readonly rejectWith: string | null }
  | { readonly kind: "policy"; readonly table: string; readonly chain: string; readonly policyText: string };

/** Where a destination NAT rule sends the connection. */
export type NatDestination =
  /**
   * Still to this node, to `port` (and `address`, where the rule names one of the node's; REDIRECT's
   * `interfaceAddress`: the incoming interface's primary address, which the input does not show).
   */
  | { readonly kind: "here"; readonly address: ipaddr.IPv4 | ipaddr.IPv6 | null; readonly interfaceAddress?: true; readonly port: number; readonly text: string }
  /** To a loopback address (§4.3): routing takes it as a martian unless route_localnet (IPv4); IPv6 never routes it. */
  | { readonly kind: "loopback"; readonly family: "ipv4" | "ipv6"; readonly port: number | null; readonly text: string }
  /** To another host; `unlessLocal` where the node's address is not known (no --destination). */
  | { readonly kind: "elsewhere"; readonly text: string; readonly unlessLocal: boolean }
  | { readonly kind: "unknown"; readonly text: string; readonly reason: string };

export interface NatRewrite {
  readonly rule: Rule;
  /** DNAT, REDIRECT, NETMAP, DNPT. */
  readonly target: string;
  readonly certain: boolean;
  readonly doubt: string | null;
  readonly to: NatDestination;
}

export interface Prerouting {
  /** As conntrack sees it after raw (UNTRACKED after a certain NOTRACK). */
  readonly packet: Packet;
  readonly marks: MatchState;
  readonly block: EarlierBlock | null;
  /** nat PREROUTING's destination rewrites the packet may meet, in order; only the last may be certain. */
  readonly rewrites: readonly NatRewrite[];
  readonly notes: readonly string[];
}

const isNotrack = (rule: Rule): boolean => extensionName(rule) === "NOTRACK" || (extensionName(rule) === "CT" && /--notrack|\bnotrack\b/.test(rule.text));

function hex(value: number | null): string {
  return value === null ? "unknown" : `0x${value.toString(16)}`;
}

/** Walks one earlier chain for DROP/REJECT and marks; returns the certain block, if any. */
function walkForBlocksAndMarks(
  ruleset: Ruleset,
  tableName: string,
  chainName: string,
  packet: Packet,
  marks: { current: MatchState },
  notes: string[],
  excluded: ReadonlySet<Rule>,
  extra: (met: EarlierRule) => void = () => {},
): EarlierBlock | null {
  let block: EarlierBlock | null = null;
  const table = ruleset.tables.get(tableName);
  const ended = walkEarlierChain(table, chainName, packet, marks, (met) => {
    if (block) return;
    const { rule, certain, doubt } = met;
    const t = rule.target;
    const where = `${tableName} ${rule.chain} rule ${rule.number}`;
    if (t.kind === "drop" || t.kind === "reject") {
      if (certain) block = { kind: "rule", table: tableName, rule, effect: t.kind, rejectWith: t.kind === "reject" ? t.rejectWith : null };
      else notes.push(`${where} ("${rule.text}") may ${t.kind} this connection before filter INPUT sees it (${doubt}); the verdict assumes it does not apply.`);
      return;
    }
    if (t.kind === "mark" || t.kind === "connmark-save" || t.kind === "connmark-restore") {
      const after = markTargetApplied(t, marks.current);
      const which = after.mark !== marks.current.mark ? "packet mark" : after.connmark !== marks.current.connmark ? "connection mark" : null;
      if (which === null) return;
      const value = which === "packet mark" ? after.mark : after.connmark;
      notes.push(certain && value !== null
        ? `${where} ("${rule.text}") sets the ${which} to ${hex(value)} before filter INPUT: the walk uses that mark.`
        : `${where} ("${rule.text}") may change the ${which} before filter INPUT (${certain ? "to a value this doctor cannot follow" : doubt}): -m ${which === "packet mark" ? "mark" : "connmark"} matches after it cannot be decided.`);
      return;
    }
    extra(met);
  }, excluded);
  return block ?? policyBlock(tableName, table?.chains.get(chainName), ended, notes);
}

// A built-in chain the walk ran off applies its policy, in raw and mangle as in filter (checked
// in the kernel: mangle PREROUTING or INPUT, raw PREROUTING with policy DROP time the client
// out). Not in nat: the kernel connects through a nat PREROUTING with policy DROP, which
// iptables-restore accepts. A policy the packet may reach is a note, as an uncertain DROP is.
function policyBlock(tableName: string, chain: Chain | undefined, ended: EarlierEnd, notes: string[]): EarlierBlock | null {
  if (tableName === "nat" || chain?.policy !== "DROP" || ended.end === "ended") return null;
  const policyText = chain.policyText ?? `:${chain.name} DROP`;
  if (ended.end === "returned") return { kind: "policy", table: tableName, chain: chain.name, policyText };
  notes.push(`The ${tableName} ${chain.name} policy DROP ("${policyText}") may drop this connection before filter INPUT sees it (${ended.doubt ?? "a rule before it cannot be decided"}); the verdict assumes it does not apply.`);
  return null;
}

function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  return ipaddr.isValid(text) ? ipaddr.parse(text) : null;
}

const isHere = (address: ipaddr.IPv4 | ipaddr.IPv6, node: ipaddr.IPv4 | ipaddr.IPv6 | null): boolean =>
  node !== null && address.kind() === node.kind() && address.toString() === node.toString();

// `--to-ports P[-Q]` (REDIRECT) or the port part of `--to-destination`: one port, or null for a
// range (which of its ports conntrack picks for the connection is not shown in the input).
function portOf(text: string | undefined, current: number): number | null | undefined {
  if (text === undefined || text === "") return current;
  const [lo, hi] = text.split("-");
  if (!/^\d+$/.test(lo!) || (hi !== undefined && !/^\d+$/.test(hi))) return undefined;
  return hi === undefined || hi === lo ? Number(lo) : null;
}

/** Where a DNAT/REDIRECT/NETMAP rule sends `packet`, from its options as iptables-save prints them. */
export function natDestinationOf(rule: Rule, name: string, packet: Packet): NatDestination {
  const option = (key: string) => new RegExp(`--${key}\\s+(\\S+)`).exec(rule.text)?.[1];
  if (name === "REDIRECT") {
    const ports = option("to-ports");
    const port = portOf(ports, packet.port);
    const text = `this node's port ${ports ?? packet.port}`;
    if (port === undefined) return { kind: "unknown", text, reason: `--to-ports ${ports} is not readable` };
    if (port === null) return { kind: "unknown", text, reason: `it redirects to a port range (${ports}), and which port the connection gets is not shown` };
    // REDIRECT sends it to the primary (first) address of the interface it came in by: this node,
    // but not always the address dialled (checked in the kernel: conntrack's reply comes from
    // the interface's first address when a secondary one was dialled).
    return { kind: "here", address: null, interfaceAddress: true, port, text };
  }
  if (name === "DNAT") {
    const to = option("to-destination");
    if (to === undefined) return { kind: "unknown", text: "an address the rule does not show", reason: "the DNAT has no --to-destination" };
    // `10.0.0.9`, `10.0.0.9:8080`, `:8080`, `10.0.0.1-10.0.0.3:80-90`, `[fd00::9]:8080`, `fd00::9`.
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(to) ?? (to.split(":").length > 2 ? [to, to, undefined] : /^([^:]*)(?::(.*))?$/.exec(to));
    const addressText = m?.[1] ?? "";
    const port = portOf(m?.[2], packet.port);
    if (port === undefined) return { kind: "unknown", text: to, reason: `--to-destination ${to} is not readable` };
    const [from, upTo] = addressText.split("-");
    const first = addressText === "" ? null : parseAddress(from!);
    if (addressText !== "" && first === null) return { kind: "unknown", text: to, reason: `--to-destination ${to} is not readable` };
    if (upTo !== undefined && upTo !== from) {
      return { kind: "unknown", text: to, reason: `it picks one of the addresses ${addressText}, and which is not shown` };
    }
    // A loopback address is this node's, but routing after nat PREROUTING does not deliver to it
    // from another interface (§4.3; checked in the kernel, below).
    if (first !== null && first.range() === "loopback") return { kind: "loopback", family: first.kind(), port, text: to };
    if (first === null || isHere(first, packet.destination)) {
      if (port === null) return { kind: "unknown", text: to, reason: `it rewrites to a port range (${m?.[2]}), and which port the connection gets is not shown` };
      return { kind: "here", address: first, port, text: first === null ? `this node's port ${port}` : to };
    }
    return { kind: "elsewhere", text: to, unlessLocal: packet.destination === null };
  }
  const to = option("to") ?? option("dst-pfx") ?? "?";
  return { kind: "unknown", text: to, reason: `${name} maps the destination into ${to}, which this doctor does not compute` };
}

/** The packet as filter INPUT sees it after a rewrite to this node: the new port and address, conntrack state DNAT too. */
export function rewrittenPacket(packet: Packet, to: Extract<NatDestination, { kind: "here" }>): Packet {
  const rewritten = { ...packet, port: to.port, ctstates: new Set([...packet.ctstates, "DNAT"]) };
  if (!to.interfaceAddress) return { ...rewritten, destination: to.address ?? packet.destination };
  // The interface's primary address is not in the input, nor is it always the --destination given.
  return { ...rewritten, destination: null, destinationUnknown: `REDIRECT made the destination the primary address of ${packet.inInterface || "the incoming interface"}, which the input does not show` };
}

/** raw, mangle and nat PREROUTING for a new connection (§4.3), in the kernel's order. */
export function walkPrerouting(ruleset: Ruleset, packet: Packet, excluded: ReadonlySet<Rule> = new Set()): Prerouting {
  const notes: string[] = [];
  const marks = { current: { mark: 0, connmark: 0 } as MatchState };
  let untracked = false;
  // raw runs before conntrack: the packet has no entry yet, which --ctstate and --state read as
  // INVALID (xt_conntrack, xt_state), not NEW; mangle and the rest see conntrack's NEW.
  const beforeConntrack: Packet = { ...packet, ctstates: new Set(["INVALID"]) };
  const block = walkForBlocksAndMarks(ruleset, "raw", "PREROUTING", beforeConntrack, marks, notes, excluded, ({ rule, certain }) => {
    if (!isNotrack(rule)) return;
    if (certain) untracked = true;
    notes.push(`raw ${rule.chain} rule ${rule.number} exempts this connection from conntrack ("${rule.text}"): its ctstate is UNTRACKED, not NEW${certain ? "; the walk used UNTRACKED" : "; the walk assumed it does not apply"}.`);
  });
  const tracked = untracked ? { ...packet, ctstates: new Set(["UNTRACKED"]) } : packet;
  const done = (b: EarlierBlock | null, rewrites: NatRewrite[] = []): Prerouting => ({ packet: tracked, marks: marks.current, block: b, rewrites, notes });
  if (block) return done(block);
  const mangled = walkForBlocksAndMarks(ruleset, "mangle", "PREROUTING", tracked, marks, notes, excluded);
  if (mangled) return done(mangled);
  // The kernel's nat hooks see only tracked connections: an UNTRACKED one is never rewritten.
  const rewrites: NatRewrite[] = [];
  if (!untracked) {
    walkEarlierChain(ruleset.tables.get("nat"), "PREROUTING", tracked, marks, ({ rule, certain, doubt }) => {
      const name = extensionName(rule);
      if (DESTINATION_NAT.has(name)) rewrites.push({ rule, target: name, certain, doubt, to: natDestinationOf(rule, name, tracked) });
    }, excluded);
  }
  return done(null, rewrites);
}

/** mangle INPUT, after routing has delivered the packet to this node. */
export function walkMangleInput(ruleset: Ruleset, packet: Packet, marks: MatchState, excluded: ReadonlySet<Rule> = new Set()): { marks: MatchState; block: EarlierBlock | null; notes: string[] } {
  const notes: string[] = [];
  const state = { current: marks };
  const block = walkForBlocksAndMarks(ruleset, "mangle", "INPUT", packet, state, notes, excluded);
  return { marks: state.current, block, notes };
}

/**
 * The first nat rule of `chainName` (OUTPUT for what the node sends) that may rewrite the
 * connection's destination before filter sees it, certainly or maybe; null where none can.
 */
export function mayRewriteDestination(ruleset: Ruleset, chainName: string, packet: Packet): Rule | null {
  let found: Rule | null = null;
  // Marks set in mangle OUTPUT are not followed here: they read as unknown.
  walkEarlierChain(ruleset.tables.get("nat"), chainName, packet, { current: { mark: null, connmark: null } }, ({ rule }) => {
    if (found === null && DESTINATION_NAT.has(extensionName(rule))) found = rule;
  });
  return found;
}
