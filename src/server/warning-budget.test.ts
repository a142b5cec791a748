import assert from "node:assert/strict";
import { it } from "node:test";
import { WarningBudget } from "./warning-budget.js";

it("logs at most perWindow warnings per window and reports the rest in one line", () => {
  const lines: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const log = { warn: (fields: object, message: string) => void lines.push({ fields: fields as Record<string, unknown>, message }) };
  let now = 0;
  const budget = new WarningBudget(log as never, "agent connection refused", 3, 10_000, () => now);
  for (let i = 0; i < 8; i++) budget.warn({ reason: `r${i}` });
  assert.deepEqual(lines.map((l) => l.fields.reason), ["r0", "r1", "r2"]);

  budget.flush(); // the window's timer
  assert.equal(lines.length, 4);
  assert.equal(lines[3]!.fields.suppressed, 5);
  assert.equal(lines[3]!.fields.reason, "r7");
  assert.match(lines[3]!.message, /agent connection refused: 5 more within 10 s/);

  // Still the same window: further ones are held back again; a new window logs at once.
  budget.warn({ reason: "r8" });
  assert.equal(lines.length, 4);
  now = 10_000;
  budget.warn({ reason: "r9" });
  assert.deepEqual(lines.slice(4).map((l) => [l.fields.reason, l.fields.suppressed]), [["r8", 1], ["r9", undefined]]);
  budget.flush();
  assert.equal(lines.length, 6, "nothing held back, nothing more logged");
});
