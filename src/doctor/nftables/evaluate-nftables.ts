// Walks a new connection through every nftables base chain it meets on its way to a local socket
// (troubleshooting.md §4.4, doctor-cli.md `doctor nftables`): filter-type chains on the prerouting
// hook, then on the input hook, each hook's chains in priority order, for family ip (IPv4) or ip6
// (IPv6) plus inet. `accept` ends only its base chain — the next base chain still runs — while
// `drop` and `reject` are final; a base chain that runs off its end applies its policy. nat/route
// chains do not filter (a DNAT on prerouting is outside this check).
import ipaddr from "ipaddr.js";
import type { NftAtom, NftChain, NftKey, NftRule, NftRuleset, NftStatement, NftTable, NftValue, NftVerdict } from "./nft-model.js";
import { synMatches } from "./tcp-flags.js";

export interface NftFlow {
  readonly source: string;
  readonly destination: string | null;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  readonly inInterface: string;
}

export interface NftPlace { readonly table: NftTable; readonly chain: NftChain; readonly rule: NftRule | null }

export interface NftEvaluation {
  readonly verdict: "allowed" | "blocked" | "indeterminate";
  readonly effect: "accept" | "drop" | "reject" | null;
  /** The deciding rule or policy (for allowed: the last base chain's accept); null when no chain filters. */
  readonly place: NftPlace | null;
  readonly reject: string | null;
  readonly reason: string | null;
  readonly assumptions: readonly string[];
  readonly baseChains: readonly NftPlace[];
}

type Tri = true | false | "unknown";
type Walk =
  | { kind: "continue" }
  | { kind: "final"; effect: "accept" | "drop" | "reject"; place: NftPlace; reject: string | null }
  | { kind: "unknown"; place: NftPlace; reason: string };

const serviceNames: Record<string, number> = { ssh: 22, http: 80, https: 443, openvpn: 1194 };
const hookOrder = ["prerouting", "input"];
const maxDepth = 64;

export function evaluateNftables(ruleset: NftRuleset, flow: NftFlow): NftEvaluation {
  const src = parseAddr(flow.source);
  const family = src.kind() === "ipv6" ? "ip6" : "ip";
  const dst = flow.destination === null ? null : parseAddr(flow.destination);
  const notes = new Set<string>(["The connection is new (ct state new): rules accepting established/related traffic do not apply."]);
  const ctx: Ctx = { flow, family, src, dst, notes };
  const bases: NftPlace[] = [];
  for (const table of ruleset.tables) {
    if (table.family !== family && table.family !== "inet") continue;
    for (const chain of table.chains) {
      if (chain.base && chain.base.type === "filter" && hookOrder.includes(chain.base.hook)) bases.push({ table, chain, rule: null });
    }
  }
  // Stable sort: equal priorities keep listed order.
  bases.sort((a, b) => hookOrder.indexOf(a.chain.base!.hook) - hookOrder.indexOf(b.chain.base!.hook) || a.chain.base!.priority - b.chain.base!.priority);
  let last: NftPlace | null = null;
  for (const base of bases) {
    const r = walk(base.table, base.chain, ctx, 0);
    if (r.kind === "unknown") {
      return { verdict: "indeterminate", effect: null, place: r.place, reject: null, reason: r.reason, assumptions: [...notes], baseChains: bases };
    }
    if (r.kind === "continue") {
      const policy = base.chain.base!.policy;
      if (policy === "drop") return { verdict: "blocked", effect: "drop", place: base, reject: null, reason: null, assumptions: [...notes], baseChains: bases };
      last = base;
      continue;
    }
    if (r.effect !== "accept") return { verdict: "blocked", effect: r.effect, place: r.place, reject: r.reject, reason: null, assumptions: [...notes], baseChains: bases };
    last = r.place;
  }
  return { verdict: "allowed", effect: last ? "accept" : null, place: last, reject: null, reason: null, assumptions: [...notes], baseChains: bases };
}

interface Ctx {
  flow: NftFlow;
  family: "ip" | "ip6";
  src: ipaddr.IPv4 | ipaddr.IPv6;
  dst: ipaddr.IPv4 | ipaddr.IPv6 | null;
  notes: Set<string>;
}

