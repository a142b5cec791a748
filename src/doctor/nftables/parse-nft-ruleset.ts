// Parses `nft list ruleset` (with or without `-a`) and `nft -j list ruleset` into one model.
// Format detected from content: JSON starts with `{`. Layout per nft(8) and the real nft 1.0.6
// output in test/fixtures/doctor/nftables/generated.
import { DoctorInputError } from "../input-error.js";
import { findJsonSyntaxError, jsonPlace, jsonPlaceText, memberItemOffsets } from "../json-places.js";
import type { NftAtom, NftBaseHook, NftChain, NftFamily, NftMapEntry, NftRule, NftRuleset, NftSet, NftStatement, NftTable } from "./nft-model.js";
import { priorityNames } from "./nft-model.js";
import { mapEntry, parseNftStatements, tokenizeNft } from "./parse-nft-statements.js";
import { jsonRuleStatements } from "./parse-nft-json.js";

const families = new Set(["ip", "ip6", "inet", "arp", "bridge", "netdev"]);
const legacyRe = /iptables-legacy tables present/;

export function parseNftRuleset(text: string): NftRuleset {
  return text.trimStart().startsWith("{") ? parseJson(text) : parseText(text);
}

export function parsePriority(expr: string, line: number | undefined): number {
  const m = /^(-?\d+)$|^([a-z]+)(?:\s*([+-])\s*(\d+))?$/.exec(expr.trim());
  if (m?.[1] !== undefined) return Number(m[1]);
  const base = m ? priorityNames[m[2]!] : undefined;
  if (base === undefined) throw new DoctorInputError(`unknown chain priority ${JSON.stringify(expr)}`, { line, expected: "a number or raw, mangle, dstnat, filter, security, srcnat (optionally ± N)" });
  return m![3] === "-" ? base - Number(m![4]) : base + Number(m![4] ?? 0);
}

type BaseHookSpec = Omit<NftBaseHook, "policy">;
interface MutableChain { name: string; base: BaseHookSpec | null; policy: { value: NftBaseHook["policy"]; line: number } | null; rules: NftRule[] }
interface MutableTable { family: NftFamily; name: string; chains: MutableChain[]; sets: Map<string, NftSet> }

