// Converts the `expr` array of one rule from `nft -j list ruleset` (libnftables-json(5)) into
// statements, and renders them back in nft's text syntax for the report. Note: iptables-nft rules
// carry untranslated `xt` matches in JSON (conntrack, multiport...) that the text form shows
// translated, so the JSON form of such a ruleset is more often indeterminate.
import { markOperation, markSetTo, markUnchanged, parseUint32, thenMarkUpdate } from "../mark-update.js";
import type { MarkUpdate } from "../mark-update.js";
import type { NftAtom, NftKey, NftNatTarget, NftStatement, NftValue, NftVerdict } from "./nft-model.js";
import { checkNftLiterals } from "./nft-literals.js";
import { natTarget } from "./parse-nft-statements.js";
import { nftKeyText, payloadKey } from "./payload-key.js";
import { isTcpFlagsJson, tcpFlagsFromJson, tcpFlagsText } from "./tcp-flags.js";

type Json = Record<string, unknown>;

export function jsonRuleStatements(exprs: unknown[]): { statements: NftStatement[]; text: string } {
  const statements: NftStatement[] = [];
  const text: string[] = [];
  for (const e of exprs as Json[]) {
    const [kind, body] = Object.entries(e)[0] ?? ["", null];
    const verdict = jsonVerdict(kind, body);
    if (verdict) {
      statements.push({ kind: "verdict", verdict });
      text.push(verdictText(verdict));
    } else if (kind === "match" && isTcpFlagsJson((body as { left: unknown }).left)) {
      const m = body as { op: string; left: unknown; right: unknown };
      const flags = tcpFlagsFromJson(m.op, m.left, m.right);
      statements.push(flags ?? { kind: "unknown", text: JSON.stringify(e) });
      text.push(flags ? tcpFlagsText(flags) : JSON.stringify(e));
    } else if (kind === "match") {
      const m = body as { op: string; left: unknown; right: unknown };
      const keys = jsonKeys(m.left);
      const value = jsonValue(m.right);
      if (!keys || !value) {
        statements.push({ kind: "unknown", text: JSON.stringify(e) });
        text.push(JSON.stringify(e));
      } else {
        const op = m.op === "in" ? "==" : m.op;
        // A literal nft would refuse is an input error; the caller names the item.
        if (value.kind === "set") checkNftLiterals(keys, value.items, `statement ${JSON.stringify(e)}`);
        statements.push({ kind: "match", keys, op, value });
        // nft writes the `==` after a mask: `meta mark & 0x0000ff00 == 0x00008000`.
        text.push(`${keysText(keys)} ${op === "==" && keys.every((k) => k.mask === undefined) ? "" : op + " "}${valueText(value)}`);
      }
    } else if (kind === "vmap") {
      const v = body as { key: unknown; data: unknown };
      const keys = jsonKeys(v.key);
      const data = v.data;
      if (keys && typeof data === "string" && data.startsWith("@")) {
        statements.push({ kind: "vmap", keys, map: { ref: data.slice(1) } });
        text.push(`${keysText(keys)} vmap ${data}`);
      } else if (keys && data && typeof data === "object" && Array.isArray((data as Json).set)) {
        const entries = ((data as Json).set as [unknown, Json][]).map(([k, vd]) => {
          const [vk, vb] = Object.entries(vd)[0] ?? ["", null];
          return { key: atomOf(k), verdict: jsonVerdict(vk, vb) };
        });
        if (entries.every((x) => x.verdict)) {
          const map = entries as { key: NftAtom; verdict: NftVerdict }[];
          checkNftLiterals(keys, map.map((x) => x.key), `statement ${JSON.stringify(e)}`);
          statements.push({ kind: "vmap", keys, map });
          text.push(`${keysText(keys)} vmap { ${map.map((x) => `${x.key.join(" . ")} : ${verdictText(x.verdict)}`).join(", ")} }`);
          continue;
        }
        statements.push({ kind: "unknown", text: JSON.stringify(e) });
        text.push(JSON.stringify(e));
      } else {
        statements.push({ kind: "unknown", text: JSON.stringify(e) });
        text.push(JSON.stringify(e));
      }
    } else if (kind === "dnat" || kind === "redirect") {
      const nat = jsonNat(kind, body, e);
      statements.push(nat);
      text.push(nat.to === null ? JSON.stringify(e) : natText(nat));
    } else if (kind === "mangle" && isMetaMark((body as { key: unknown }).key)) {
      // `meta mark set ...` (libnftables-json(5) MANGLE): the packet mark later matches read.
      const update = jsonMarkUpdate((body as { value: unknown }).value);
      statements.push({ kind: "mark-set", update });
      text.push(`meta mark set ${update === null ? JSON.stringify((body as { value: unknown }).value) : markUpdateText(update)}`);
    } else if (kind === "notrack") {
      statements.push({ kind: "notrack" });
      text.push("notrack");
    } else if (kind === "counter" || kind === "log" || kind === "mangle") {
      // Other mangling (`ct mark set`, header fields) changes nothing the walk reads.
      statements.push({ kind: "nop" });
      text.push(kind === "mangle" ? "mangle" : kind);
    } else if (kind === "xt") {
      const x = body as { type: string; name: string };
      statements.push(x.name === "comment" ? { kind: "nop" } : { kind: "unknown", text: `xt ${x.type} ${x.name}` });
      text.push(`xt ${x.type} ${x.name}`);
    } else {
      statements.push({ kind: "unknown", text: JSON.stringify(e) });
      text.push(JSON.stringify(e));
    }
  }
  return { statements, text: text.join(" ") };
}

