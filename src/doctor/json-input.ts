// JSON input files of the doctor (`az ... -o json`): a syntax error is an input error that names
// the line (doctor-cli.md, "Common rules": exit 2 names the file, line and what was expected).
// Node 20's JSON.parse often gives no position ("Unexpected token '}', ... is not valid JSON",
// "Unexpected end of JSON input"), so the line is found in this order: the line/column or the
// position the message gives; the last line with content for an input that ends too early;
// otherwise the first offending character, found by json-places.ts's recogniser of RFC 8259.
import { DoctorInputError } from "./input-error.js";
import { findJsonSyntaxError } from "./json-places.js";

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
  return lineOfOffset(text, findJsonSyntaxError(text)?.offset ?? text.length);
}

/** The line of `offset`; an offset at the end, or in the whitespace after the content, is the last line with content. */
function lineOfOffset(text: string, offset: number): number {
  const contentEnd = text.trimEnd().length;
  const at = offset >= contentEnd ? Math.max(0, contentEnd - 1) : offset;
  return text.slice(0, at).split("\n").length;
}
