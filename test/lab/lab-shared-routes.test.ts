// Two labs side by side share the root namespace's blackhole routes: `lab down` of the first
// leaves them while the second runs (docs/lab.md: they protect the host while a lab runs), and
// the second's `down` removes them, although it did not add them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { LAB_RANGES, labDown } from "../../src/lab/index.js";
import { otherLabStates, readState } from "../../src/lab/lab-state.js";
import { addBlackholes, blackholeRanges } from "../../src/lab/lab-topology.js";
import { bareLab, isRoot } from "./bare-lab.js";

const first = `nt-ra${process.pid % 100000}`;
const second = `nt-rb${process.pid % 100000}`;

test("lab down of one lab keeps the blackhole routes a second lab still needs; the last lab down removes them", { skip: isRoot ? false : "needs root: adds blackhole routes", timeout: 30_000 }, async (t) => {
  const before = await blackholeRanges();
  // Routes someone else holds (the host, or a lab that is not ours) would make the last check meaningless.
  const foreign = LAB_RANGES.filter((r) => before.has(r));
  if (foreign.length > 0 && otherLabStates("").length === 0) return t.skip(`the host already blackholes ${foreign.join(", ")}`);
  t.after(async () => {
    await labDown(first);
    await labDown(second);
  });

  const a = await bareLab({ prefix: first, nodes: 1 });
  await addBlackholes(a);
  const b = await bareLab({ prefix: second, nodes: 1 });
  await addBlackholes(b);
  assert.deepEqual(readState(second)!.routes, [...LAB_RANGES], "the second lab shares the routes the first added");
  for (const r of LAB_RANGES) assert.ok((await blackholeRanges()).has(r), r);

  const downFirst = await labDown(first);
  assert.deepEqual(downFirst.removed, [], "the first lab's down removes nothing the second needs");
  for (const r of LAB_RANGES) assert.ok((await blackholeRanges()).has(r), `blackhole ${r} still there while ${second} runs`);

  const downSecond = await labDown(second);
  if (otherLabStates("").length > 0) return; // another lab (a concurrent test's) still needs them
  assert.deepEqual(downSecond.removed, LAB_RANGES.map((r) => `blackhole ${r}`));
  const after = await blackholeRanges();
  for (const r of LAB_RANGES) assert.ok(!after.has(r), `blackhole ${r} removed by the last lab`);
});
