// Parses `nft list ruleset` (with or without `-a`), a ruleset file as `nft -f` reads it
// (/etc/nftables.conf; split into items by split-nft-file.ts) and `nft -j list ruleset` into one model.
// Format detected from content: JSON starts with `{`. Layout per nft(8) and the real nft 1.0.6
// output in test/fixtures/doctor/nftables/generated.
import { DoctorInputError } from "../input-error.js";
import { findJsonSyntaxError, jsonPlace, jsonPlaceText, memberItemOffsets } from "../json-places.js";
import type { NftAtom, NftBaseHook, NftChain, NftFamily, NftKey, NftMapEntry, NftRule, NftRuleset, NftSet, NftStatement, NftTable } from "./nft-model.js";
import { checkNftLiterals, setElementKeys } from "./nft-literals.js";
import { priorityNames } from "./nft-model.js";
import { mapEntry, parseNftStatements, tokenizeNft } from "./parse-nft-statements.js";
import { jsonRuleStatements } from "./parse-nft-json.js";
import { splitNftFile } from "./split-nft-file.js";
import { TableHandles } from "./nft-load-handles.js";

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

/** `text`: the `type ...` item as written. */
type BaseHookSpec = Omit<NftBaseHook, "policy">;
/** A rule, and the handle nft gives it when it loads the file (nft-load-handles.ts); null where not known. */
interface MutableRule { readonly rule: NftRule; loadHandle: number | null }
interface MutableChain {
  name: string;
  base: BaseHookSpec | null;
  policy: { value: NftBaseHook["policy"]; line: number; text: string } | null;
  rules: MutableRule[];
  /** A `delete rule` or `flush` removed rules of this chain earlier in the file. */
  rulesRemoved?: boolean;
  /** `devices = ...` given as an item of its own rather than in the `type` item. */
  devices?: readonly string[];
}
interface MutableTable {
  family: NftFamily;
  name: string;
  chains: MutableChain[];
  sets: Map<string, NftSet>;
  readonly handles: TableHandles;
  /** Stateful objects and flowtables (`counter cnt`, `ct helper ftp`): only their handles matter. */
  readonly objects: Set<string>;
}

/** The block an item stands in: the parser's state, one frame per open `{`. */
type Frame =
  | { readonly kind: "table"; readonly table: MutableTable }
  | { readonly kind: "chain"; readonly table: MutableTable; readonly chain: MutableChain }
  | { readonly kind: "set"; readonly table: MutableTable; readonly name: string; readonly isMap: boolean; readonly body: { readonly text: string; readonly line: number }[] }
  | { readonly kind: "skip" };

/**
 * A block at the top of the file (`table ... { }`, `add chain ... { }`, `add set ... { }`), which
 * nft sends as its new chains, sets and objects first and then its rules: the rules get their
 * handles when the block ends.
 */
interface PendingBlock { readonly table: MutableTable; newObjects: number; readonly rules: MutableRule[] }

const tableExpected = '"table <ip|ip6|inet|arp|bridge|netdev> <name> {"';
const commandExpected = `${tableExpected}, or a command of nft -f: add|create table|chain|counter|quota|..., add|insert rule, replace|delete rule ... handle N, add element, flush ruleset|table|chain|set|map, delete table|chain|set|map, define`;
/** What nft says, and does, when a command of the file fails: it loads none of the file. */
const refused = (nftError: string) => `nft -f refuses the file ("Could not process rule: ${nftError}") and loads none of it`;

function parseText(text: string): NftRuleset {
  const { items, legacyWarning } = splitNftFile(text);
  const placementLine = items.find((i) => i.kind === "statement" && /^(?:add|insert)\s+rule\s+(?:\S+\s+){2,3}(?:index|position|handle)\s+\d+\s/.test(i.text))?.line ?? null;
  const state: TextState = { tables: [], frames: [], block: null, placementLine };
  for (const item of items) {
    const frame = state.frames.at(-1);
    if (item.kind === "close") {
      state.frames.pop();
      if (frame) closeFrame(frame);
      if (state.frames.length === 0) endBlock(state);
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
      else state.block?.rules.push(addRule(frame.chain, item.text, item.line, item.handle, "append"));
    } else if (frame.kind === "set") frame.body.push({ text: item.text, line: item.line });
  }
  return { tables: state.tables.map(freeze), legacyWarning, format: "text" };
}