/**
 * libnftables-json(5) NAT: `{"dnat": {"family": "ip", "addr": "10.0.0.9", "port": 8080}}`,
 * `{"redirect": {"port": 8080}}`, `{"redirect": null}`; an `addr` or `port` that is not one value
 * (a range, a map) leaves the target unknown.
 */
function jsonNat(nat: "dnat" | "redirect", body: unknown, e: Json): Extract<NftStatement, { kind: "nat" }> {
  const b = (body ?? {}) as { family?: unknown; addr?: unknown; port?: unknown };
  const family = b.family === "ip" || b.family === "ip6" ? b.family : null;
  const one = (v: unknown) => typeof v === "string" || typeof v === "number";
  if ((b.addr !== undefined && !one(b.addr)) || (b.port !== undefined && !one(b.port))) return { kind: "nat", nat, family, to: null };
  const addr = b.addr === undefined ? "" : String(b.addr);
  const arg = `${addr.includes(":") && b.port !== undefined ? `[${addr}]` : addr}${b.port === undefined ? "" : `:${String(b.port)}`}`;
  return { kind: "nat", nat, family, to: natTarget(nat, arg === "" ? [] : [arg], `statement ${JSON.stringify(e)}`) };
}

/** A NAT statement as nft lists it: `dnat ip to 10.0.0.9:8080`, `redirect to :8080`. */
export function natText(st: Extract<NftStatement, { kind: "nat" }>): string {
  const target = (to: NftNatTarget) =>
    to.address === null ? (to.port === null ? "" : ` to :${to.port}`)
      : ` to ${to.address.includes(":") && to.port !== null ? `[${to.address}]` : to.address}${to.port === null ? "" : `:${to.port}`}`;
  return `${st.nat}${st.family ? ` ${st.family}` : ""}${st.to === null ? "" : target(st.to)}`;
}

function jsonVerdict(kind: string, body: unknown): NftVerdict | null {
  if (kind === "accept" || kind === "drop" || kind === "continue" || kind === "return") return { kind };
  if (kind === "jump" || kind === "goto") return { kind, target: (body as { target: string }).target };
  if (kind === "queue") {
    // libnftables-json(5): {"queue": {"num": N | {"range": [N, M]}, "flags": "bypass" | [...]}}, both optional.
    const q = (body ?? {}) as { num?: unknown; flags?: unknown };
    const num = q.num === undefined ? [] : [`num ${atomOf(q.num).join("")}`];
    const flags = q.flags === undefined ? [] : [`flags ${([] as unknown[]).concat(q.flags).join(",")}`];
    return { kind: "queue", options: [...flags, ...num].join(" ") };
  }
  if (kind === "reject") {
    const r = (body ?? {}) as { type?: string; expr?: string };
    return { kind: "reject", with: r.type ? (r.type === "tcp reset" ? "tcp reset" : `${r.type} ${r.expr ?? ""}`.trim()) : null };
  }
  return null;
}

const isMetaMark = (v: unknown): boolean => !!v && typeof v === "object" && (v as { meta?: { key?: unknown } }).meta?.key === "mark";

/**
 * A `meta mark set` value: a number, or the mark with `&`, `|`, `^` (nested, innermost first) of
 * numbers, as nft -j writes `mark and M or V`; null for anything else (`ct mark`, a map...).
 */
