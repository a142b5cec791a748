import assert from "node:assert/strict";
import { it } from "node:test";
import { PacketTally, Tally } from "./packet-tally.js";

it("hands over each segment's packet counts once, then counts from zero again", () => {
  const tally = new PacketTally(["in", "out"] as const);
  tally.add("in", "DATA");
  tally.add("in", "DATA");
  tally.add("out", "CLOSE_REQ");
  const seen: string[] = [];
  tally.flush((s, t, n) => seen.push(`${s} ${t} ${n}`));
  assert.deepEqual(seen.sort(), ["in DATA 2", "out CLOSE_REQ 1"]);

  const again: string[] = [];
  tally.flush((s, t, n) => again.push(`${s} ${t} ${n}`));
  assert.equal(again.length, 0, "nothing is reported twice");
  tally.add("out", "WINDOW_UPDATE");
  tally.flush((s, t, n) => again.push(`${s} ${t} ${n}`));
  assert.deepEqual(again, ["out WINDOW_UPDATE 1"]);
});

it("a Tally gives its sum once", () => {
  const t = new Tally();
  t.add(65536);
  t.add(1);
  assert.equal(t.take(), 65537);
  assert.equal(t.take(), 0);
});