interface TextState {
  tables: MutableTable[];
  readonly frames: Frame[];
  block: PendingBlock | null;
  /** The line of the file's first `add|insert rule ... index|position|handle N`, which changes how nft treats a replace. */
  readonly placementLine: number | null;
}

const unexpected = (text: string, line: number, expected: string) => new DoctorInputError(`unexpected line in nft ruleset: ${JSON.stringify(text)}`, { line, expected });
const unquote = (s: string) => s.replace(/"/g, "");

function closeFrame(frame: Frame): void {
  if (frame.kind === "chain") {
    const { chain } = frame;
    if (chain.policy !== null && chain.base === null) {
      throw new DoctorInputError(`chain ${chain.name} has a policy but no hook`, { line: chain.policy.line, expected: '"type <filter|nat|route> hook <hook> priority <prio>;" in a chain with a policy' });
    }
  } else if (frame.kind === "set") {
    const type = frame.body.find((b) => /^type(of)?\s/.test(b.text))?.text;
    const elements = frame.body.find((b) => /^elements\s*=/.test(b.text));
    frame.table.sets.set(frame.name, buildSet(frame.name, frame.isMap, frame.body.map((b) => b.text).join(" "), setElementKeys(type), elements?.line));
  }
}

function endBlock(state: TextState): void {
  const block = state.block;
  if (block === null) return;
  state.block = null;
  block.table.handles.skip(block.newObjects);
  for (const r of block.rules) r.loadHandle = block.table.handles.rule(r.rule.text, r.rule.line!);
}

/** `table inet filter {`, `chain input {` in a table, `add chain inet filter input {`... */
function openBlock(state: TextState, frame: Frame | undefined, head: string, line: number): void {
  if (frame !== undefined && frame.kind !== "table") {
    state.frames.push({ kind: "skip" });
    return;
  }
  const words = head.replace(/^(add|create)\s+/, "").split(/\s+/);
  const kind = words[0]!;
  const nameAt = kind === "ct" ? 2 : 1;
  if (frame === undefined) {
    if (kind === "table") {
      const table = ensureTable(state, words.slice(1), line, head);
      state.block = { table, newObjects: 0, rules: [] };
      state.frames.push({ kind: "table", table });
      return;
    }
    const [table, name] = objectOf(state, words.slice(nameAt), line, head);
    state.block = { table, newObjects: 0, rules: [] };
    state.frames.push(tableItem(state.block, kind, words.slice(0, nameAt).join(" "), name));
    return;
  }
  state.frames.push(tableItem(state.block!, kind, words.slice(0, nameAt).join(" "), unquote(words.slice(nameAt).join(" "))));
}

/** A chain, set or map, or a stateful object or flowtable (skipped), of the block's table; new ones take a handle. */
function tableItem(block: PendingBlock, kind: string, what: string, name: string): Frame {
  const { table } = block;
  if (kind === "chain") {
    const { chain, created } = ensureChain(table, name);
    if (created) block.newObjects++;
    return { kind: "chain", table, chain };
  }
  if (kind === "set" || kind === "map") {
    if (!table.sets.has(name)) block.newObjects++;
    return { kind: "set", table, name, isMap: kind === "map", body: [] };
  }
  if (!table.objects.has(`${what} ${name}`)) {
    table.objects.add(`${what} ${name}`);
    block.newObjects++;
  }
  return { kind: "skip" };
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
    table = { ...spec, chains: [], sets: new Map(), handles: new TableHandles(), objects: new Set() };
    state.tables.push(table);
  }
  return table;
}

const findTable = (state: TextState, spec: { family: string; name: string }) => state.tables.find((t) => t.family === spec.family && t.name === spec.name);