function jsonMarkUpdate(v: unknown): MarkUpdate | null {
  if (typeof v === "number" || typeof v === "string") {
    const n = parseUint32(String(v));
    return n === undefined ? null : markSetTo(n);
  }
  if (isMetaMark(v)) return markUnchanged;
  if (!v || typeof v !== "object") return null;
  const [op, args] = Object.entries(v as Json)[0] ?? ["", null];
  if (!Array.isArray(args) || args.length !== 2) return null;
  const inner = jsonMarkUpdate(args[0]);
  const n = parseUint32(String(args[1]));
  if (inner === null || n === undefined) return null;
  const step = ["&", "|", "^"].includes(op) ? markOperation(op, n) : undefined;
  return step === undefined ? null : thenMarkUpdate(inner, step);
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

/** An update as nft would write it: `0x00008000`, or `mark and 0xffff7fff xor 0x00008000`. */
function markUpdateText(u: MarkUpdate): string {
  return u.and === 0 ? hex(u.xor) : `mark${u.and === 0xffffffff ? "" : ` and ${hex(u.and)}`}${u.xor === 0 ? "" : ` xor ${hex(u.xor)}`}`;
}

function jsonKeys(left: unknown): NftKey[] | null {
  if (!left || typeof left !== "object") return null;
  const o = left as Json;
  // `meta mark & M` (`{"&": [{"meta": {"key": "mark"}}, M]}`).
  const and = o["&"];
  if (Array.isArray(and) && and.length === 2 && isMetaMark(and[0])) {
    const mask = parseUint32(String(and[1]));
    return mask === undefined ? null : [{ name: "mark", mask }];
  }
  if (Array.isArray(o.concat)) {
    const parts = (o.concat as unknown[]).map(jsonKeys);
    return parts.every((p) => p) ? parts.flatMap((p) => p!) : null;
  }
  if (o.payload) {
    const p = o.payload as { protocol?: unknown; field?: unknown };
    const key = typeof p.protocol === "string" && typeof p.field === "string" ? payloadKey(p.protocol, p.field) : null;
    return key ? [key] : null;
  }
  if (o.meta) {
    const k = (o.meta as { key: string }).key;
    return ["l4proto", "iifname", "iif", "nfproto", "mark", "oifname", "oif"].includes(k) ? [{ name: k }] : null;
  }
  if (o.ct) {
    const k = (o.ct as { key: string }).key;
    return k === "state" || k === "status" ? [{ name: `ct ${k}` }] : null;
  }
  if (o.fib) {
    const f = o.fib as { result: string; flags?: string[] };
    return f.result === "type" && f.flags?.length === 1 && f.flags[0] === "daddr" ? [{ name: "fib daddr type" }] : null;
  }
  return null;
}

function atomOf(v: unknown): NftAtom {
  if (v && typeof v === "object") {
    const o = v as Json;
    if (Array.isArray(o.concat)) return (o.concat as unknown[]).flatMap(atomOf);
    if (o.prefix) {
      const p = o.prefix as { addr: string; len: number };
      return [`${p.addr}/${p.len}`];
    }
    if (Array.isArray(o.range)) return [(o.range as unknown[]).map(String).join("-")];
  }
  return [String(v)];
}

function jsonValue(right: unknown): NftValue | null {
  if (typeof right === "string" && right.startsWith("@")) return { kind: "ref", name: right.slice(1) };
  if (right && typeof right === "object" && Array.isArray((right as Json).set)) return { kind: "set", items: ((right as Json).set as unknown[]).map(atomOf) };
  if (Array.isArray(right)) return { kind: "set", items: right.map(atomOf) };
  if (right === null || right === undefined) return null;
  return { kind: "set", items: [atomOf(right)] };
}

function keysText(keys: readonly NftKey[]): string {
  return keys.map(nftKeyText).join(" . ");
}

function valueText(v: NftValue): string {
  if (v.kind === "ref") return `@${v.name}`;
  const items = v.items.map((a) => a.join(" . "));
  return items.length === 1 ? items[0]! : `{ ${items.join(", ")} }`;
}

export function verdictText(v: NftVerdict): string {
  switch (v.kind) {
    case "jump":
    case "goto":
      return `${v.kind} ${v.target}`;
    case "reject":
      return v.with ? `reject with ${v.with}` : "reject";
    case "queue":
      return v.options ? `queue ${v.options}` : "queue";
    default:
      return v.kind;
  }
}
