// `tcp flags` matches, read from both listings and decided for the flow's packet: the first
// packet of a new TCP connection, a SYN (flags byte 0x02: syn set; fin, rst, ack... clear).
//
// nft's semantics for the flags bitmask (nft(8) "TCP HEADER EXPRESSION"; nftables
// tests/py/inet/tcp.t, where each input is listed with the form nft prints back):
//   tcp flags syn                          (flags & syn) != 0    implicit op on a bitmask
//   tcp flags syn,ack                      (flags & (syn|ack)) != 0
//   tcp flags ! syn                        (flags & syn) == 0
//   tcp flags == syn / tcp flags != cwr     flags == syn / flags != cwr (exact)
//   tcp flags syn / fin,syn,rst,ack        (flags & (fin|syn|rst|ack)) == syn   value / mask
//   tcp flags != syn / fin,syn,rst,ack     (flags & (fin|syn|rst|ack)) != syn
//   tcp flags & (fin | syn | rst | ack) == syn   the same, as newer nft lists it
//   tcp flags & (fin | syn) syn            implicit op after a mask: ==
//   tcp flags { syn, syn | ack }           flags is one of the set's values
// In `nft -j` JSON (libnftables-json(5)) the left side is {"payload": {"protocol": "tcp",
// "field": "flags"}} or {"&": [that, mask]}; "in" is the implicit bitmask op (any bit of the
// right side set), and a bitmask value is a name, a number, {"|": [a, b]} or a list of names.
import type { NftStatement } from "./nft-model.js";

export type TcpFlagsMatch = Extract<NftStatement, { kind: "tcp-flags" }>;

const bits: Readonly<Record<string, number>> = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20, ecn: 0x40, cwr: 0x80 };
const names = Object.keys(bits);

/** The flags byte of the flow's packet: a connection's first segment carries SYN alone. */
export const synFlags = bits.syn!;

/** Whether a new connection's SYN matches; the caller has already checked the flow is TCP. */
export function synMatches(m: TcpFlagsMatch): boolean {
  const masked = synFlags & m.mask;
  switch (m.op) {
    case "==": return m.values.includes(masked);
    case "!=": return !m.values.includes(masked);
    case "any": return (masked & m.values[0]!) !== 0;
    case "none": return (masked & m.values[0]!) === 0;
  }
}

function flagValue(word: string): number | null {
  const w = word.toLowerCase();
  if (Object.hasOwn(bits, w)) return bits[w]!;
  if (/^0x[0-9a-f]{1,2}$/.test(w) || /^\d{1,3}$/.test(w)) {
    const n = Number(w);
    return n <= 0xff ? n : null;
  }
  return null;
}

// --- text ---------------------------------------------------------------------------------

const opWords = new Set(["==", "!=", "!", "eq", "ne", "&", "/", "|", "(", ")"]);
const flagish = /^[()|&]*(?:(?:fin|syn|rst|psh|ack|urg|ecn|cwr|0x[0-9a-f]+|\d+)[()|&]*)+$/i;

/**
 * Reads the expression after `tcp flags` at t[i]; returns the statement and the index after it,
 * or null when the expression is not one whose meaning is certain (the caller keeps the rule
 * as an unknown expression then).
 */
export function readTcpFlagsText(t: readonly string[], i: number): [TcpFlagsMatch, number] | null {
  // The expression's tokens: flag names, numbers, operators, parentheses, commas between flags
  // and one `{ ... }` set. No statement of nft starts with any of these, so they all belong here.
  let j = i;
  const parts: string[] = [];
  while (j < t.length) {
    const tok = t[j]!;
    if (opWords.has(tok) || flagish.test(tok)) parts.push(tok);
    else if (tok === "," && flagish.test(t[j + 1] ?? "")) parts.push(tok);
    else if (tok === "{") {
      const close = t.indexOf("}", j);
      if (close < 0) return null;
      parts.push(...t.slice(j, close + 1));
      j = close + 1;
      continue;
    } else break;
    j++;
  }
  const m = parseFlagsExpression(parts.join(" "));
  return m ? [m, j] : null;
}

type Lexeme = string;

function lex(text: string): Lexeme[] | null {
  const out: Lexeme[] = [];
  const re = /\s*(==|!=|!|&|\||\(|\)|,|\/|\{|\}|[a-z0-9]+)/giy;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < text.length && (m = re.exec(text))) {
    out.push(m[1]!.toLowerCase());
    at = re.lastIndex;
  }
  return text.slice(at).trim() === "" ? out : null;
}