function ensureChain(table: MutableTable, name: string): { chain: MutableChain; created: boolean } {
  const chain = table.chains.find((c) => c.name === name);
  if (chain) return { chain, created: false };
  const created: MutableChain = { name, base: null, policy: null, rules: [] };
  table.chains.push(created);
  return { chain: created, created: true };
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

/** The chain a rule command names (`[family] table chain`), and the words after it. */
function ruleChainOf(state: TextState, words: readonly string[], verb: string, line: number, text: string): { table: MutableTable; chain: MutableChain; rest: string[] } {
  const chainWords = families.has(words[0]!) ? 3 : 2;
  const [table, name] = objectOf(state, words.slice(0, chainWords), line, text);
  const chain = table.chains.find((c) => c.name === name);
  if (!chain) throw new DoctorInputError(`${verb} rule: chain ${name} is not declared in table ${table.family} ${table.name}`, { line, expected: `"add chain ${table.family} ${table.name} ${name}" before its rules` });
  return { table, chain, rest: words.slice(chainWords) };
}

/** A chain a command names, which must exist (nft: "No such file or directory"). */
function existingChain(state: TextState, words: readonly string[], line: number, text: string): { table: MutableTable; chain: MutableChain } {
  const [table, name] = objectOf(state, words, line, text);
  const chain = table.chains.find((c) => c.name === name);
  if (!chain) throw new DoctorInputError(`${text}: table ${table.family} ${table.name} has no chain ${name}, so ${refused("No such file or directory")}`, { line, expected: `a chain of table ${table.family} ${table.name}: ${table.chains.map((c) => c.name).join(", ") || "it has none"}` });
  return { table, chain };
}

const objectKinds = /^(counter|quota|limit|secmark|synproxy|flowtable|ct\s+(?:helper|timeout|expectation))$/;

/**
 * A statement outside any block: nft's commands (parser_bison.y base_cmd; a bare `table ...` is
 * `add table ...`), applied in order as nft applies them to an empty ruleset (the file is the
 * whole ruleset: its tables are declared in it). `flush ruleset` empties what came before it (at
 * the top of /etc/nftables.conf: nothing). A command nft would refuse is an input error naming
 * what nft says, since nft then loads none of the file; a command the doctor does not apply is one
 * too, rather than being skipped.
 */
function topCommand(state: TextState, text: string, line: number): void {
  const words = text.split(/\s+/);
  const verb = /^(add|create|insert|replace|flush|delete|rename)$/.test(words[0]!) ? words.shift()! : "add";
  // `ct helper`, `ct timeout`: two words name the kind.
  const what = words[0] === "ct" && words.length > 1 ? `${words.shift()} ${words.shift()}` : words.shift();
  if (verb === "flush" && what === "ruleset") {
    if (words.length > 1 || (words.length === 1 && !families.has(words[0]!))) throw unexpected(text, line, "flush ruleset [family]");
    state.tables = words.length === 0 ? [] : state.tables.filter((t) => t.family !== words[0]);
    return;
  }
  if (what === "table" && (verb === "add" || verb === "create")) {
    if (verb === "create" && findTable(state, tableSpec(words, line, text))) throw new DoctorInputError(`${text}: the table exists already, so ${refused("File exists")}`, { line, expected: `"add table" (which leaves an existing table as it is)` });
    ensureTable(state, words, line, text);
    return;
  }
  if (what === "table" && (verb === "delete" || verb === "flush")) {
    const spec = tableSpec(words, line, text);
    const table = findTable(state, spec);
    if (!table) throw new DoctorInputError(`${text}: there is no table ${spec.family} ${spec.name}, so ${refused("No such file or directory")}`, { line, expected: `a table declared before it: ${state.tables.map((t) => `${t.family} ${t.name}`).join(", ") || "there is none"}` });
    if (verb === "delete") state.tables = state.tables.filter((t) => t !== table);
    else for (const c of table.chains) flushChain(c);
    return;
  }
  if (what === "chain" && (verb === "add" || verb === "create")) {
    const [table, name] = objectOf(state, words, line, text);
    const { created } = ensureChain(table, name);
    if (!created && verb === "create") throw new DoctorInputError(`${text}: chain ${name} exists already, so ${refused("File exists")}`, { line, expected: `"add chain" (which leaves an existing chain as it is)` });
    if (created) table.handles.skip(1);
    return;
  }
  if (what === "chain" && verb === "flush") {
    flushChain(existingChain(state, words, line, text).chain);
    return;
  }
  if (what === "chain" && verb === "delete") {
    const { table, chain } = existingChain(state, words, line, text);
    const user = chainUser(table, chain.name);
    if (user) {
      throw new DoctorInputError(`${text}: ${user} jumps to chain ${chain.name}, so ${refused("Device or resource busy")}`, { line, expected: `the rules that jump to ${chain.name} deleted or flushed before the chain` });
    }
    table.chains = table.chains.filter((c) => c !== chain);
    return;
  }
  if (what === "rule" && (verb === "add" || verb === "insert")) {
    const { table, chain, rest: after } = ruleChainOf(state, words, verb, line, text);
    let rest = after;
    let at: RulePosition = verb === "insert" ? "prepend" : "append";
    const pos = /^(position|handle|index)$/.test(rest[0] ?? "") ? rest.slice(0, 2) : null;
    if (pos) {
      if (!/^\d+$/.test(pos[1] ?? "")) throw unexpected(text, line, `"${pos[0]} <number>"`);
      if (pos[0] !== "index") throw placedByHandle(text, line, table, chain, verb, Number(pos[1]));
      if (chain.rulesRemoved) throw indexAfterRemoval(text, line, table, chain);
      at = { verb, n: Number(pos[1]) };
      rest = rest.slice(2);
    }
    if (rest.length === 0) throw unexpected(text, line, "a rule after the chain's name");
    addRule(chain, rest.join(" "), line, null, at).loadHandle = table.handles.rule(rest.join(" "), line);
    return;
  }
  if (what === "rule" && verb === "replace") {
    const { table, chain, rest } = ruleChainOf(state, words, verb, line, text);
    if (rest[0] !== "handle" || !/^\d+$/.test(rest[1] ?? "") || rest.length < 3) throw unexpected(text, line, `"replace rule ${table.family} ${table.name} ${chain.name} handle <number> <rule>"`);
    if (state.placementLine !== null) {
      // A placement makes nft 1.0.6 check rule commands against the rules it knows, where this
      // file's have no handle yet (cache.c, evaluate.c rule_cache_update), but a replace resets
      // that: with a placement after the replace, nft refuses the replace ("No such file or
      // directory"); with an index before it, the index is ignored and its rule appended.
      throw new DoctorInputError(`${text}: this file also places a rule by index or handle (line ${state.placementLine}), and nft then refuses the replace or ignores the index, depending on their order and nft's release, so the doctor does not guess`, {
        line,
        expected: "the replace without index placements in the same file, or the ruleset as nft list ruleset prints it after the file is loaded",
      });
    }
    const handle = Number(rest[1]);
    const i = ruleByHandle(text, line, table, chain, handle);
    // The kernel keeps the old rule's handle and place (nf_tables_newrule with NLM_F_REPLACE).
    const ruleText = rest.slice(2).join(" ");
    table.handles.anonymousSets(ruleText, line);
    chain.rules[i] = { rule: { index: 0, handle: null, text: ruleText, line, statements: parseNftStatements(ruleText, line).statements }, loadHandle: handle };
    return;
  }
  if (what === "rule" && verb === "delete") {
    const { table, chain, rest } = ruleChainOf(state, words, verb, line, text);
    if (rest[0] !== "handle" || !/^\d+$/.test(rest[1] ?? "") || rest.length !== 2) throw unexpected(text, line, `"delete rule ${table.family} ${table.name} ${chain.name} handle <number>"`);
    chain.rules.splice(ruleByHandle(text, line, table, chain, Number(rest[1])), 1);
    chain.rulesRemoved = true;
    return;
  }
  if (what === "element" && verb === "add") {
    const brace = text.indexOf("{");
    const [table, name] = objectOf(state, text.slice(0, brace < 0 ? undefined : brace).split(/\s+/).filter((w) => w !== "").slice(2), line, text);
    const set = table.sets.get(name);
    if (brace < 0 || !set) throw unexpected(text, line, `"add element <family> <table> <set> { ... }" for a set declared before it`);
    const more = buildSet(name, set.entries.length > 0, `elements = ${text.slice(brace)}`, set.keys ?? null, line);
    table.sets.set(name, { ...set, elements: [...set.elements, ...more.elements], entries: [...set.entries, ...more.entries] });
    return;
  }
  if ((verb === "add" || verb === "create") && what !== undefined && objectKinds.test(what)) {
    // A stateful object or flowtable: nothing the evaluator reads, but it takes a handle.
    const nameWords = families.has(words[0]!) ? 3 : 2;
    const [table, name] = objectOf(state, words.slice(0, nameWords), line, text);
    if (!table.objects.has(`${what} ${name}`)) {
      table.objects.add(`${what} ${name}`);
      table.handles.skip(1);
    }
    return;
  }
  if ((what === "set" || what === "map") && (verb === "flush" || verb === "delete")) {
    const [table, name] = objectOf(state, words, line, text);
    const set = table.sets.get(name);
    if (!set) throw new DoctorInputError(`${text}: table ${table.family} ${table.name} has no ${what} ${name}, so ${refused("No such file or directory")}`, { line, expected: `a set or map declared before it: ${[...table.sets.keys()].join(", ") || "the table has none"}` });
    if (verb === "flush") {
      table.sets.set(name, { ...set, elements: [], entries: [] });
      return;
    }
    const user = setUser(table, name);
    if (user) throw new DoctorInputError(`${text}: ${user} uses @${name}, so ${refused("Device or resource busy")}`, { line, expected: `the rules that use @${name} deleted or flushed before it` });
    table.sets.delete(name);
    return;
  }
  if (verb === "rename" || (verb === "delete" && what === "element")) {
    // rename: nft renames only a chain loaded before the file runs (a chain of the file itself:
    // "No such file or directory"). delete element: nft 1.0.6 leaves an element of an interval set
    // that the same file added in place, so the doctor does not guess.
    throw new DoctorInputError(`${text}: the doctor does not apply "${verb} ${what}" commands`, { line, expected: "the ruleset as nft list ruleset prints it after the file is loaded" });
  }
  throw unexpected(text, line, commandExpected);
}

/** The rule (or the rule of a named map) in the table that jumps or goes to the chain, as nft counts a chain's users. */
function chainUser(table: MutableTable, name: string): string | null {
  const targets = (s: NftStatement): string[] => {
    if (s.kind === "verdict") return s.verdict.kind === "jump" || s.verdict.kind === "goto" ? [s.verdict.target] : [];
    if (s.kind === "vmap" && Array.isArray(s.map)) return s.map.flatMap((e) => (e.verdict.kind === "jump" || e.verdict.kind === "goto" ? [e.verdict.target] : []));
    return [];
  };
  for (const c of table.chains) {
    const r = c.rules.find(({ rule }) => rule.statements.some((s) => targets(s).includes(name)) || new RegExp(`\\b(?:jump|goto)\\s+"?${name.replace(/[^\w]/g, "\\$&")}"?(?:\\s|$)`).test(rule.text));
    if (r) return `"${r.rule.text}" (line ${r.rule.line}, chain ${c.name})`;
  }
  for (const set of table.sets.values()) {
    if (set.entries.some((e) => (e.verdict.kind === "jump" || e.verdict.kind === "goto") && e.verdict.target === name)) return `map ${set.name}`;
  }
  return null;
}

/** The rule in the table that looks a set or map up (`@name`), which nft counts as the set's user. */
function setUser(table: MutableTable, name: string): string | null {
  for (const c of table.chains) {
    const r = c.rules.find(({ rule }) => tokenizeNft(rule.text).some((t) => t === `@${name}` || t === `@"${name}"`));
    if (r) return `"${r.rule.text}" (line ${r.rule.line}, chain ${c.name})`;
  }
  return null;
}

/**
 * `delete rule ... handle N`: the rule nft gives handle N as the file loads (nft-load-handles.ts).
 * The `# handle` comments of an `nft -a list ruleset` listing are comments to nft; where they
 * name another rule than nft's numbering does, the input does not say which rule is meant.
 */
function ruleByHandle(text: string, line: number, table: MutableTable, chain: MutableChain, handle: number): number {
  const i = chain.rules.findIndex((r) => r.loadHandle === handle);
  const shown = chain.rules.findIndex((r) => r.rule.handle === handle);
  const where = (r: MutableRule) => `"${r.rule.text}" (line ${r.rule.line})`;
  if (i >= 0 && (shown === i || shown < 0) && (chain.rules[i]!.rule.handle ?? handle) === handle) return i;
  const lost = table.handles.lost;
  if (i < 0 && lost !== null && chain.rules.some((r) => r.loadHandle === null)) {
    throw new DoctorInputError(`${text}: the doctor cannot tell which rule nft gives handle ${handle}: it stopped following nft's numbering of table ${table.family} ${table.name} at line ${lost.line} (${lost.reason})`, {
      line,
      expected: "the ruleset as nft -a list ruleset prints it after the file is loaded",
    });
  }
  if (i >= 0 || shown >= 0) {
    const nft = i >= 0 ? `nft numbers ${where(chain.rules[i]!)} ${handle} as it loads the file` : `nft gives no rule of chain ${chain.name} handle ${handle} as it loads the file`;
    const listed = shown >= 0 ? `the input shows "# handle ${handle}" on ${where(chain.rules[shown]!)}` : `that rule shows "# handle ${chain.rules[i]!.rule.handle}"`;
    throw new DoctorInputError(`${text}: ${nft}, but ${listed}: the listing's handles come from rules loaded otherwise, so which rule is meant is not clear`, {
      line,
      expected: "the listing of the loaded ruleset (nft -a list ruleset) without the commands, or the commands without a listing",
    });
  }
  const known = chain.rules.flatMap((r) => (r.loadHandle === null ? [] : [r.loadHandle]));
  throw new DoctorInputError(`${text}: chain ${chain.name} has no rule with handle ${handle} when nft loads the file, so ${refused("No such file or directory")}`, {
    line,
    expected: `a handle of a rule in chain ${chain.name}${known.length > 0 ? `: ${known.join(", ")}` : " (it has no rules)"}`,
  });
}

/**
 * `add|insert rule ... handle|position N`: nft 1.0.6 looks N up among the rules it had fetched
 * before the file runs (evaluate.c rule_cache_update), where the file's own rules have no handle
 * yet, and refuses ("Could not process rule: No such file or directory"); the file is the whole
 * ruleset here, so every rule is its own. Later releases, by nft's sources (cache.c: only an index
 * asks for the rule cache), leave the lookup to the kernel, which finds the rule; the doctor does
 * not guess which release loads the file.
 */
function placedByHandle(text: string, line: number, table: MutableTable, chain: MutableChain, verb: string, handle: number): DoctorInputError {
  const r = chain.rules.find((x) => x.loadHandle === handle);
  const which = r ? `handle ${handle} is "${r.rule.text}" (line ${r.rule.line}), which this file adds` : `chain ${chain.name} has no rule with handle ${handle}`;
  return new DoctorInputError(`${text}: ${which}; nft 1.0.6 refuses to place a rule next to a rule of the same file ("Could not process rule: No such file or directory"), later releases place it, so the doctor does not guess`, {
    line,
    expected: `"${verb} rule ${table.family} ${table.name} ${chain.name} index <n>" (from 0), which nft resolves within the file`,
  });
}

/**
 * nft resolves `index N` among the rules it knows, and nft 1.0.6 still counts those a `delete
 * rule` or `flush` earlier in the file removed (they stay in its cache): with rules 1, 2, 3 and the
 * first deleted, `add rule ... index 0` goes first, not after rule 2. The doctor does not follow that.
 */
function indexAfterRemoval(text: string, line: number, table: MutableTable, chain: MutableChain): DoctorInputError {
  return new DoctorInputError(`${text}: rules of chain ${chain.name} were deleted or flushed earlier in the file, and nft 1.0.6 still counts them for an index, so the doctor does not guess where this rule goes`, {
    line,
    expected: `the rule placed without index, or "add rule ${table.family} ${table.name} ${chain.name} index <n>" before the rules are deleted`,
  });
}

function flushChain(chain: MutableChain): void {
  chain.rules = [];
  chain.rulesRemoved = true;
}

type RulePosition = "append" | "prepend" | { readonly verb: string; readonly n: number };

/**
 * nft(8) RULES: `add` appends (or goes after the rule at 0-based `index N`), `insert` prepends (or
 * goes before it); nft resolves an index among the rules as they stand at that point of the file.
 * Indexes in the model are assigned when the table is frozen.
 */
function addRule(chain: MutableChain, text: string, line: number, handle: number | null, at: RulePosition): MutableRule {
  const rule: MutableRule = { rule: { index: 0, handle, text, line, statements: parseNftStatements(text, line).statements }, loadHandle: null };
  if (at === "append") chain.rules.push(rule);
  else if (at === "prepend") chain.rules.unshift(rule);
  else {
    const i = at.n;
    if (i >= chain.rules.length) throw new DoctorInputError(`${at.verb} rule: chain ${chain.name} has no rule at index ${at.n}, so ${refused("No such file or directory")}`, { line, expected: `an index from 0 to ${chain.rules.length - 1} for chain ${chain.name}` });
    chain.rules.splice(at.verb === "insert" ? i : i + 1, 0, rule);
  }
  return rule;
}

const chainProperty = /^(type|policy|comment|devices|flags)(\s|=|$)/;

/** `"eth0"`, `eth0`, `{ "eth0", eth1 }` as a list of names. */
function deviceList(text: string): string[] {
  return text.replace(/^\{|\}$/g, "").split(/[\s,]+/).map(unquote).filter((d) => d !== "");
}

function setChainProperty(chain: MutableChain, item: string, line: number): void {
  const key = /^\w+/.exec(item)![0];
  const err = (expected: string) => new DoctorInputError(`unexpected chain ${key} in chain ${chain.name}: ${JSON.stringify(item)}`, { line, expected });
  switch (key) {
    case "type": {
      const m = /^type\s+(\w+)\s+hook\s+(\w+)(?:\s+device\s+(\S+)|\s+devices\s*=\s*(\{[^}]*\}|\S+))?\s+priority\s+(.+)$/.exec(item);
      if (!m) throw err('"type <filter|nat|route> hook <hook> priority <prio>; policy <accept|drop>;"');
      const devices = m[3] ?? m[4];
      chain.base = { type: m[1]!, hook: m[2]!, priority: parsePriority(m[5]!, line), text: item, ...(devices === undefined ? {} : { devices: deviceList(devices) }) };
      return;
    }
    case "devices": {
      const m = /^devices\s*=\s*(\{[^}]*\}|\S+)$/.exec(item);
      if (!m) throw err('"devices = { <name>, ... }"');
      chain.devices = deviceList(m[1]!);
      return;
    }
    case "policy": {
      const m = /^policy\s+(accept|drop)$/.exec(item);
      if (!m) throw err('"policy <accept|drop>"');
      // nft itself refuses this: "you cannot set chain policy twice".
      if (chain.policy !== null) throw new DoctorInputError(`chain ${chain.name} sets its policy twice (first on line ${chain.policy.line})`, { line, expected: "one policy per chain" });
      chain.policy = { value: m[1] as NftBaseHook["policy"], line, text: item };
      return;
    }
    default:
      // comment, flags: nothing the evaluator needs.
      return;
  }
}

