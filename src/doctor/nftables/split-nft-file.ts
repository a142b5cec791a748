// Splits nft's text input into the items of its grammar: what `nft list ruleset` prints (one item
// a line) and what `nft -f` reads (/etc/nftables.conf: `;` between statements, blocks on one line,
// comments, `define`/`$var`, `add rule ...` commands). Per nft's scanner.l and parser_bison.y:
// `#` starts a comment to the end of the line (outside quoted strings), `\` at the end of a line
// continues it, a statement ends at `;` or a newline unless it is inside an expression's braces
// (an anonymous set, a verdict map, `elements = { ... }`), and `{` opens a block only after a
// block's header (`table ...`, `chain ...`, `set ...`; the grammar's table_block/chain_block).
// `define`, `redefine`, `undefine` and `include` are nft's common_block, allowed at any level;
// variables are scoped to the block that defines them.
import { DoctorInputError } from "../input-error.js";

export type NftFileItem =
  /** `table inet filter {`, `chain input {`, `add chain inet filter input {`: head is the text before `{`. */
  | { readonly kind: "open"; readonly head: string; readonly line: number }
  | { readonly kind: "close"; readonly line: number }
  /** A rule, a chain property, a command; `# handle N` after it (nft -a) is its handle. */
  | { readonly kind: "statement"; readonly text: string; readonly line: number; readonly handle: number | null };

export interface NftFile {
  readonly items: readonly NftFileItem[];
  /** A comment says iptables-legacy tables are present (iptables-nft's warning). */
  readonly legacyWarning: boolean;
}

const legacyRe = /iptables-legacy tables present/;
const handleComment = /^#\s*handle\s+(\d+)\s*$/;
const name = String.raw`(?:"[^"]*"|[^\s"{};]+)`;
/** Blocks a table holds (table_block): `chain input`, `set allowed`, `ct helper ftp`... */
const tableBlockHeader = new RegExp(String.raw`^(?:chain|set|map|flowtable|counter|quota|limit|secmark|synproxy|ct\s+\w+)\s+${name}$`);
/** At the top: `table [family] name`, or a command such as `add chain inet filter input`. */
const topBlockHeader = new RegExp(String.raw`^(?:(?:add|create)\s+)?(?:table|chain|set|map|flowtable|counter|quota|limit|secmark|synproxy|ct\s+\w+)(?:\s+${name}){1,3}$`);

type Block = "table" | "other";

export function splitNftFile(text: string): NftFile {
  const src = text.replace(/\r\n?/g, "\n");
  const items: NftFileItem[] = [];
  const blocks: Block[] = [];
  let legacyWarning = false;
  let line = 1;
  let cur = "";
  let curLine = 1;
  let curMultiLine = false;
  /** cur holds only whitespace (checked per character, so kept rather than recomputed). */
  let curBlank = true;
  let handle: number | null = null;
  let exprDepth = 0;
  let exprLine = 0;
  const flush = () => {
    const t = cur.trim();
    if (t !== "") items.push({ kind: "statement", text: curMultiLine ? t.replace(/\s+/g, " ") : t, line: curLine, handle });
    cur = "";
    curBlank = true;
    curMultiLine = false;
    handle = null;
  };
  const append = (s: string) => {
    if (curBlank && s.trim() !== "") {
      cur = "";
      curLine = line;
      curBlank = false;
    }
    cur += s;
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '"') {
      // nft's quotedstring is `"[^"]*"`: no escapes.
      const end = src.indexOf('"', i + 1);
      if (end < 0) throw new DoctorInputError("quoted string without its closing quote", { line, expected: 'a closing "' });
      const s = src.slice(i, end + 1);
      append(s);
      line += s.split("\n").length - 1;
      i = end;
    } else if (c === "#") {
      const end = src.indexOf("\n", i);
      const comment = src.slice(i, end < 0 ? src.length : end);
      if (legacyRe.test(comment)) legacyWarning = true;
      const h = handleComment.exec(comment);
      if (h && !curBlank) handle = Number(h[1]);
      i = (end < 0 ? src.length : end) - 1;
    } else if (c === "\\" && src[i + 1] === "\n") {
      line++;
      i++;
      cur += " ";
      curMultiLine = true;
    } else if (c === "\n") {
      line++;
      if (exprDepth > 0) {
        cur += " ";
        curMultiLine = true;
      } else flush();
    } else if (c === ";" && exprDepth === 0) {
      flush();
    } else if (c === "{") {
      const head = exprDepth === 0 ? cur.trim() : "";
      if (head !== "" && (blocks.length === 0 ? topBlockHeader.test(head) : blocks.at(-1) === "table" && tableBlockHeader.test(head))) {
        items.push({ kind: "open", head: curMultiLine ? head.replace(/\s+/g, " ") : head, line: curLine });
        blocks.push(/^(?:(?:add|create)\s+)?table\s/.test(head) ? "table" : "other");
        cur = "";
        curBlank = true;
        curMultiLine = false;
        handle = null;
      } else {
        if (head === "" && exprDepth === 0) throw braceWithoutHeader(items.at(-1), line, blocks.at(-1));
        if (exprDepth === 0) exprLine = line;
        exprDepth++;
        append(c);
      }
    } else if (c === "}") {
      if (exprDepth > 0) {
        exprDepth--;
        cur += c;
        continue;
      }
      flush();
      if (blocks.length === 0) throw new DoctorInputError('"}" that closes no table or chain', { line, expected: '"table <ip|ip6|inet|arp|bridge|netdev> <name> {" before it' });
      blocks.pop();
      items.push({ kind: "close", line });
    } else append(c);
  }
  if (exprDepth > 0) throw new DoctorInputError(`"{" on line ${exprLine} is never closed`, { line: exprLine, expected: 'a closing "}"' });
  flush();
  if (blocks.length > 0) throw new DoctorInputError("nft ruleset ends inside a table or chain", { line: src.split("\n").length, expected: 'a closing "}"' });
  return { items: expandDefines(items), legacyWarning };
}

