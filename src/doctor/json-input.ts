// JSON input files of the doctor (`az ... -o json`): a syntax error is an input error that names
// the line (doctor-cli.md, "Common rules": exit 2 names the file, line and what was expected).
// Node 20's JSON.parse often gives no position ("Unexpected token '}', ... is not valid JSON",
// "Unexpected end of JSON input"), so the line is found in this order: the line/column or the
// position the message gives; the last line with content for an input that ends too early;
// otherwise the first offending character, found by scanning the text as RFC 8259 defines it.
import { DoctorInputError } from "./input-error.js";

/** Parses a JSON input file; `expected` says what the file should hold, for the error message. */
export function parseJsonInput(text: string, expected: string): unknown {
  // A UTF-8 byte order mark (PowerShell's Out-File) is no part of the JSON.
  const json = text.startsWith("\uFEFF") ? text.slice(1) : text;
  try {
    return JSON.parse(json);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new DoctorInputError(`not JSON: ${message}`, { line: jsonErrorLine(json, message), expected, cause: err });
  }
}

/** The 1-based line of the syntax error that JSON.parse reported as `message` for `text`. */
export function jsonErrorLine(text: string, message: string): number {
  const lineColumn = /\(line (\d+) column \d+\)/.exec(message);
  if (lineColumn) return Number(lineColumn[1]);
  const position = /\bposition (\d+)/.exec(message);
  if (position) return lineOfOffset(text, Number(position[1]));
  if (/Unexpected end of JSON input/i.test(message)) return lineOfOffset(text, text.length);
  return lineOfOffset(text, jsonSyntaxErrorOffset(text) ?? text.length);
}

/** The line of `offset`; an offset at the end, or in the whitespace after the content, is the last line with content. */
function lineOfOffset(text: string, offset: number): number {
  const contentEnd = text.trimEnd().length;
  const at = offset >= contentEnd ? Math.max(0, contentEnd - 1) : offset;
  return text.slice(0, at).split("\n").length;
}

type Expect = "value" | "value-or-close" | "key" | "key-or-close" | "colon" | "after";

const isWhitespace = (c: string | undefined) => c === " " || c === "\t" || c === "\n" || c === "\r";
const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";
const isHex = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/**
 * The offset of the first character that makes `text` invalid JSON (RFC 8259), `text.length`
 * when it ends too early, null when it is valid. Iterative, so deep nesting cannot overflow
 * the stack.
 */
export function jsonSyntaxErrorOffset(text: string): number | null {
  const closers: string[] = [];
  let i = 0;
  let expect: Expect = "value";
  for (;;) {
    while (isWhitespace(text[i])) i++;
    if (i >= text.length) return expect === "after" && closers.length === 0 ? null : text.length;
    const c = text[i]!;
    switch (expect) {
      case "value":
      case "value-or-close":
        if (expect === "value-or-close" && c === "]") {
          closers.pop();
          i++;
          expect = "after";
        } else if (c === "{" || c === "[") {
          closers.push(c === "{" ? "}" : "]");
          i++;
          expect = c === "{" ? "key-or-close" : "value-or-close";
        } else {
          const end = scalarEnd(text, i);
          if (end < 0) return -end - 1;
          i = end;
          expect = "after";
        }
        break;
      case "key":
      case "key-or-close":
        if (expect === "key-or-close" && c === "}") {
          closers.pop();
          i++;
          expect = "after";
        } else if (c === '"') {
          const end = stringEnd(text, i);
          if (end < 0) return -end - 1;
          i = end;
          expect = "colon";
        } else return i;
        break;
      case "colon":
        if (c !== ":") return i;
        i++;
        expect = "value";
        break;
      case "after": {
        const closer = closers.at(-1);
        if (closer === undefined) return i; // something after the top-level value
        if (c === ",") {
          i++;
          expect = closer === "}" ? "key" : "value";
        } else if (c === closer) {
          closers.pop();
          i++;
        } else return i;
        break;
      }
    }
  }
}

// The scanners below return the offset after the token, or -(offset of the fault) - 1.

function scalarEnd(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return stringEnd(text, i);
  if (c === "-" || isDigit(c)) return numberEnd(text, i);
  for (const literal of ["true", "false", "null"]) {
    if (c !== literal[0]) continue;
    for (let k = 1; k < literal.length; k++) if (text[i + k] !== literal[k]) return -(i + k) - 1;
    return i + literal.length;
  }
  return -i - 1;
}

function stringEnd(text: string, i: number): number {
  let j = i + 1;
  for (;;) {
    if (j >= text.length) return -text.length - 1;
    const c = text[j]!;
    if (c === '"') return j + 1;
    if (c < " ") return -j - 1; // control characters must be escaped
    if (c !== "\\") {
      j++;
      continue;
    }
    const e = text[j + 1];
    if (e === "u") {
      for (let k = 2; k < 6; k++) if (!isHex(text[j + k])) return -Math.min(j + k, text.length) - 1;
      j += 6;
    } else if (e !== undefined && '"\\/bfnrt'.includes(e)) j += 2;
    else return -Math.min(j + 1, text.length) - 1;
  }
}

function numberEnd(text: string, i: number): number {
  let j = i;
  if (text[j] === "-") j++;
  if (text[j] === "0") j++;
  else if (isDigit(text[j])) while (isDigit(text[j])) j++;
  else return -j - 1;
  if (text[j] === ".") {
    j++;
    if (!isDigit(text[j])) return -j - 1;
    while (isDigit(text[j])) j++;
  }
  if (text[j] === "e" || text[j] === "E") {
    j++;
    if (text[j] === "+" || text[j] === "-") j++;
    if (!isDigit(text[j])) return -j - 1;
    while (isDigit(text[j])) j++;
  }
  return j;
}