function freeze(t: MutableTable): NftTable {
  const chains = t.chains.map((c): NftChain => ({
    name: c.name,
    // nft lists both items on one line, each ended by `;`: `type ... priority 0; policy drop;`.
    base: c.base && {
      ...c.base,
      ...(c.base.devices === undefined && c.devices !== undefined ? { devices: c.devices } : {}),
      policy: c.policy?.value ?? "accept",
      text: [c.base.text, ...(c.policy ? [c.policy.text] : [])].map((t) => `${t};`).join(" "),
    },
    rules: c.rules.map(({ rule }, i) => (rule.index === i + 1 ? rule : { ...rule, index: i + 1 })),
  }));
  return { family: t.family, name: t.name, chains, sets: t.sets };
}

/**
 * A set or map from its body (`type ...; elements = { ... }`). `keys`: its elements' types, whose
 * literals are checked (nft-literals.ts: an input error on `line`, the elements' line).
 */
function buildSet(name: string, isMap: boolean, body: string, keys: readonly NftKey[] | null, line: number | undefined): NftSet {
  const typed = keys === null ? {} : { keys };
  const m = /elements\s*=\s*\{(.*)\}/.exec(body);
  if (!m) return { name, elements: [], entries: [], ...typed };
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
    if (keys !== null) checkNftLiterals(keys, entries.map((e) => e.key), `map ${name}`, line);
    return { name, elements: [], entries, ...typed };
  }
  // Elements may carry `timeout 1h expires ...`/`counter ...` annotations after the value.
  const elements: NftAtom[] = items.map((it) => {
    const stop = it.findIndex((x) => ["timeout", "expires", "counter", "comment"].includes(x));
    return (stop < 0 ? it : it.slice(0, stop)).filter((x) => x !== ".").map((x) => x.replace(/^"|"$/g, ""));
  });
  if (keys !== null) checkNftLiterals(keys, elements, `set ${name}`, line);
  return { name, elements, entries: [], ...typed };
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
    tables.set(key(t.family, t.name), { family: t.family as NftFamily, name: t.name, chains: [], sets: new Map(), handles: new TableHandles(), objects: new Set() });
  } else if (item.chain) {
    const c = item.chain as { family: string; table: string; name: string; type?: string; hook?: string; prio?: number | string; policy?: string; dev?: string | string[] };
    const priority = typeof c.prio === "number" ? c.prio : parsePriority(String(c.prio ?? 0), undefined);
    // An ingress chain's `dev` (one name or a list), listed as nft's text listing shows it.
    const devices = c.dev === undefined ? undefined : typeof c.dev === "string" ? [c.dev] : c.dev.map(String);
    const device = devices === undefined ? "" : devices.length === 1 ? ` device ${JSON.stringify(devices[0])}` : ` devices = { ${devices.join(", ")} }`;
    const base: BaseHookSpec | null = c.hook
      ? { type: c.type ?? "filter", hook: c.hook, priority, text: `type ${c.type ?? "filter"} hook ${c.hook}${device} priority ${c.prio ?? 0}`, ...(devices === undefined ? {} : { devices }) }
      : null;
    const policy = c.policy === "drop" ? "drop" : "accept";
    tableOf(c).chains.push({ name: c.name, base, policy: base && { value: policy, line: 1, text: `policy ${policy}` }, rules: [] });
  } else if (item.set || item.map) {
    const s = (item.set ?? item.map) as { family: string; table: string; name: string; type?: string | string[]; elem?: unknown[] };
    tableOf(s).sets.set(s.name, jsonSet(s.name, !!item.map, s.elem ?? [], setElementKeys(s.type)));
  } else if (item.rule) {
    const r = item.rule as { family: string; table: string; chain: string; handle?: number; comment?: string; expr?: unknown };
    const chain = tableOf(r).chains.find((c) => c.name === r.chain);
    if (!chain) throw new DoctorInputError(`rule in unknown chain ${r.chain}`, { expected: "chains listed before their rules" });
    // nft -j lists every rule with its statements, an array (libnftables-json(5) RULE): a rule
    // without one is not nft's output, and reading it as a rule that matches everything and does
    // nothing would hide what it was.
    if (!Array.isArray(r.expr)) {
      throw new DoctorInputError(`rule${r.handle === undefined ? "" : ` (handle ${r.handle})`} in chain ${r.chain} has ${r.expr === undefined ? "no \"expr\"" : `"expr": ${JSON.stringify(r.expr)}`}`, { expected: 'a rule\'s statements as nft -j lists them: "expr": [ ... ]' });
    }
    // Each statement is an object of one key, its kind (`{"match": {...}}`, `{"accept": null}`).
    const bad = r.expr.findIndex((st) => st === null || typeof st !== "object" || Array.isArray(st) || Object.keys(st).length !== 1);
    if (bad >= 0) {
      throw new DoctorInputError(`rule${r.handle === undefined ? "" : ` (handle ${r.handle})`} in chain ${r.chain}: statement ${bad + 1} of "expr" is ${JSON.stringify(r.expr[bad])}`, { expected: 'statements as nft -j lists them, each an object of one key: {"match": {...}}, {"accept": null}...' });
    }
    const { statements, text } = jsonRuleStatements(r.expr);
    const rule: NftRule = {
      index: chain.rules.length + 1,
      handle: r.handle ?? null,
      text: text + (r.comment ? ` comment ${JSON.stringify(r.comment)}` : ""),
      line: null,
      statements,
    };
    chain.rules.push({ rule, loadHandle: null });
  }
}

function jsonSet(name: string, isMap: boolean, elems: unknown[], keys: readonly NftKey[] | null): NftSet {
  const typed = keys === null ? {} : { keys };
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
  if (!isMap) {
    const elements = elems.map(atom);
    if (keys !== null) checkNftLiterals(keys, elements, `set ${name}`);
    return { name, elements, entries: [], ...typed };
  }
  const entries: NftMapEntry[] = [];
  for (const e of elems) {
    const [k, v] = e as [unknown, Record<string, unknown>];
    const st: NftStatement[] = jsonRuleStatements([v]).statements;
    const verdict = st[0]?.kind === "verdict" ? st[0].verdict : null;
    if (verdict) entries.push({ key: atom(k), verdict });
  }
  if (keys !== null) checkNftLiterals(keys, entries.map((e) => e.key), `map ${name}`);
  return { name, elements: [], entries, ...typed };
}
