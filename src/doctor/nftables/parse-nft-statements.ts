// Parses the statements of one rule as `nft list ruleset` prints it (nft 1.0.6; fixtures in
// test/fixtures/doctor/nftables/generated). An expression the parser does not know becomes an
// `unknown` statement: the evaluator then calls the rule indeterminate rather than guess.
import { markOperation, markSetTo, markUnchanged, parseUint32, thenMarkUpdate } from "../mark-update.js";
import type { MarkUpdate } from "../mark-update.js";
import { DoctorInputError } from "../input-error.js";
import type { NftAtom, NftKey, NftMapEntry, NftNatTarget, NftStatement, NftValue, NftVerdict } from "./nft-model.js";
import { checkNftLiterals, readAddressLiteral, readPortLiteral } from "./nft-literals.js";
import { payloadKey, payloadProtocols } from "./payload-key.js";
import { readTcpFlagsText } from "./tcp-flags.js";

const ops = new Set(["==", "!=", "<", ">", "<=", ">=", "eq", "ne"]);

export function tokenizeNft(text: string): string[] {
  const tokens: string[] = [];
  const re = /"(?:[^"\\]|\\.)*"|[{},]|[^\s{},]+/g;
  for (const m of text.matchAll(re)) tokens.push(m[0]);
  return tokens;
}

const payload = (t: string[], i: number): [NftKey, number] | null => {
  const k = payloadKey(t[i]!, t[i + 1] ?? "");
  return k ? [k, i + 2] : null;
};

const keyStarts: Record<string, (t: string[], i: number) => [NftKey, number] | null> = {
  ...Object.fromEntries(payloadProtocols.map((h) => [h, payload])),
  meta: (t, i) => {
    const k = t[i + 1];
    if (k === "l4proto" || k === "iifname" || k === "iif" || k === "nfproto" || k === "mark" || k === "oifname" || k === "oif") return [{ name: k }, i + 2];
    return null;
  },
  iifname: (_t, i) => [{ name: "iifname" }, i + 1],
  iif: (_t, i) => [{ name: "iif" }, i + 1],
  oifname: (_t, i) => [{ name: "oifname" }, i + 1],
  oif: (_t, i) => [{ name: "oif" }, i + 1],
  mark: (_t, i) => [{ name: "mark" }, i + 1],
  ct: (t, i) => (t[i + 1] === "state" || t[i + 1] === "status" ? [{ name: `ct ${t[i + 1]}` }, i + 2] : null),
  fib: (t, i) => (t[i + 1] === "daddr" && t[i + 2] === "type" ? [{ name: "fib daddr type" }, i + 3] : null),
};

/** Where `set` stands in a statement `meta|ct <key> set ...` or `mark set ...` starting at i; -1 if it is none. */
function setIndex(t: string[], i: number): number {
  const at = t[i] === "mark" ? i + 1 : t[i] === "meta" || t[i] === "ct" ? i + 2 : -1;
  return at > 0 && t[at] === "set" ? at : -1;
}

/** Where `dnat`/`redirect` at i starts a NAT statement (not `ct status dnat`, `icmp type redirect`). */
const natStarts = (t: string[], i: number) => (t[i] === "dnat" || t[i] === "redirect") && !["type", "status", "!=", "==", ",", "{"].includes(t[i - 1] ?? "");

/**
 * Returns the statements and the handle (`# handle N`), if shown. A literal nft would refuse
 * (`ip saddr 10.0.0.300`, `tcp dport 99999`: nft-literals.ts) is an input error on `line`.
 */
