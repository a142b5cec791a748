// The YAML that kubeconfig files and identity maps are written in, without a runtime YAML
// dependency (the `yaml` package is a dev dependency only). Covers what kubectl and people write
// in these two files: block mappings, block sequences (also `- key: value` items), plain, single-
// and double-quoted scalars, comments, `|`/`>` block scalars, and flow collections of scalars
// (`[a, b]`, `{}`). Anchors, tags and multi-document streams are refused with a clear error.
// JSON is accepted as is (it is tried first). parse-simple-yaml.test.ts checks it against `yaml`.
import { TunnelError } from "../../protocol/index.js";

export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  readonly indent: number;
  readonly text: string;
  readonly number: number;
}

/**
 * A syntax error inside the parser. `why` may name the offending text as `{text}`; the public
 * function fills it in, or withholds it for a file that holds credentials (a kubeconfig's token or
 * key on a malformed line would otherwise end up in the error, on stderr and in the logs).
 */
class YamlSyntaxError extends Error {
  constructor(readonly line: number, readonly why: string, readonly text = "") {
    super(why);
  }
}

const fail = (line: number, why: string, text?: string): never => {
  throw new YamlSyntaxError(line, why, text);
};

export interface ParseYamlOptions {
  /** Errors name the line but never quote its text: the file holds secrets. */
  readonly withholdText?: boolean;
}

export function parseSimpleYaml(source: string, options: ParseYamlOptions = {}): YamlValue {
  try {
    return parseDocument(source);
  } catch (err) {
    if (!(err instanceof YamlSyntaxError)) throw err;
    const text = options.withholdText ? "[withheld: the file may hold credentials]" : err.text;
    throw new TunnelError("INVALID_OPTION", `YAML line ${err.line}: ${err.why.replace("{text}", () => text)}`);
  }
}

function parseDocument(source: string): YamlValue {
  const trimmed = source.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return JSON.parse(trimmed) as YamlValue;
    } catch {
      // Not JSON: a flow collection in YAML, parsed below.
    }
  }
  const lines: Line[] = [];
  source.split(/\r?\n/).forEach((raw, i) => {
    const text = stripComment(raw).trimEnd();
    if (text.trim() === "" || text.trim() === "---") return;
    if (/^\t/.test(text)) fail(i + 1, "tabs are not allowed for indentation");
    if (text.trim() === "..." || /^---\s/.test(text.trim())) fail(i + 1, "only one document is supported");
    lines.push({ indent: text.length - text.trimStart().length, text: text.trimStart(), number: i + 1 });
  });
  // Block scalars need the raw lines, so keep them by number.
  const rawLines = source.split(/\r?\n/);
  if (lines.length === 0) return null;
  const state = { i: 0 };
  const value = parseBlock(lines, rawLines, state, lines[0]!.indent);
  if (state.i < lines.length) fail(lines[state.i]!.number, "unexpected indentation");
  return value;
}

function parseBlock(lines: Line[], raw: string[], state: { i: number }, indent: number): YamlValue {
  const first = lines[state.i]!;
  if (first.text === "-" || first.text.startsWith("- ")) return parseSequence(lines, raw, state, indent);
  if (mappingKey(first.text) !== null) return parseMapping(lines, raw, state, indent);
  state.i++;
  return parseScalar(first.text, first.number);
}

function parseSequence(lines: Line[], raw: string[], state: { i: number }, indent: number): YamlValue[] {
  const out: YamlValue[] = [];
  while (state.i < lines.length) {
    const line = lines[state.i]!;
    if (line.indent < indent) break;
    if (line.indent > indent) fail(line.number, "unexpected indentation in a sequence");
    if (!(line.text === "-" || line.text.startsWith("- "))) break;
    const rest = line.text.slice(1).trimStart();
    if (rest === "") {
      state.i++;
      out.push(state.i < lines.length && lines[state.i]!.indent > indent ? parseBlock(lines, raw, state, lines[state.i]!.indent) : null);
      continue;
    }
    // `- key: value` starts a mapping whose keys sit at the column after "- ".
    const column = line.indent + (line.text.length - rest.length);
    if (mappingKey(rest) !== null || rest.startsWith("- ")) {
      lines[state.i] = { indent: column, text: rest, number: line.number };
      out.push(parseBlock(lines, raw, state, column));
      continue;
    }
    state.i++;
    out.push(parseScalarOrBlock(rest, line, lines, raw, state, indent));
  }
  return out;
}

function parseMapping(lines: Line[], raw: string[], state: { i: number }, indent: number): { [key: string]: YamlValue } {
  const out: { [key: string]: YamlValue } = {};
  while (state.i < lines.length) {
    const line = lines[state.i]!;
    if (line.indent < indent) break;
    if (line.indent > indent) fail(line.number, "unexpected indentation in a mapping");
    const kv = mappingKey(line.text);
    if (kv === null) {
      if (line.text.startsWith("- ") || line.text === "-") break;
      fail(line.number, 'expected "key: value", got "{text}"', line.text);
    }
    const [key, rest] = kv!;
    if (Object.hasOwn(out, key)) fail(line.number, `duplicate key "${key}"`);
    state.i++;
    if (rest === "") {
      const next = lines[state.i];
      // A sequence may sit at the same indentation as its key (kubectl writes it that way).
      if (next && (next.indent > indent || (next.indent === indent && (next.text.startsWith("- ") || next.text === "-")))) {
        out[key] = parseBlock(lines, raw, state, next.indent);
      } else out[key] = null;
      continue;
    }
    out[key] = parseScalarOrBlock(rest, line, lines, raw, state, indent);
  }
  return out;
}

