import assert from "node:assert/strict";
import { it } from "node:test";
import { FramePool } from "./frame-pool.js";

it("hands a returned buffer out again, sized to the request", () => {
  const pool = new FramePool(1024, 2);
  const a = pool.take(100);
  assert.equal(a.length, 100);
  pool.give(a);
  assert.equal(pool.freeCount, 1);
  const b = pool.take(200);
  assert.equal(b.buffer, a.buffer);
  assert.equal(b.length, 200);
});

it("allocates larger requests normally and never pools foreign buffers", () => {
  const pool = new FramePool(1024, 2);
  const big = pool.take(4096);
  assert.equal(big.length, 4096);
  pool.give(big);
  pool.give(Buffer.alloc(1024));
  pool.give(Buffer.allocUnsafe(10)); // from Node's shared slab: must not be pooled
  assert.equal(pool.freeCount, 0);
});

it("keeps at most maxFree buffers", () => {
  const pool = new FramePool(64, 2);
  const bufs = [pool.take(10), pool.take(10), pool.take(10)];
  for (const b of bufs) pool.give(b);
  assert.equal(pool.freeCount, 2);
});
