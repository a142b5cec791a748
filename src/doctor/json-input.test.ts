import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../../test/helpers/seeded-random.js";
import { DoctorInputError } from "./input-error.js";
import { jsonErrorLine, parseJsonInput } from "./json-input.js";
import { findJsonSyntaxError } from "./json-places.js";

const jsonSyntaxErrorOffset = (text: string): number | null => findJsonSyntaxError(text)?.offset ?? null;

function lineOf(text: string): number | undefined {
  try {
    parseJsonInput(text, "x");
  } catch (err) {
    assert.ok(err instanceof DoctorInputError, String(err));
    assert.match(err.message, /^not JSON: /);
    assert.equal(err.expected, "x");
    return err.line;
  }
  assert.fail("expected a DoctorInputError");
}

test("an error Node 20 reports without a position still gets its line", () => {
  assert.equal(lineOf('{"name": "x", "securityRules": [ }'), 1);
  assert.equal(lineOf('{\n  "name": "x",\n  "securityRules": [ }\n}\n'), 3);
  assert.equal(lineOf('{\n  "name": "x",\n  "rules": [\n    nul\n  ]\n}'), 4);
  assert.equal(lineOf('{\n  "a": 1\n}\n{\n  "b": 2\n}'), 4);
});

test("input that ends too early (truncated az output) is placed on its last line with content", () => {
  assert.equal(lineOf('{\n  "value": [\n    {"name": {"value": "UsedSnatPorts"}, "timeseries": ['), 3);
  assert.equal(lineOf('{\n  "value": [\n    {"name": "a",\n\n'), 3);
  assert.equal(lineOf('{\n  "name": "unterminated\n'), 2);
  assert.equal(lineOf(""), 1);
  assert.equal(lineOf("\n\n"), 1);
});

test("a position or a line/column in the message is used as given", () => {
  const text = '{\n  "a": 1,\n  "b": x\n}';
  assert.equal(jsonErrorLine(text, "Unexpected token 'x' in JSON at position 20"), 3);
  assert.equal(jsonErrorLine(text, "Unexpected token 'x', ... is not valid JSON (line 3 column 8)"), 3);
  assert.equal(jsonErrorLine(text, "Unexpected end of JSON input"), 4);
});

test("a UTF-8 byte order mark is not an error", () => {
  assert.deepEqual(parseJsonInput('\uFEFF{"a": 1}', "x"), { a: 1 });
});

test("the scanner accepts valid JSON and finds RFC 8259's offending character", () => {
  for (const ok of ['{"a": [1, -2.5e+3, true, false, null, "\\u00e9\\n"]}', "[]", " 0 ", '"x"', "[[[[[]]]]]"]) {
    assert.equal(jsonSyntaxErrorOffset(ok), null, ok);
  }
  for (const [bad, at] of [["[1,]", 3], ['{"a":1,}', 7], ["01", 1], ["[1.]", 3], ['"a\tb"', 2], ["tru", 3], ["{'a':1}", 1], ["[1] x", 4], ['"\\x"', 2]] as const) {
    assert.equal(jsonSyntaxErrorOffset(bad), at, bad);
  }
  assert.equal(jsonSyntaxErrorOffset("[".repeat(200_000)), 200_000, "deep nesting does not overflow the stack");
});

test("the line agrees with V8's position wherever V8 gives one, on mutated real az JSON", () => {
  const root = fileURLToPath(new URL("../../test/fixtures/doctor/", import.meta.url));
  const files: string[] = [];
  (function walk(dir: string) {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".json") && !dir.includes("nftables")) files.push(readFileSync(path, "utf8"));
    }
  })(root);
  const rand = seededRandom(0x150e);
  const pieces = ["{", "}", "[", "]", ",", ":", '"', "\\", "1", "-", ".", "e", "t", "n", " ", "\n", "\u0001"];
  let compared = 0;
  for (let n = 0; n < 3000; n++) {
    let text = files[Math.floor(rand() * files.length)]!;
    for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) {
      const at = Math.floor(rand() * text.length);
      const r = rand();
      if (r < 0.4) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(rand() * 3));
      else if (r < 0.8) text = text.slice(0, at) + pieces[Math.floor(rand() * pieces.length)]! + text.slice(at);
      else text = text.slice(0, at);
    }
    let message: string | null = null;
    try {
      JSON.parse(text);
    } catch (err) {
      message = (err as Error).message;
    }
    assert.equal(jsonSyntaxErrorOffset(text) === null, message === null, `${message}: ${JSON.stringify(text.slice(0, 200))}`);
    if (message === null || !/position \d+/.test(message)) continue;
    compared++;
    assert.equal(jsonErrorLine(text, "no position"), jsonErrorLine(text, message), message);
  }
  assert.ok(compared > 1000, `compared ${compared}`);
});