function walk(table: NftTable, chain: NftChain, ctx: Ctx, depth: number): Walk {
  for (const rule of chain.rules) {
    const place: NftPlace = { table, chain, rule };
    let matched: Tri = true;
    let unknownWhy = "";
    let verdict: NftVerdict | null = null;
    for (const st of rule.statements) {
      if (st.kind === "nop") continue;
      if (st.kind === "verdict") {
        verdict = st.verdict;
        break;
      }
      if (st.kind === "unknown") {
        matched = "unknown";
        unknownWhy ||= `the evaluator cannot decide "${st.text}"`;
        continue;
      }
      const m = st.kind === "tcp-flags" ? matchTcpFlags(st, ctx) : st.kind === "match" ? matchStatement(st, table, ctx) : vmapLookup(st, table, ctx);
      if (m.result === false) {
        matched = false;
        break;
      }
      if (m.result === "unknown") {
        matched = "unknown";
        unknownWhy ||= m.why;
        continue;
      }
      if (st.kind === "vmap" && m.verdict) {
        verdict = m.verdict;
        break;
      }
      if (st.kind === "vmap") {
        matched = matched === "unknown" ? "unknown" : false; // no map entry: the rule does nothing
        if (matched === false) break;
      }
    }
    // A rule without a verdict, or with `continue`, changes nothing here, matched or not.
    if (matched === false || verdict === null || verdict.kind === "continue") continue;
    if (matched === "unknown") return { kind: "unknown", place, reason: unknownWhy };
    switch (verdict.kind) {
      case "accept":
      case "drop":
        return { kind: "final", effect: verdict.kind, place, reject: null };
      case "reject":
        return { kind: "final", effect: "reject", place, reject: verdict.with ?? "icmp port-unreachable (tcp reset for TCP in inet tables)" };
      case "return":
        return { kind: "continue" };
      case "jump":
      case "goto": {
        const target = table.chains.find((c) => c.name === verdict.target);
        if (!target) return { kind: "unknown", place, reason: `chain ${verdict.target} is not in the input` };
        // Name the jump that goes too deep: the chain it is in need not be a base chain with a policy.
        if (depth >= maxDepth) return { kind: "unknown", place, reason: `jumps nest deeper than ${maxDepth} chains (a loop?)` };
        const r = walk(table, target, ctx, depth + 1);
        if (r.kind !== "continue" || verdict.kind === "goto") return r;
        continue;
      }
    }
  }
  return { kind: "continue" };
}

interface MatchResult { result: Tri; why: string; verdict?: NftVerdict }

function matchStatement(st: Extract<NftStatement, { kind: "match" }>, table: NftTable, ctx: Ctx): MatchResult {
  const items = valueItems(st.value, table);
  // A key that does not apply to the packet (tcp dport or icmp type for UDP, ip saddr for IPv6)
  // never matches, whatever the operator or the set: nft checks the protocol before the field.
  if (!keysApply(st.keys, ctx)) return { result: false, why: "" };
  if (items === null) return { result: "unknown", why: `set @${(st.value as { name: string }).name} is not in the input` };
  const negate = st.op === "!=";
  if (!["==", "!="].includes(st.op)) {
    if (st.keys.length === 1 && /^\d+$/.test(items[0]?.[0] ?? "")) {
      const v = keyValue(st.keys[0]!, ctx);
      if (typeof v.value === "number") {
        const n = Number(items[0]![0]);
        const ok = st.op === "<" ? v.value < n : st.op === ">" ? v.value > n : st.op === "<=" ? v.value <= n : v.value >= n;
        return { result: ok, why: "" };
      }
      if (v.value === false) return { result: false, why: "" };
    }
    return { result: "unknown", why: `comparison ${st.op} is not evaluated` };
  }
  const r = matchItems(st.keys, items, ctx);
  if (r.result === "unknown") return r;
  return { result: negate ? !r.result : r.result, why: "" };
}

// The flow's packet is a new connection's SYN (flags: syn alone). A flags match never matches
// a UDP packet: nft checks the protocol before it reads the header field (payload-key.ts).
function matchTcpFlags(st: Extract<NftStatement, { kind: "tcp-flags" }>, ctx: Ctx): MatchResult {
  if (ctx.flow.protocol !== "tcp") return { result: false, why: "" };
  ctx.notes.add("The packet is the connection's first TCP segment: tcp flags syn, with fin, rst, psh, ack, urg, ecn and cwr clear.");
  return { result: synMatches(st), why: "" };
}

function vmapLookup(st: Extract<NftStatement, { kind: "vmap" }>, table: NftTable, ctx: Ctx): MatchResult {
  let entries = "ref" in st.map ? table.sets.get(st.map.ref)?.entries : st.map;
  if (entries === undefined) return { result: "unknown", why: `map @${(st.map as { ref: string }).ref} is not in the input` };
  entries = entries ?? [];
  if (!keysApply(st.keys, ctx)) return { result: true, why: "" };
  let sawUnknown = "";
  for (const e of entries) {
    const r = matchItems(st.keys, [e.key], ctx);
    if (r.result === true) return { result: true, why: "", verdict: e.verdict };
    if (r.result === "unknown") sawUnknown ||= r.why;
  }
  return sawUnknown ? { result: "unknown", why: sawUnknown } : { result: true, why: "" };
}

