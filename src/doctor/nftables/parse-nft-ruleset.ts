// Parses `nft list ruleset` (with or without `-a`), a ruleset file as `nft -f` reads it
// (/etc/nftables.conf; split into items by split-nft-file.ts) and `nft -j list ruleset` into one model.
// Format detected from content: JSON starts with `{`. Layout per nft(8) and the real nft 1.0.6
// output in test/fixtures/doctor/nftables/generated.
import { DoctorInputError } from "../input-error.js";
import { findJsonSyntaxError, jsonPlace, jsonPlaceText, memberItemOffsets } from "../json-places.js";
import type { NftAtom, NftBaseHook, NftChain, NftFamily, NftMapEntry, NftRule, NftRuleset, NftSet, NftStatement, NftTable } from "./nft-model.js";
import { priorityNames } from "./nft-model.js";
import { mapEntry, parseNftStatements, tokenizeNft } from "./parse-nft-statements.js";
import { jsonRuleStatements } from "./parse-nft-json.js";
import { splitNftFile } from "./split-nft-file.js";

const families = new Set(["ip", "ip6", "inet", "arp", "bridge", "netdev"]);

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

/** The block an item stands in: the parser's state, one frame per open `{`. */
type Frame =
  | { readonly kind: "table"; readonly table: MutableTable }
  | { readonly kind: "chain"; readonly table: MutableTable; readonly chain: MutableChain }
  | { readonly kind: "set"; readonly table: MutableTable; readonly name: string; readonly isMap: boolean; readonly body: string[] }
  | { readonly kind: "skip" };

const tableExpected = '"table <ip|ip6|inet|arp|bridge|netdev> <name> {"';
const commandExpected = `${tableExpected}, or a command of nft -f: add|create table, add|create chain, add|insert rule, add element, flush ruleset, define`;

function parseText(text: string): NftRuleset {
  const { items, legacyWarning } = splitNftFile(text);
  const state: TextState = { tables: [], frames: [] };
  for (const item of items) {
    const frame = state.frames.at(-1);
    if (item.kind === "close") {
      state.frames.pop();
      if (frame) closeFrame(frame);
    } else if (item.kind === "open") {
      openBlock(state, frame, item.head, item.line);
    } else if (frame === undefined) {
      topCommand(state, item.text, item.line);
    } else if (frame.kind === "table") {
      // Table options (comment, flags). In a table nft takes a chain only with its body, `{` on
      // the chain's line ("syntax error, unexpected newline, expecting '{'").
      if (/^chain\s+\S+$/.test(item.text)) throw unexpected(item.text, item.line, `"${item.text} {" with the "{" on the chain's line (nft -f refuses a chain without it)`);
      if (!/^(comment\s+".*"|flags\s+.*)$/.test(item.text)) throw unexpected(item.text, item.line, '"chain <name> {", "set <name> {", "map <name> {" or "}"');
    } else if (frame.kind === "chain") {
      // The chain's own properties (nft's chain_block grammar): `type ... hook ... priority ...`,
      // `policy ...`, `comment ...`, `devices = ...`, `flags ...`, each ended by `;` or by the end
      // of the line, in any order, so `nft list ruleset`'s `type ...; policy ...;` is two items.
      if (chainProperty.test(item.text)) setChainProperty(frame.chain, item.text, item.line);
      else addRule(frame.chain, item.text, item.line, item.handle, "append");
    } else if (frame.kind === "set") frame.body.push(item.text);
  }
  return { tables: state.tables.map(freeze), legacyWarning, format: "text" };
}

interface TextState { tables: MutableTable[]; readonly frames: Frame[] }