function parseText(text: string): NftRuleset {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const tables: MutableTable[] = [];
  let legacyWarning = false;
  let table: MutableTable | null = null;
  let chain: MutableChain | null = null;
  let set: { name: string; isMap: boolean; body: string[] } | null = null;
  let skipDepth = 0;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!;
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      if (legacyRe.test(line)) legacyWarning = true;
      continue;
    }
    const err = (expected: string) => new DoctorInputError(`unexpected line in nft ruleset: ${JSON.stringify(line)}`, { line: lineNo, expected });
    const noHandle = line.replace(/\s#\s*handle\s+\d+\s*$/, "");
    if (skipDepth > 0) {
      skipDepth += (noHandle.match(/\{/g)?.length ?? 0) - (noHandle.match(/\}/g)?.length ?? 0);
      continue;
    }
    if (set) {
      if (noHandle === "}" && set.body.join(" ").split("{").length === set.body.join(" ").split("}").length) {
        table!.sets.set(set.name, buildSet(set.name, set.isMap, set.body.join(" ")));
        set = null;
      } else set.body.push(noHandle);
      continue;
    }
    if (table === null) {
      const m = /^table\s+(\S+)\s+(\S+)\s*\{$/.exec(noHandle);
      if (!m || !families.has(m[1]!)) throw err('"table <ip|ip6|inet|arp|bridge|netdev> <name> {"');
      table = { family: m[1] as NftFamily, name: m[2]!, chains: [], sets: new Map() };
      tables.push(table);
      continue;
    }
    if (chain === null) {
      if (noHandle === "}") {
        table = null;
        continue;
      }
      let m = /^chain\s+(\S+)\s*\{$/.exec(noHandle);
      if (m) {
        chain = { name: m[1]!.replace(/"/g, ""), base: null, policy: null, rules: [] };
        table.chains.push(chain);
        continue;
      }
      m = /^(set|map)\s+(\S+)\s*\{$/.exec(noHandle);
      if (m) {
        set = { name: m[2]!, isMap: m[1] === "map", body: [] };
        continue;
      }
      if (/^(flowtable|ct\s+\w+|counter|quota|limit|secmark|synproxy)\s+\S+.*\{$/.test(noHandle)) {
        skipDepth = 1;
        continue;
      }
      if (/^(comment\s+".*"|flags\s+.*)$/.test(noHandle)) continue;
      throw err('"chain <name> {", "set <name> {", "map <name> {" or "}"');
    }
    if (noHandle === "}") {
      if (chain.policy !== null && chain.base === null) {
        throw new DoctorInputError(`chain ${chain.name} has a policy but no hook`, { line: chain.policy.line, expected: '"type <filter|nat|route> hook <hook> priority <prio>;" in a chain with a policy' });
      }
      chain = null;
      continue;
    }
    // The chain's own properties (nft's chain_block grammar): `type ... hook ... priority ...`,
    // `policy ...`, `comment ...`, `devices = ...`, `flags ...`, each ended by `;` or by the end
    // of the line, so several may share a line (`nft list ruleset` prints `type ...; policy ...;`)
    // or each stand on its own, in any order; a rule may follow them after a `;`.
    if (chainProperty.test(noHandle)) {
      for (const item of splitStatements(noHandle)) {
        if (chainProperty.test(item)) setChainProperty(chain, item, lineNo);
        else {
          const { statements, handle } = parseNftStatements(item);
          chain.rules.push({ index: chain.rules.length + 1, handle, text: item, line: lineNo, statements });
        }
      }
      continue;
    }
    const { statements, handle } = parseNftStatements(line);
    chain.rules.push({ index: chain.rules.length + 1, handle, text: noHandle, line: lineNo, statements });
  }
  if (table !== null || tables.length === 0 && lines.some((l) => l.trim() !== "" && !l.trim().startsWith("#"))) {
    throw new DoctorInputError("nft ruleset ends inside a table or chain", { line: lines.length, expected: 'a closing "}"' });
  }
  return { tables: tables.map(freeze), legacyWarning, format: "text" };
}

const chainProperty = /^(type|policy|comment|devices|flags)(\s|=|$)/;

/** `a; b; c` as its statements, keeping `;` inside quoted strings (comments). */
function splitStatements(text: string): string[] {
  return (text.match(/(?:"(?:[^"\\]|\\.)*"|[^;"])+/g) ?? []).map((x) => x.trim()).filter((x) => x !== "");
}

function setChainProperty(chain: MutableChain, item: string, line: number): void {
  const key = /^\w+/.exec(item)![0];
  const err = (expected: string) => new DoctorInputError(`unexpected chain ${key} in chain ${chain.name}: ${JSON.stringify(item)}`, { line, expected });
  switch (key) {
    case "type": {
      const m = /^type\s+(\w+)\s+hook\s+(\w+)(?:\s+device\s+\S+|\s+devices\s*=\s*(?:\{[^}]*\}|\S+))?\s+priority\s+(.+)$/.exec(item);
      if (!m) throw err('"type <filter|nat|route> hook <hook> priority <prio>; policy <accept|drop>;"');
      chain.base = { type: m[1]!, hook: m[2]!, priority: parsePriority(m[3]!, line) };
      return;
    }
    case "policy": {
      const m = /^policy\s+(accept|drop)$/.exec(item);
      if (!m) throw err('"policy <accept|drop>"');
      // nft itself refuses this: "you cannot set chain policy twice".
      if (chain.policy !== null) throw new DoctorInputError(`chain ${chain.name} sets its policy twice (first on line ${chain.policy.line})`, { line, expected: "one policy per chain" });
      chain.policy = { value: m[1] as NftBaseHook["policy"], line };
      return;
    }
    default:
      // comment, devices, flags: nothing the evaluator needs.
      return;
  }
}

function freeze(t: MutableTable): NftTable {
  const chains = t.chains.map((c): NftChain => ({ name: c.name, base: c.base && { ...c.base, policy: c.policy?.value ?? "accept" }, rules: c.rules }));
  return { family: t.family, name: t.name, chains, sets: t.sets };
}

function buildSet(name: string, isMap: boolean, body: string): NftSet {
  const m = /elements\s*=\s*\{(.*)\}/.exec(body);
  if (!m) return { name, elements: [], entries: [] };
  const items: string[][] = [];
  let cur: string[] = [];
  for (const tok of tokenizeNft(m[1]!)) {
    if (tok === ",") {
      if (cur.length) items.push(cur);
      cur = [];
    } else cur.push(tok);
  }
  if (cur.length) items.push(cur);
  if (isMap) {
    const entries = items.map(mapEntry).filter((e): e is NftMapEntry => e !== null);
    return { name, elements: [], entries };
  }
  // Elements may carry `timeout 1h expires ...`/`counter ...` annotations after the value.
  const elements: NftAtom[] = items.map((it) => {
    const stop = it.findIndex((x) => ["timeout", "expires", "counter", "comment"].includes(x));
    return (stop < 0 ? it : it.slice(0, stop)).filter((x) => x !== ".").map((x) => x.replace(/^"|"$/g, ""));
  });
  return { name, elements, entries: [] };
}

function parseJson(text: string): NftRuleset {
  const expected = "the output of nft -j list ruleset";
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    // Node's message names the position only for some errors: find it (and say what was expected) ourselves.
    const at = findJsonSyntaxError(text);
    if (!at) throw new DoctorInputError(`not valid JSON: ${(cause as Error).message}`, { line: 1, expected, cause });
    throw new DoctorInputError(`not valid JSON: ${at.found} at ${jsonPlaceText(text, at)}`, { line: at.line, expected: `${at.expected}, in ${expected}`, cause });
  }
  const items = (doc as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) throw new DoctorInputError('JSON without an "nftables" array', { line: 1, expected: `${expected}: {"nftables": [...]}` });
  const tables = new Map<string, MutableTable>();
  for (const [index, item] of items.entries()) {
    try {
      readJsonItem(item, tables);
    } catch (err) {
      // Errors in one item carry no line: add where that item starts.
      if (!(err instanceof DoctorInputError) || err.line !== undefined) throw err;
      const offset = memberItemOffsets(text, "nftables")[index];
      const place = offset === undefined ? null : jsonPlace(text, offset);
      const where = `item ${index + 1} of "nftables"${place ? ` at ${jsonPlaceText(text, place)}` : ""}`;
      throw new DoctorInputError(`${where}: ${err.message}`, { line: place?.line ?? 1, expected: err.expected ?? expected, cause: err });
    }
  }
  return { tables: [...tables.values()].map(freeze), legacyWarning: false, format: "json" };
}

