import { test } from "node:test";
import assert from "node:assert/strict";
import { DoctorInputError } from "../input-error.js";
import { parseSnatMetrics } from "./parse-snat-metrics.js";

test("truncated az output is an input error on its last line with content", () => {
  const text = '{\n  "value": [\n    { "name": { "value": "UsedSnatPorts" }, "timeseries": [\n';
  assert.throws(() => parseSnatMetrics(text), (e: unknown) => e instanceof DoctorInputError && e.line === 3 && /^not JSON: /.test(e.message));
});

test("a syntax error Node 20 reports without a position still names its line", () => {
  const text = '{\n  "value": [\n    { "name": ,\n  ]\n}';
  assert.throws(() => parseSnatMetrics(text), (e: unknown) => e instanceof DoctorInputError && e.line === 3);
});