export function parseNftStatements(text: string, line?: number): { statements: NftStatement[]; handle: number | null } {
  let body = text;
  let handle: number | null = null;
  const hm = /\s#\s*handle\s+(\d+)\s*$/.exec(body);
  if (hm) {
    handle = Number(hm[1]);
    body = body.slice(0, hm.index);
  }
  const t = tokenizeNft(body);
  const out: NftStatement[] = [];
  let i = 0;
  // An expression we cannot read (`limit rate ...`, `ct count ...`) still ends in the rule's
  // verdict: keep the verdict, so the evaluator knows what the undecidable rule would do.
  const unknownRest = (from: number) => {
    let k = from;
    let depth = 0;
    for (; k < t.length; k++) {
      if (t[k] === "{") depth++;
      else if (t[k] === "}") depth--;
      // `tcp option maxseg size 1-535 tcp flags ! syn drop`: the flags part can still rule the
      // rule out, so the unknown expression ends where it starts.
      if (depth === 0 && k > from && t[k] === "tcp" && t[k + 1] === "flags") break;
      // Nor does a mark it sets: `limit rate 10/second meta mark set 0x8000` may set it.
      if (depth === 0 && k > from && setIndex(t, k) > 0) break;
      // Nor a NAT statement: `limit rate 10/second dnat to 10.0.0.9` may rewrite the destination.
      if (depth === 0 && k > from && natStarts(t, k)) break;
      // Nor a notrack: `limit rate 10/second notrack` may exempt the connection from conntrack.
      if (depth === 0 && k > from && t[k] === "notrack") break;
      const v = readVerdict(t, k);
      if (v && (v[1] === t.length || (t[v[1]] === "comment" && v[1] + 2 === t.length))) break;
    }
    out.push({ kind: "unknown", text: t.slice(from, k).join(" ") });
    i = k;
  };
  while (i < t.length) {
    const tok = t[i]!;
    if (tok === "counter") {
      i++;
      // `counter packets 0 bytes 0`, or a named counter object: `counter name "drops"` as nft 1.0.6
      // lists it, `counter "drops"` in other releases' syntax. Either only counts.
      if (t[i] === "packets") i += 4;
      else if (t[i] === "name" && t[i + 1] !== undefined) i += 2;
      else if (t[i]?.startsWith('"')) i++;
      out.push({ kind: "nop" });
      continue;
    }
    if (tok === "comment") {
      i += 2;
      continue;
    }
    if (tok === "notrack") {
      i++;
      out.push({ kind: "notrack" });
      continue;
    }
    if (tok === "log") {
      i++;
      while (i < t.length && ["prefix", "level", "flags", "group", "snaplen", "queue-threshold"].includes(t[i]!)) i += 2;
      out.push({ kind: "nop" });
      continue;
    }
    if (tok === "xt") {
      // iptables-nft compat expression nft cannot translate (`xt match recent`). A comment match
      // is harmless; anything else decides on state the ruleset does not show.
      const name = (t[i + 2] ?? "").replace(/"/g, "");
      out.push(name === "comment" ? { kind: "nop" } : { kind: "unknown", text: `xt ${t[i + 1]} ${name}` });
      i += 3;
      continue;
    }
    const verdict = readVerdict(t, i);
    if (verdict) {
      out.push({ kind: "verdict", verdict: verdict[0] });
      i = verdict[1];
      continue;
    }
    if (natStarts(t, i)) {
      const nat = readNat(t, i, text, line);
      out.push(nat[0]);
      i = nat[1];
      continue;
    }
    // `meta mark set ...` (short: `mark set ...`) sets the packet mark, which later `meta mark`
    // matches read, in this chain and in every later one (troubleshooting.md §4.3). `ct mark set`
    // sets the connection's mark, which no match the evaluator decides reads (`ct mark` matches
    // stay unknown expressions); other keys (`meta priority`, `ct helper`...) take one value and
    // change nothing the walk reads.
    const setAt = setIndex(t, i);
    if (setAt > 0) {
      if (tok === "mark" || t[i + 1] === "mark") {
        const [update, next] = readMarkValue(t, setAt + 1);
        out.push(tok === "ct" ? { kind: "nop" } : { kind: "mark-set", update });
        i = next;
      } else {
        out.push({ kind: "nop" });
        i = setAt + 2;
      }
      continue;
    }
    if (tok === "tcp" && t[i + 1] === "flags") {
      const flags = readTcpFlagsText(t, i + 2);
      if (!flags) {
        unknownRest(i);
        continue;
      }
      out.push(flags[0]);
      i = flags[1];
      continue;
    }
    const keys: NftKey[] = [];
    let j = i;
    for (;;) {
      const start = keyStarts[t[j]!];
      const k = start?.(t, j);
      if (!k) break;
      // `meta mark and 0xff00 == 0x8000`, `meta mark & 0xff00 == 0x8000`.
      const mask = k[0].name === "mark" && (t[k[1]] === "and" || t[k[1]] === "&") ? parseUint32(t[k[1] + 1] ?? "") : undefined;
      keys.push(mask === undefined ? k[0] : { ...k[0], mask });
      j = mask === undefined ? k[1] : k[1] + 2;
      if (t[j] === ".") j++;
      else break;
    }
    if (keys.length === 0) {
      unknownRest(i);
      continue;
    }
    if (t[j] === "vmap") {
      j++;
      if (t[j]?.startsWith("@")) {
        out.push({ kind: "vmap", keys, map: { ref: t[j]!.slice(1) } });
        i = j + 1;
        continue;
      }
      const parsed = readBraced(t, j);
      if (!parsed) {
        unknownRest(i);
        continue;
      }
      const entries = parsed.items.map(mapEntry);
      if (entries.some((e) => e === null)) {
        unknownRest(i);
        continue;
      }
      checkNftLiterals(keys, (entries as NftMapEntry[]).map((e) => e.key), `rule "${text}"`, line);
      out.push({ kind: "vmap", keys, map: entries as NftMapEntry[] });
      i = parsed.next;
      continue;
    }
    let op = "==";
    if (ops.has(t[j]!)) op = t[j++]!;
    if (op === "eq") op = "==";
    if (op === "ne") op = "!=";
    const value = readValue(t, j);
    if (!value) {
      unknownRest(i);
      continue;
    }
    if (value[0].kind === "set") checkNftLiterals(keys, value[0].items, `rule "${text}"`, line);
    out.push({ kind: "match", keys, op, value: value[0] });
    i = value[1];
  }
  return { statements: out, handle };
}

function readVerdict(t: string[], i: number): [NftVerdict, number] | null {
  const tok = t[i];
  if (tok === "accept" || tok === "drop" || tok === "continue" || tok === "return") return [{ kind: tok }, i + 1];
  if ((tok === "jump" || tok === "goto") && t[i + 1]) return [{ kind: tok, target: t[i + 1]!.replace(/"/g, "") }, i + 2];
  if (tok === "queue") {
    // `queue [num N | to N-M] [flags bypass,fanout] [bypass] [fanout]`, in either order.
    let j = i + 1;
    while (t[j] === "bypass" || t[j] === "fanout" || ((t[j] === "num" || t[j] === "to" || t[j] === "flags") && t[j + 1] !== undefined)) j += t[j] === "bypass" || t[j] === "fanout" ? 1 : 2;
    return [{ kind: "queue", options: t.slice(i + 1, j).join(" ") }, j];
  }
  if (tok === "reject") {
    if (t[i + 1] !== "with") return [{ kind: "reject", with: null }, i + 1];
    // `with tcp reset`, `with icmp host-unreachable`, `with icmp type host-unreachable`, `with icmpx ...`
    let j = i + 2;
    const parts: string[] = [t[j++]!];
    if (t[j] === "type") j++;
    parts.push(t[j++]!);
    return [{ kind: "reject", with: parts.join(" ") }, j];
  }
  return null;
}

/**
 * The value of `meta mark set <value>` as an update of the mark: a number, or the mark itself
 * (`mark`, `meta mark`) with `and|& M`, `or|| V`, `xor|^ V` applied in order. Anything else
 * (`ct mark`, a map lookup, numgen, a hash) is null, an update the doctor cannot compute; such a
 * value is taken to run to the rule's verdict, counter, log or comment (or its end).
 */
function readMarkValue(t: string[], i: number): [MarkUpdate | null, number] {
  let j = i;
  let update: MarkUpdate | null;
  const n = parseUint32(t[j] ?? "");
  if (n !== undefined) {
    update = markSetTo(n);
    j++;
  } else if (t[j] === "mark" || (t[j] === "meta" && t[j + 1] === "mark")) {
    update = markUnchanged;
    j += t[j] === "mark" ? 1 : 2;
  } else if (t[j] === "ct" && t[j + 1] === "mark") {
    update = null;
    j += 2;
  } else {
    let depth = 0;
    for (; j < t.length; j++) {
      if (t[j] === "{") depth++;
      else if (t[j] === "}") depth--;
      else if (depth === 0 && (readVerdict(t, j) || ["counter", "log", "comment", "notrack"].includes(t[j]!))) break;
    }
    return [null, j];
  }
  for (;;) {
    const v = parseUint32(t[j + 1] ?? "");
    const step = v === undefined ? undefined : markOperation(t[j] ?? "", v);
    if (step === undefined) break;
    update = update && thenMarkUpdate(update, step);
    j += 2;
  }
  return [update, j];
}

/**
 * `dnat [ip|ip6] to ADDR[:PORT] [flags]`, `redirect [to :PORT] [flags]` (nft(8) NAT STATEMENTS),
 * to the rule's end or its comment. A target other than one address and port (a map, a range, a
 * prefix, numgen) is kept as null: the evaluator cannot tell where the connection goes.
 */
function readNat(t: string[], i: number, ruleText: string, line: number | undefined): [NftStatement, number] {
  const nat = t[i] as "dnat" | "redirect";
  let j = i + 1;
  const family = t[j] === "ip" || t[j] === "ip6" ? t[j++] as "ip" | "ip6" : null;
  let end = j;
  while (end < t.length && t[end] !== "comment") end++;
  const args = t.slice(t[j] === "to" ? j + 1 : j, end).filter((a) => !/^(random|fully-random|persistent)(,(random|fully-random|persistent))*$/.test(a));
  return [{ kind: "nat", nat, family, to: natTarget(nat, args, `rule "${ruleText}"`, line) }, end];
}

/** The one address and port of a NAT target as nft lists it (`10.0.0.9:8080`, `[fd00::9]:8080`, `:8080`); null for anything else. */
export function natTarget(nat: "dnat" | "redirect", args: readonly string[], where: string, line?: number): NftNatTarget | null {
  if (args.length === 0) return nat === "redirect" ? { address: null, port: null } : null;
  if (args.length !== 1) return null;
  const arg = args[0]!;
  const m = /^\[([^\]]+)\](?::([^:]+))?$/.exec(arg) ?? /^([^:]*)(?::([^:]+))?$/.exec(arg) ?? [arg, arg, undefined];
  const [addressText, portText] = [m[1]!, m[2]];
  let port: number | null = null;
  if (portText !== undefined || (nat === "redirect" && addressText !== "")) {
    // `redirect to :8080`; older listings `redirect to 8080`.
    const p = readPortLiteral(portText ?? addressText);
    if (p.kind === "invalid") throw new DoctorInputError(`${where}: ${nat} to ${arg}: ${p.problem}, so nft refuses it`, { line, expected: `${nat} to ${nat === "dnat" ? "ADDRESS[:PORT]" : ":PORT"} with a port 0-65535` });
    if (p.kind !== "range" || p.lo !== p.hi) return null;
    port = p.lo;
  }
  if (nat === "redirect") return addressText === "" || portText === undefined ? { address: null, port } : null;
  if (addressText === "") return null;
  const a = readAddressLiteral(addressText);
  if (a.kind === "invalid") throw new DoctorInputError(`${where}: dnat to ${arg}: ${a.problem}, so nft refuses it`, { line, expected: "dnat to ADDRESS[:PORT] with an IPv4 address, or [IPv6 address]:PORT" });
  if (a.kind !== "prefix" || a.bits !== (a.net.kind() === "ipv4" ? 32 : 128)) return null;
  return { address: a.net.toString(), port };
}

function readBraced(t: string[], i: number): { items: string[][]; next: number } | null {
  if (t[i] !== "{") return null;
  const items: string[][] = [];
  let cur: string[] = [];
  let j = i + 1;
  for (; j < t.length && t[j] !== "}"; j++) {
    if (t[j] === ",") {
      if (cur.length) items.push(cur);
      cur = [];
    } else cur.push(t[j]!);
  }
  if (t[j] !== "}") return null;
  if (cur.length) items.push(cur);
  return { items, next: j + 1 };
}

/** A concatenated element `a . b . c` as its components. */
function atomOf(tokens: string[]): NftAtom {
  return tokens.filter((x) => x !== ".").map((x) => x.replace(/^"|"$/g, ""));
}

export function mapEntry(tokens: string[]): NftMapEntry | null {
  const colon = tokens.indexOf(":");
  if (colon < 0) return null;
  const v = readVerdict(tokens, colon + 1);
  return v ? { key: atomOf(tokens.slice(0, colon)), verdict: v[0] } : null;
}

function readValue(t: string[], i: number): [NftValue, number] | null {
  const tok = t[i];
  if (tok === undefined) return null;
  if (tok.startsWith("@")) return [{ kind: "ref", name: tok.slice(1) }, i + 1];
  if (tok === "{") {
    const b = readBraced(t, i);
    return b ? [{ kind: "set", items: b.items.map(atomOf) }, b.next] : null;
  }
  // `ct state established,related` (no braces) and concatenated values `a . b`.
  const items: NftAtom[] = [];
  let j = i;
  for (;;) {
    const comps: string[] = [t[j++]!];
    while (t[j] === "." && t[j + 1] !== undefined) {
      comps.push(t[j + 1]!);
      j += 2;
    }
    items.push(atomOf(comps));
    if (t[j] === "," && t[j + 1] !== undefined) j++;
    else break;
  }
  return [{ kind: "set", items }, j];
}