function parseFlagsExpression(text: string): TcpFlagsMatch | null {
  const x = lex(text);
  if (!x || x.length === 0) return null;
  let p = 0;
  // bitexpr := term ('|' term)*; term := name | number | '(' bitexpr ')'
  const bitexpr = (): number | null => {
    let v = term();
    while (v !== null && x[p] === "|") {
      p++;
      const r = term();
      v = r === null ? null : v | r;
    }
    return v;
  };
  const term = (): number | null => {
    const tok = x[p];
    if (tok === "(") {
      p++;
      const v = bitexpr();
      if (x[p] !== ")") return null;
      p++;
      return v;
    }
    const v = tok === undefined ? null : flagValue(tok);
    if (v !== null) p++;
    return v;
  };
  // list := bitexpr (',' bitexpr)*: a comma list of a bitmask type is the OR of its items.
  const list = (): { value: number; items: number } | null => {
    let value = bitexpr();
    let items = 1;
    while (value !== null && x[p] === ",") {
      p++;
      const r = bitexpr();
      value = r === null ? null : value | r;
      items++;
    }
    return value === null ? null : { value, items };
  };

  let andMask: number | null = null;
  if (x[p] === "&") {
    p++;
    andMask = bitexpr();
    if (andMask === null) return null;
  }
  let op: "implicit" | "==" | "!=" | "!" = "implicit";
  const o = x[p];
  if (o === "==" || o === "eq") op = "==";
  else if (o === "!=" || o === "ne") op = "!=";
  else if (o === "!") op = "!";
  if (op !== "implicit") p++;

  let values: number[];
  let isSet = false;
  let listItems = 1;
  if (x[p] === "{") {
    p++;
    isSet = true;
    values = [];
    for (;;) {
      const v = bitexpr();
      if (v === null) return null;
      values.push(v);
      if (x[p] === ",") p++;
      else break;
    }
    if (x[p] !== "}") return null;
    p++;
  } else {
    const l = list();
    if (!l) return null;
    values = [l.value];
    listItems = l.items;
  }
  let slashMask: number | null = null;
  if (x[p] === "/") {
    p++;
    const l = list();
    if (!l || isSet) return null;
    slashMask = l.value;
  }
  if (p !== x.length) return null;
  if (andMask !== null && slashMask !== null) return null;
  const mask = andMask ?? slashMask ?? 0xff;
  const masked = andMask !== null || slashMask !== null;
  switch (op) {
    case "!":
      // nft refuses `!` after a mask or with a set.
      return masked || isSet ? null : { kind: "tcp-flags", mask, op: "none", values };
    case "implicit":
      return { kind: "tcp-flags", mask, op: isSet || masked ? "==" : "any", values };
    case "==":
    case "!=":
      // `tcp flags == syn,ack` with no mask: whether nft compares exactly or tests the bits is
      // not settled here, so such a rule stays undecidable rather than guessed.
      if (!masked && listItems > 1) return null;
      return { kind: "tcp-flags", mask, op, values };
  }
}

// --- JSON ---------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function isFlagsPayload(v: unknown): boolean {
  const p = v && typeof v === "object" ? (v as Json).payload as Json | undefined : undefined;
  return !!p && p.protocol === "tcp" && p.field === "flags";
}

function jsonBits(v: unknown): number | null {
  if (typeof v === "string") return flagValue(v);
  if (typeof v === "number") return Number.isInteger(v) && v >= 0 && v <= 0xff ? v : null;
  if (Array.isArray(v)) return v.length === 0 ? null : v.reduce<number | null>((acc, e) => {
    const b = jsonBits(e);
    return acc === null || b === null ? null : acc | b;
  }, 0);
  if (v && typeof v === "object" && Array.isArray((v as Json)["|"])) return jsonBits((v as Json)["|"]);
  return null;
}

/** Whether a JSON match's left side reads the TCP flags (the caller then uses tcpFlagsFromJson). */
export function isTcpFlagsJson(left: unknown): boolean {
  if (isFlagsPayload(left)) return true;
  const and = left && typeof left === "object" ? (left as Json)["&"] : undefined;
  return Array.isArray(and) && and.length === 2 && isFlagsPayload(and[0]);
}

export function tcpFlagsFromJson(op: string, left: unknown, right: unknown): TcpFlagsMatch | null {
  const and = (left as Json)["&"] as unknown[] | undefined;
  const mask = and ? jsonBits(and[1]) : 0xff;
  if (mask === null) return null;
  const set = right && typeof right === "object" && Array.isArray((right as Json).set) ? (right as Json).set as unknown[] : null;
  const values = set ? set.map(jsonBits) : [jsonBits(right)];
  if (values.length === 0 || values.some((v) => v === null)) return null;
  const vs = values as number[];
  switch (op) {
    case "in":
      return set || and ? { kind: "tcp-flags", mask, op: "==", values: vs } : { kind: "tcp-flags", mask, op: "any", values: vs };
    case "==":
    case "!=":
      return { kind: "tcp-flags", mask, op, values: vs };
    case "!":
      return set || and ? null : { kind: "tcp-flags", mask, op: "none", values: vs };
    default:
      return null;
  }
}

// --- rendering (for the JSON listing's rule text) -----------------------------------------

function bitsText(v: number, sep: string): string {
  const on = names.filter((n) => (v & bits[n]!) !== 0);
  return v === 0 ? "0x0" : on.join(sep);
}

export function tcpFlagsText(m: TcpFlagsMatch): string {
  const value = (v: number) => bitsText(v, " | ");
  const rhs = m.values.length === 1 ? value(m.values[0]!) : `{ ${m.values.map(value).join(", ")} }`;
  const left = m.mask === 0xff ? "tcp flags" : `tcp flags & (${bitsText(m.mask, " | ")})`;
  switch (m.op) {
    case "any": return `tcp flags ${bitsText(m.values[0]!, ",")}`;
    case "none": return `tcp flags ! ${bitsText(m.values[0]!, ",")}`;
    case "==": return `${left} == ${rhs}`;
    case "!=": return `${left} != ${rhs}`;
  }
}
