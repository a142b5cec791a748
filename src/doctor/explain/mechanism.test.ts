import { test } from "node:test";
import assert from "node:assert/strict";
import { explainError } from "./explain-error.js";
import { errorPatterns } from "./error-patterns.js";
import { explainMechanisms, reportedMechanism } from "./mechanism.js";

// doctor-cli.md `explain`, copied here so that a change on either side shows.
const contract = ["timeout", "refused", "no-route", "no-agent", "tls", "not-tls", "auth", "dns", "unknown"];

test("the reported mechanisms are exactly the contract's", () => {
  assert.deepEqual([...explainMechanisms], contract);
  for (const p of errorPatterns) assert.ok(contract.includes(reportedMechanism(p.mechanism)), p.name);
});

test("reset, fd-limit and permission are reported as refused, the finer class kept in mechanismDetail", () => {
  for (const [text, detail] of [
    ["read tcp 10.224.0.7:41234->20.76.12.34:443: read: connection reset by peer", "reset"],
    ["dial tcp 10.224.0.5:10250: socket: too many open files", "fd-limit"],
    ["dial tcp 10.224.0.5:10250: connect: permission denied", "permission"],
  ] as const) {
    const r = explainError(text);
    assert.deepEqual([r["mechanism"], r["mechanismDetail"], r.status], ["refused", detail, "warning"], text);
  }
});

test("a contract mechanism is its own detail", () => {
  const r = explainError("dial tcp 10.224.0.5:10250: i/o timeout");
  assert.deepEqual([r["mechanism"], r["mechanismDetail"]], ["timeout", "timeout"]);
  const u = explainError("the cake is a lie");
  assert.deepEqual([u["mechanism"], u["mechanismDetail"]], ["unknown", "unknown"]);
});