/** One item of `nft -j list ruleset` (libnftables-json(5)); errors without a line, the caller adds it. */
function readJsonItem(value: unknown, tables: Map<string, MutableTable>): void {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new DoctorInputError(`${JSON.stringify(value)} is not an object`, { expected: 'objects such as {"table": {...}}, {"chain": {...}}, {"rule": {...}}' });
  const item = value as Record<string, Record<string, unknown>>;
  const key = (family: string, name: string) => `${family} ${name}`;
  const tableOf = (o: { family: string; table: string }): MutableTable => {
    const t = tables.get(key(o.family, o.table));
    if (!t) throw new DoctorInputError(`object refers to unknown table ${o.family} ${o.table}`, { expected: "tables listed before their chains, sets and rules" });
    return t;
  };
  if (item.table) {
    const t = item.table as { family: string; name: string };
    if (!families.has(t.family)) throw new DoctorInputError(`unknown table family ${t.family}`, { expected: "ip, ip6, inet, arp, bridge or netdev" });
    tables.set(key(t.family, t.name), { family: t.family as NftFamily, name: t.name, chains: [], sets: new Map() });
  } else if (item.chain) {
    const c = item.chain as { family: string; table: string; name: string; type?: string; hook?: string; prio?: number | string; policy?: string };
    const base: BaseHookSpec | null = c.hook
      ? { type: c.type ?? "filter", hook: c.hook, priority: typeof c.prio === "number" ? c.prio : parsePriority(String(c.prio ?? 0), undefined) }
      : null;
    tableOf(c).chains.push({ name: c.name, base, policy: base && { value: c.policy === "drop" ? "drop" : "accept", line: 1 }, rules: [] });
  } else if (item.set || item.map) {
    const s = (item.set ?? item.map) as { family: string; table: string; name: string; elem?: unknown[] };
    tableOf(s).sets.set(s.name, jsonSet(s.name, !!item.map, s.elem ?? []));
  } else if (item.rule) {
    const r = item.rule as { family: string; table: string; chain: string; handle?: number; comment?: string; expr?: unknown[] };
    const chain = tableOf(r).chains.find((c) => c.name === r.chain);
    if (!chain) throw new DoctorInputError(`rule in unknown chain ${r.chain}`, { expected: "chains listed before their rules" });
    const { statements, text } = jsonRuleStatements(r.expr ?? []);
    chain.rules.push({
      index: chain.rules.length + 1,
      handle: r.handle ?? null,
      text: text + (r.comment ? ` comment ${JSON.stringify(r.comment)}` : ""),
      line: null,
      statements,
    });
  }
}

function jsonSet(name: string, isMap: boolean, elems: unknown[]): NftSet {
  const atom = (v: unknown): NftAtom => {
    if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (o.concat) return (o.concat as unknown[]).flatMap(atom);
      if (o.prefix) {
        const p = o.prefix as { addr: string; len: number };
        return [`${p.addr}/${p.len}`];
      }
      if (o.range) return [(o.range as unknown[]).map(String).join("-")];
      if (o.elem) return atom((o.elem as { val: unknown }).val);
    }
    return [String(v)];
  };
  if (!isMap) return { name, elements: elems.map(atom), entries: [] };
  const entries: NftMapEntry[] = [];
  for (const e of elems) {
    const [k, v] = e as [unknown, Record<string, unknown>];
    const st: NftStatement[] = jsonRuleStatements([v]).statements;
    const verdict = st[0]?.kind === "verdict" ? st[0].verdict : null;
    if (verdict) entries.push({ key: atom(k), verdict });
  }
  return { name, elements: [], entries };
}
