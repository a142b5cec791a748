import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findJsonSyntaxError, jsonPlace, jsonPlaceText, memberItemOffsets } from "./json-places.js";

describe("json-places", () => {
  it("agrees with JSON.parse on what is JSON, and on the position wherever Node's message gives one", () => {
    const seeds = ['{"nftables": [{"table": {"family": "inet", "name": "f", "handle": 1}}, {"rule": {"expr": [{"accept": null}]}}]}', '{"a": [1, -2.5e+3, true, false, null, "x\\u00e9\\n", {}, []]}'];
    seeds.push(JSON.stringify(JSON.parse(seeds[0]!), null, 2));
    const alphabet = '{}[],:"\\ \n\t0123456789-+.eEtrufalsn\u0001x';
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    let positions = 0;
    for (let k = 0; k < 3000; k++) {
      let text = seeds[rnd(seeds.length)]!;
      for (let e = 1 + rnd(3); e > 0; e--) {
        const p = rnd(text.length + 1);
        text = text.slice(0, p) + (rnd(3) === 0 ? "" : alphabet[rnd(alphabet.length)]) + text.slice(p + rnd(2));
      }
      let message: string | null = null;
      try {
        JSON.parse(text);
      } catch (e) {
        message = (e as Error).message;
      }
      const found = findJsonSyntaxError(text);
      assert.equal(found === null, message === null, `${JSON.stringify(text)}: ${message}`);
      const pos = /position (\d+)/.exec(message ?? "");
      if (pos) {
        positions++;
        assert.equal(found?.offset, Number(pos[1]), `${JSON.stringify(text)}: ${message}`);
      }
    }
    assert.ok(positions > 100);
  });

  it("says what was expected, and stops on deep nesting without overflowing the stack", () => {
    assert.deepEqual(findJsonSyntaxError('{"a": }'), { offset: 6, line: 1, column: 7, found: '"}"', expected: "a JSON value (object, array, string, number, true, false or null)" });
    assert.equal(findJsonSyntaxError("[1, 2")?.found, "the end of the input");
    assert.equal(findJsonSyntaxError("[".repeat(200_000))?.offset, 200_000);
  });

  it("places an offset by line and column, or by character in a one-line text", () => {
    const text = '{\n  "a": 1,\n  "b": x\n}\n';
    assert.deepEqual(jsonPlace(text, text.indexOf("x")), { offset: text.indexOf("x"), line: 3, column: 8 });
    assert.equal(jsonPlaceText(text, jsonPlace(text, text.indexOf("x"))), "line 3, column 8");
    assert.equal(jsonPlaceText('{"a": x}\n', jsonPlace('{"a": x}\n', 6)), "character 7");
  });

  it("finds where each item of the top-level member's array starts", () => {
    const text = '{"x": [0], "nftables": [1, {"a": [2, 3]}, "s"], "b": [4]}';
    assert.deepEqual(memberItemOffsets(text, "nftables").map((o) => text[o]), ["1", "{", '"']);
  });
});
