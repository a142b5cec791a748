import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { CheckResult } from "./check-result.js";
import { renderErrorJson, renderErrorLine, renderJson } from "./render-json.js";

const result: CheckResult = {
  check: "ufw", status: "problem", summary: "s", fixes: [{ description: "d", command: "ufw delete 1" }], assumptions: ["a"],
  flow: { protocol: "tcp", source: "10.224.0.5", destination: null, port: 10250 },
  verdict: "blocked", effect: "drop", decidedBy: { rule: 1, action: "DENY", policy: null, text: "[ 1] 10250/tcp DENY IN 10.224.0.5" },
  details: ["for people only"],
};

describe("renderJson", () => {
  it("is one JSON object with every contract field and without details", () => {
    const out = renderJson(result);
    assert.ok(out.endsWith("}\n"));
    const parsed = JSON.parse(out);
    assert.deepEqual(Object.keys(parsed), ["check", "status", "summary", "fixes", "assumptions", "flow", "verdict", "effect", "decidedBy"]);
    assert.equal(parsed.effect, "drop");
    assert.equal(parsed.flow.destination, null);
  });

  it("keeps check-specific fields and drops details inside findings too", () => {
    const parsed = JSON.parse(renderJson({ check: "node", status: "problem", summary: "s", fixes: [], assumptions: [], findings: [result], details: ["x"] }));
    assert.equal(parsed.details, undefined);
    assert.equal(parsed.findings[0].details, undefined);
    assert.equal(parsed.findings[0].decidedBy.rule, 1);
  });
});

describe("error reports", () => {
  it("the JSON error object always has message, file, line and expected", () => {
    assert.deepEqual(JSON.parse(renderErrorJson({ message: "--port: expected a port number 1–65535" })),
      { error: { message: "--port: expected a port number 1–65535", file: null, line: null, expected: null } });
    assert.deepEqual(JSON.parse(renderErrorJson({ message: "bad row", file: "ufw.txt", line: 9, expected: "a rule row" })),
      { error: { message: "bad row", file: "ufw.txt", line: 9, expected: "a rule row" } });
  });

  it("the one-line form names file and line and keeps to one line", () => {
    assert.equal(renderErrorLine({ message: "bad\nrow", file: "ufw.txt", line: 9, expected: "a rule row" }), "ufw.txt:9: bad row (expected a rule row)");
    assert.equal(renderErrorLine({ message: "cannot read the file: no such file", file: "x.json" }), "x.json: cannot read the file: no such file");
  });
});