function valueItems(v: NftValue, table: NftTable): readonly NftAtom[] | null {
  if (v.kind === "set") return v.items;
  const set = table.sets.get(v.name);
  return set ? set.elements : null;
}

function keysApply(keys: readonly NftKey[], ctx: Ctx): boolean {
  return keys.every((k) => (!k.impliedFamily || k.impliedFamily === ctx.family) && (!k.impliedProto || k.impliedProto === ctx.flow.protocol));
}

function matchItems(keys: readonly NftKey[], items: readonly NftAtom[], ctx: Ctx): MatchResult {
  if (!keysApply(keys, ctx)) return { result: false, why: "" };
  let unknown = "";
  for (const item of items) {
    if (item.length !== keys.length) {
      unknown ||= `element ${item.join(" . ")} does not fit ${keys.length} key(s)`;
      continue;
    }
    let all: Tri = true;
    for (let i = 0; i < keys.length; i++) {
      const r = matchAtom(keys[i]!, item[i]!, ctx);
      if (r.result === false) {
        all = false;
        break;
      }
      if (r.result === "unknown") {
        all = "unknown";
        unknown ||= r.why;
      }
    }
    if (all === true) return { result: true, why: "" };
  }
  return unknown ? { result: "unknown", why: unknown } : { result: false, why: "" };
}

function keyValue(key: NftKey, ctx: Ctx): { value: number | string | false | null; why?: string } {
  switch (key.name) {
    case "dport":
      return { value: ctx.flow.port };
    default:
      return { value: null };
  }
}

function matchAtom(key: NftKey, atom: string, ctx: Ctx): MatchResult {
  const no = { result: false as const, why: "" };
  const yes = { result: true as const, why: "" };
  switch (key.name) {
    case "saddr":
      return { result: addrIn(ctx.src, atom), why: "" };
    case "daddr":
      if (ctx.dst === null) return { result: "unknown", why: "the rule matches on the destination address, which is not known (give --destination)" };
      return { result: addrIn(ctx.dst, atom), why: "" };
    case "dport": {
      const [lo, hi] = portRange(atom);
      if (Number.isNaN(lo)) return { result: "unknown", why: `port ${atom} is not a number` };
      return ctx.flow.port >= lo && ctx.flow.port <= hi ? yes : no;
    }
    case "sport":
      return { result: "unknown", why: "the rule matches on the client's source port, which is not known" };
    case "l4proto": {
      const p = atom === "6" ? "tcp" : atom === "17" ? "udp" : atom;
      return p === ctx.flow.protocol ? yes : no;
    }
    case "nfproto":
      return (atom === "ipv4") === (ctx.family === "ip") ? yes : no;
    case "iifname":
    case "iif":
      return globMatch(atom, ctx.flow.inInterface) ? yes : no;
    case "oifname":
    case "oif":
      return no; // input/prerouting packets have no output interface
    case "ct state":
      return atom === "new" ? yes : no;
    case "ct status":
      return atom === "dnat" || atom === "snat" ? { result: "unknown", why: "ct status depends on NAT" } : no;
    case "fib daddr type":
      ctx.notes.add("The destination is a local address of the node (fib daddr type local).");
      return atom === "local" ? yes : no;
    case "mark":
      ctx.notes.add("The packet carries no mark (meta mark 0) when it reaches these chains.");
      return Number(atom) === 0 ? yes : no;
    default:
      return { result: "unknown", why: `key ${key.name} is not evaluated` };
  }
}

function portRange(atom: string): [number, number] {
  const named = serviceNames[atom];
  if (named !== undefined) return [named, named];
  const m = /^(\d+)(?:-(\d+))?$/.exec(atom);
  if (!m) return [NaN, NaN];
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

function globMatch(pattern: string, name: string): boolean {
  return pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

export function parseAddr(text: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const a = ipaddr.parse(text);
  return a.kind() === "ipv6" && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
}

function addrIn(addr: ipaddr.IPv4 | ipaddr.IPv6, atom: string): boolean {
  try {
    if (atom.includes("/")) {
      const [net, bits] = ipaddr.parseCIDR(atom);
      return net.kind() === addr.kind() && addr.match(net as never, bits);
    }
    const dash = atom.indexOf("-");
    if (dash > 0) {
      const lo = ipaddr.parse(atom.slice(0, dash)).toByteArray();
      const hi = ipaddr.parse(atom.slice(dash + 1)).toByteArray();
      const a = addr.toByteArray();
      if (lo.length !== a.length) return false;
      return cmp(a, lo) >= 0 && cmp(a, hi) <= 0;
    }
    const other = ipaddr.parse(atom);
    return other.kind() === addr.kind() && other.toString() === addr.toString();
  } catch {
    return false;
  }
}

function cmp(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
