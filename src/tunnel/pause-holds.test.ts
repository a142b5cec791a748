import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PauseHolds } from "./pause-holds.js";

function recorder() {
  const calls: string[] = [];
  return { calls, stream: { pause: () => calls.push("pause"), resume: () => calls.push("resume") } };
}

describe("PauseHolds", () => {
  it("pauses at the first hold and resumes only when the last is released", () => {
    const { calls, stream } = recorder();
    const holds = new PauseHolds(stream);
    const a = holds.hold();
    const b = holds.hold();
    assert.deepEqual(calls, ["pause"]);
    a();
    assert.equal(holds.isPaused, true);
    assert.deepEqual(calls, ["pause"]);
    b();
    assert.equal(holds.isPaused, false);
    assert.deepEqual(calls, ["pause", "resume"]);
  });

  it("ignores a second release of the same hold", () => {
    const { calls, stream } = recorder();
    const holds = new PauseHolds(stream);
    const a = holds.hold();
    const b = holds.hold();
    a();
    a();
    assert.equal(holds.isPaused, true, "b still holds the stream");
    b();
    assert.deepEqual(calls, ["pause", "resume"]);
  });

  it("serves as the memory budget's source without undoing a connection's hold", () => {
    const { calls, stream } = recorder();
    const holds = new PauseHolds(stream);
    const budget = holds.asPausable();
    const conn = holds.hold();
    budget.pause();
    budget.pause(); // a second pause from the budget is the same hold
    budget.resume();
    assert.equal(holds.isPaused, true, "the connection still holds it");
    budget.resume();
    conn();
    assert.deepEqual(calls, ["pause", "resume"]);
  });
});
