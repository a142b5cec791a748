import assert from "node:assert/strict";
import { it } from "node:test";
import { parseDuration, parseInteger } from "./parse-values.js";

it("parses Go durations as upstream's flags take them", () => {
  assert.equal(parseDuration("--x", "1h"), 3_600_000);
  assert.equal(parseDuration("--x", "1m30s"), 90_000);
  assert.equal(parseDuration("--x", "500ms"), 500);
  assert.equal(parseDuration("--x", "0s"), 0);
  assert.equal(parseDuration("--x", "10"), 10_000);
  assert.throws(() => parseDuration("--keepalive-time", "soon"), /--keepalive-time: "soon" is not a duration/);
  assert.throws(() => parseDuration("--x", "5x"), /not a duration/);
});

it("parses integers within a range and names the flag", () => {
  assert.equal(parseInteger("--n", "42", 1, 100), 42);
  assert.throws(() => parseInteger("--server-count", "0", 1), /--server-count: 0 is out of range/);
  assert.throws(() => parseInteger("--n", "4.5"), /not an integer/);
});