function parseScalarOrBlock(text: string, line: Line, lines: Line[], raw: string[], state: { i: number }, indent: number): YamlValue {
  if (/^[|>][+-]?$/.test(text)) {
    // A block scalar: every following line indented deeper than its parent.
    const body: string[] = [];
    let n = line.number; // 1-based number of the header line == 0-based index of the next line
    let bodyIndent = -1;
    while (n < raw.length) {
      const r = raw[n]!;
      if (r.trim() === "") {
        body.push("");
        n++;
        continue;
      }
      const ind = r.length - r.trimStart().length;
      if (ind <= indent) break;
      if (bodyIndent < 0) bodyIndent = ind;
      body.push(r.slice(bodyIndent));
      n++;
    }
    while (state.i < lines.length && lines[state.i]!.number <= n) state.i++;
    while (body.length > 0 && body[body.length - 1] === "") body.pop();
    const joined = text.startsWith("|") ? body.join("\n") : body.join(" ");
    return text.endsWith("-") ? joined : `${joined}\n`;
  }
  return parseScalar(text, line.number);
}

/** `key: rest` → [key, rest]; null when the line is not a mapping entry. */
function mappingKey(text: string): [string, string] | null {
  let key: string;
  let after: string;
  if (text.startsWith('"') || text.startsWith("'")) {
    const end = quotedEnd(text);
    if (end < 0) return null;
    key = parseScalar(text.slice(0, end + 1), 0) as string;
    after = text.slice(end + 1);
    if (!after.startsWith(":")) return null;
    return [key, after.slice(1).trim()];
  }
  if (text.startsWith("- ") || /^[[{]/.test(text)) return null;
  // A plain key ends at the first ": " (or a final ":"), so "system:serviceaccount:ns:sa: x" works.
  const m = /^(.*?):(?:\s+(.*)|)$/.exec(text);
  if (!m || m[1]!.trim() === "" || /\s#/.test(m[1]!)) return null;
  key = m[1]!.trimEnd();
  return [key, (m[2] ?? "").trim()];
}

function quotedEnd(text: string): number {
  const q = text[0];
  for (let i = 1; i < text.length; i++) {
    if (q === '"' && text[i] === "\\") i++;
    else if (text[i] === q) {
      if (q === "'" && text[i + 1] === "'") i++;
      else return i;
    }
  }
  return -1;
}

function parseScalar(text: string, line: number): YamlValue {
  const t = text.trim();
  if (t.startsWith("&") || t.startsWith("*") || t.startsWith("!")) fail(line, "anchors, aliases and tags are not supported");
  if (t.startsWith('"')) {
    if (quotedEnd(t) !== t.length - 1) fail(line, "unterminated or trailing text after a quoted string: {text}", t);
    try {
      return JSON.parse(t) as string;
    } catch {
      return fail(line, "bad double-quoted string: {text}", t);
    }
  }
  if (t.startsWith("'")) {
    if (quotedEnd(t) !== t.length - 1) fail(line, "unterminated or trailing text after a quoted string: {text}", t);
    return t.slice(1, -1).replace(/''/g, "'");
  }
  if (t.startsWith("[") || t.startsWith("{")) return parseFlow(t, line);
  if (t === "" || t === "~" || t === "null" || t === "Null" || t === "NULL") return null;
  if (/^(true|True|TRUE)$/.test(t)) return true;
  if (/^(false|False|FALSE)$/.test(t)) return false;
  if (/^[-+]?\d+$/.test(t)) return Number(t);
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  return t;
}

/** Flow collections of scalars only: `[a, "b", 1]`, `{k: v}`; nesting is refused. */
function parseFlow(t: string, line: number): YamlValue {
  const isList = t.startsWith("[");
  if (!t.endsWith(isList ? "]" : "}")) fail(line, "unterminated flow collection: {text}", t);
  const inner = t.slice(1, -1).trim();
  const items = inner === "" ? [] : splitFlow(inner, line);
  if (isList) return items.map((s) => parseScalar(s, line));
  const out: { [key: string]: YamlValue } = {};
  for (const item of items) {
    const kv = mappingKey(item);
    if (!kv) fail(line, 'expected "key: value" in a flow mapping, got "{text}"', item);
    out[kv![0]] = parseScalar(kv![1], line);
  }
  return out;
}

function splitFlow(inner: string, line: number): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === '"' || c === "'") {
      const end = quotedEnd(inner.slice(i));
      if (end < 0) fail(line, "unterminated string in a flow collection");
      i += end;
    } else if (c === "[" || c === "{") fail(line, "nested flow collections are not supported");
    else if (c === ",") {
      out.push(inner.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = inner.slice(start).trim();
  if (last !== "") out.push(last);
  return out;
}

function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (quote === '"' && c === "\\") i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      // Quotes open a string only at the start of a scalar.
      const before = line.slice(0, i).trimEnd();
      if (before === "" || /[:\-[{,]$/.test(before)) quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}
