import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { formatDemoTable, wrapWords } from "./demo-command.js";

describe("wrapWords", () => {
  it("fills lines up to the width and breaks only at spaces", () => {
    assert.deepEqual(wrapWords("aa bb cc dd", 5), ["aa bb", "cc dd"]);
    assert.deepEqual(wrapWords("a  much-longer-word b", 4), ["a", "much-longer-word", "b"]);
    assert.deepEqual(wrapWords("", 10), [""]);
  });
});

describe("formatDemoTable", () => {
  const failure =
    "No agent available — no connected agent serves 127.0.1.4; is the agent on that node running, and is egress from it to 127.0.0.1:42169 open? (docs/troubleshooting.md §2)";

  it("keeps all of a long failure, wrapped under the status column within the width", () => {
    const table = formatDemoTable([{ node: "node-4", frontend: "grpc", ok: false, status: failure, latencyMs: 2.4 }], false, 80);
    const lines = table.trimEnd().split("\n");
    assert.ok(lines.length > 2, table);
    for (const line of lines) assert.ok(line.length <= 80, `${line.length} > 80: ${line}`);
    const statusColumn = lines[0]!.indexOf("status");
    assert.equal(lines.slice(1).map((l) => l.slice(statusColumn)).join(" "), failure);
    for (const line of lines.slice(2)) assert.equal(line.slice(0, statusColumn).trim(), "");
  });

  it("colours every line of a wrapped status", () => {
    const table = formatDemoTable([{ node: "node-4", frontend: "grpc", ok: false, status: failure, latencyMs: 2.4 }], true, 80);
    for (const line of table.trimEnd().split("\n").slice(1)) assert.match(line, /\x1b\[31m.+\x1b\[0m$/);
  });
});