/**
 * A `{` that starts a statement belongs to no expression and opens no block. nft refuses it
 * (nft 1.0.6: "syntax error, unexpected '{'"): a newline ends the command or header before it
 * (`line: base_cmd stmt_separator`), so `table inet filter` alone on a line is a whole `add table`
 * and the `{` on the next line cannot give it a body. Only `\` at the line's end carries a header on.
 */
function braceWithoutHeader(prev: NftFileItem | undefined, line: number, block: Block | undefined): DoctorInputError {
  const header = block === undefined ? topBlockHeader : block === "table" ? tableBlockHeader : null;
  if (prev?.kind === "statement" && prev.line < line && header?.test(prev.text)) {
    return new DoctorInputError(
      `"{" on a line of its own: nft ends "${prev.text}" at the end of line ${prev.line}, so this "{" opens no block and nft -f refuses the file (syntax error, unexpected '{')`,
      { line, expected: `the "{" at the end of line ${prev.line}, after "${prev.text}" (or "\\" there to continue the line)` },
    );
  }
  return new DoctorInputError('"{" that follows no table, chain or set header: nft -f refuses it (syntax error, unexpected \'{\')', {
    line,
    expected: '"table|chain|set <name> {" with the "{" on the line of its header',
  });
}

const defineRe = /^(define|redefine)\s+([A-Za-z_][\w-]*)\s*=\s*([^]*)$/;

/** Applies `define`/`redefine`/`undefine` (scoped to their block) and refuses `include`. */
function expandDefines(items: NftFileItem[]): NftFileItem[] {
  const scopes: Map<string, string>[] = [new Map()];
  const out: NftFileItem[] = [];
  const lookup = (v: string) => {
    for (let s = scopes.length - 1; s >= 0; s--) if (scopes[s]!.has(v)) return scopes[s]!.get(v)!;
    return undefined;
  };
  for (const item of items) {
    if (item.kind === "close") {
      if (scopes.length > 1) scopes.pop();
      out.push(item);
      continue;
    }
    if (item.kind === "open") {
      out.push({ ...item, head: substitute(item.head, item.line, lookup) });
      scopes.push(new Map());
      continue;
    }
    const inc = /^include\s+("[^"]*"|\S+)/.exec(item.text);
    if (inc) {
      throw new DoctorInputError(`include ${inc[1]}: the doctor reads only the text it is given and cannot open included files`, {
        line: item.line,
        expected: `the contents of ${inc[1]} pasted in place of the include line`,
      });
    }
    const def = defineRe.exec(item.text);
    if (def) {
      scopes.at(-1)!.set(def[2]!, substitute(def[3]!.trim(), item.line, lookup));
      continue;
    }
    const undef = /^undefine\s+([A-Za-z_][\w-]*)$/.exec(item.text);
    if (undef) {
      scopes.at(-1)!.delete(undef[1]!);
      continue;
    }
    out.push({ ...item, text: substitute(item.text, item.line, lookup) });
  }
  return out;
}

/** `$name` outside quoted strings → its value; a set value `{ a, b }` used inside braces merges into them (as nft does). */
function substitute(text: string, line: number, lookup: (v: string) => string | undefined): string {
  if (!text.includes("$")) return text;
  return text.split(/("[^"]*")/).map((part, i) => {
    if (i % 2 === 1) return part;
    return part.replace(/\$([A-Za-z_][\w-]*)/g, (_m, v: string, at: number) => {
      const value = lookup(v);
      if (value === undefined) throw new DoctorInputError(`undefined variable $${v}`, { line, expected: `"define ${v} = <value>" before the line that uses $${v}` });
      const before = part.slice(0, at);
      const insideBraces = (before.match(/\{/g)?.length ?? 0) > (before.match(/\}/g)?.length ?? 0);
      return insideBraces && value.startsWith("{") && value.endsWith("}") ? value.slice(1, -1).trim() : value;
    });
  }).join("");
}
