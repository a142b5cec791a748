import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultPortsPerNode, nextBoundary } from "./default-allocation.js";
import { portsThatFit } from "./snat-arithmetic.js";

// doctor-cli.md: nextBoundary is where the default allocation halves next. In the last row
// (801-1,000) it never halves again: past 1,000 there is no default allocation at all.
test("the §5.2 table at and around every boundary", () => {
  const rows: [number, number | null, number | null][] = [
    [1, 1024, 51], [50, 1024, 51], [51, 512, 101], [100, 512, 101], [101, 256, 201], [200, 256, 201],
    [201, 128, 401], [400, 128, 401], [401, 64, 801], [800, 64, 801], [801, 32, null], [1000, 32, null], [1001, null, null],
  ];
  for (const [pool, ports, next] of rows) {
    assert.equal(defaultPortsPerNode(pool), ports, `ports at ${pool}`);
    assert.equal(nextBoundary(pool), next, `boundary after ${pool}`);
  }
});

test("explicit ports that fit are multiples of 8 and never above 64,000", () => {
  assert.equal(portsThatFit(121, 2), 1056);
  assert.equal(portsThatFit(1, 2), 64000);
  assert.equal(portsThatFit(34, 2) % 8, 0);
  assert.ok(portsThatFit(34, 2) * 34 <= 128000);
});