const unexpected = (text: string, line: number, expected: string) => new DoctorInputError(`unexpected line in nft ruleset: ${JSON.stringify(text)}`, { line, expected });
const unquote = (s: string) => s.replace(/"/g, "");

function closeFrame(frame: Frame): void {
  if (frame.kind === "chain") {
    const { chain } = frame;
    if (chain.policy !== null && chain.base === null) {
      throw new DoctorInputError(`chain ${chain.name} has a policy but no hook`, { line: chain.policy.line, expected: '"type <filter|nat|route> hook <hook> priority <prio>;" in a chain with a policy' });
    }
  } else if (frame.kind === "set") {
    frame.table.sets.set(frame.name, buildSet(frame.name, frame.isMap, frame.body.join(" ")));
  }
}

/** `table inet filter {`, `chain input {` in a table, `add chain inet filter input {`... */
function openBlock(state: TextState, frame: Frame | undefined, head: string, line: number): void {
  if (frame !== undefined && frame.kind !== "table") {
    state.frames.push({ kind: "skip" });
    return;
  }
  const words = head.replace(/^(add|create)\s+/, "").split(/\s+/);
  const kind = words[0]!;
  if (frame === undefined) {
    if (kind === "table") {
      const table = ensureTable(state, words.slice(1), line, head);
      state.frames.push({ kind: "table", table });
    } else if (kind === "chain") {
      const [table, name] = objectOf(state, words.slice(1), line, head);
      state.frames.push({ kind: "chain", table, chain: ensureChain(table, name) });
    } else if (kind === "set" || kind === "map") {
      const [table, name] = objectOf(state, words.slice(1), line, head);
      state.frames.push({ kind: "set", table, name, isMap: kind === "map", body: [] });
    } else state.frames.push({ kind: "skip" }); // flowtables and stateful objects
    return;
  }
  const name = words.slice(kind === "ct" ? 2 : 1).join(" ");
  if (kind === "chain") state.frames.push({ kind: "chain", table: frame.table, chain: ensureChain(frame.table, unquote(name)) });
  else if (kind === "set" || kind === "map") state.frames.push({ kind: "set", table: frame.table, name, isMap: kind === "map", body: [] });
  else state.frames.push({ kind: "skip" });
}

/** `[family] name`: nft's table_spec, where the family defaults to ip. */
function tableSpec(words: readonly string[], line: number, text: string): { family: NftFamily; name: string } {
  const [family, name] = words.length === 1 ? ["ip", words[0]!] : [words[0]!, words[1]];
  if (words.length > 2 || name === undefined || !families.has(family)) throw unexpected(text, line, tableExpected);
  return { family: family as NftFamily, name: unquote(name) };
}

function ensureTable(state: TextState, words: readonly string[], line: number, text: string): MutableTable {
  const spec = tableSpec(words, line, text);
  let table = findTable(state, spec);
  if (!table) {
    table = { ...spec, chains: [], sets: new Map() };
    state.tables.push(table);
  }
  return table;
}

const findTable = (state: TextState, spec: { family: string; name: string }) => state.tables.find((t) => t.family === spec.family && t.name === spec.name);

function ensureChain(table: MutableTable, name: string): MutableChain {
  let chain = table.chains.find((c) => c.name === name);
  if (!chain) {
    chain = { name, base: null, policy: null, rules: [] };
    table.chains.push(chain);
  }
  return chain;
}

/** `[family] table name` of a chain, set or rule command: the table must be declared before. */
function objectOf(state: TextState, words: readonly string[], line: number, text: string): [MutableTable, string] {
  const spec = families.has(words[0]!) && words.length === 3 ? words.slice(0, 2) : words.slice(0, 1);
  if (words.length !== spec.length + 1) throw unexpected(text, line, "<family> <table> <name>");
  const { family, name } = tableSpec(spec, line, text);
  const table = findTable(state, { family, name });
  if (!table) throw new DoctorInputError(`${text}: table ${family} ${name} is not declared before it`, { line, expected: `"table ${family} ${name} { ... }" or "add table ${family} ${name}" first` });
  return [table, unquote(words.at(-1)!)];
}

/**
 * A statement outside any block: nft's commands (parser_bison.y base_cmd; a bare `table ...` is
 * `add table ...`). Those that build the ruleset are applied; `flush ruleset` empties what came
 * before it (at the top of /etc/nftables.conf: nothing).
 */
function topCommand(state: TextState, text: string, line: number): void {
  const words = text.split(/\s+/);
  const verb = /^(add|create|insert|flush|delete)$/.test(words[0]!) ? words.shift()! : "add";
  const what = words.shift();
  if (verb === "flush" && what === "ruleset") {
    if (words.length > 1 || (words.length === 1 && !families.has(words[0]!))) throw unexpected(text, line, "flush ruleset [family]");
    state.tables = words.length === 0 ? [] : state.tables.filter((t) => t.family !== words[0]);
    return;
  }
  if (what === "table" && (verb === "add" || verb === "create")) {
    ensureTable(state, words, line, text);
    return;
  }
  if (what === "table" && (verb === "delete" || verb === "flush")) {
    const spec = tableSpec(words, line, text);
    if (verb === "delete") state.tables = state.tables.filter((t) => !(t.family === spec.family && t.name === spec.name));
    else for (const c of findTable(state, spec)?.chains ?? []) c.rules = [];
    return;
  }
  if (what === "chain" && verb !== "insert") {
    const [table, name] = objectOf(state, words, line, text);
    if (verb === "delete") table.chains = table.chains.filter((c) => c.name !== name);
    else if (verb === "flush") ensureChain(table, name).rules = [];
    else ensureChain(table, name);
    return;
  }
  if (what === "rule" && (verb === "add" || verb === "insert")) {
    const chainWords = families.has(words[0]!) ? 3 : 2;
    const [table, name] = objectOf(state, words.slice(0, chainWords), line, text);
    const chain = table.chains.find((c) => c.name === name);
    if (!chain) throw new DoctorInputError(`${verb} rule: chain ${name} is not declared in table ${table.family} ${table.name}`, { line, expected: `"add chain ${table.family} ${table.name} ${name}" before its rules` });
    let rest = words.slice(chainWords);
    let at: RulePosition = verb === "insert" ? "prepend" : "append";
    const pos = /^(position|handle|index)$/.test(rest[0] ?? "") ? rest.slice(0, 2) : null;
    if (pos) {
      if (!/^\d+$/.test(pos[1] ?? "")) throw unexpected(text, line, `"${pos[0]} <number>"`);
      at = { verb, by: pos[0] === "index" ? "index" : "handle", n: Number(pos[1]) };
      rest = rest.slice(2);
    }
    if (rest.length === 0) throw unexpected(text, line, "a rule after the chain's name");
    addRule(chain, rest.join(" "), line, null, at);
    return;
  }
  if (what === "element" && verb === "add") {
    const brace = text.indexOf("{");
    const [table, name] = objectOf(state, text.slice(0, brace < 0 ? undefined : brace).split(/\s+/).filter((w) => w !== "").slice(2), line, text);
    const set = table.sets.get(name);
    if (brace < 0 || !set) throw unexpected(text, line, `"add element <family> <table> <set> { ... }" for a set declared before it`);
    const more = buildSet(name, set.entries.length > 0, `elements = ${text.slice(brace)}`);
    table.sets.set(name, { name, elements: [...set.elements, ...more.elements], entries: [...set.entries, ...more.entries] });
    return;
  }
  throw unexpected(text, line, commandExpected);
}

type RulePosition = "append" | "prepend" | { readonly verb: string; readonly by: "handle" | "index"; readonly n: number };

/**
 * nft(8) RULES: `add` appends (or goes after `handle`/`position N`, or after the rule at 0-based
 * `index N`), `insert` prepends (or goes before them). Indexes are assigned when the table is frozen.
 */
function addRule(chain: MutableChain, text: string, line: number, handle: number | null, at: RulePosition): void {
  const rule: NftRule = { index: 0, handle, text, line, statements: parseNftStatements(text).statements };
  if (at === "append") chain.rules.push(rule);
  else if (at === "prepend") chain.rules.unshift(rule);
  else {
    const i = at.by === "index" ? at.n : chain.rules.findIndex((r) => r.handle === at.n);
    if (i < 0 || i >= chain.rules.length) throw new DoctorInputError(`${at.verb} rule: chain ${chain.name} has no rule at ${at.by} ${at.n}`, { line, expected: `a ${at.by} the input shows for chain ${chain.name}` });
    chain.rules.splice(at.verb === "insert" ? i : i + 1, 0, rule);
  }
}

const chainProperty = /^(type|policy|comment|devices|flags)(\s|=|$)/;

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
  const chains = t.chains.map((c): NftChain => ({
    name: c.name,
    base: c.base && { ...c.base, policy: c.policy?.value ?? "accept" },
    rules: c.rules.map((r, i) => (r.index === i + 1 ? r : { ...r, index: i + 1 })),
  }));
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
