import assert from "node:assert/strict";
import { it } from "node:test";
import { FramePool } from "./frame-pool.js";

it("hands a returned buffer out again, sized to the request", () => {
  const pool = new FramePool(1024, 2, 0);
  const a = pool.take(100);
  assert.equal(a.length, 100);
  pool.give(a);
  assert.equal(pool.freeCount, 1);
  const b = pool.take(200);
  assert.equal(b.buffer, a.buffer);
  assert.equal(b.length, 200);
});

it("allocates larger requests normally and never pools foreign buffers", () => {
  const pool = new FramePool(1024, 2, 0);
  const big = pool.take(4096);
  assert.equal(big.length, 4096);
  pool.give(big);
  pool.give(Buffer.alloc(1024));
  pool.give(Buffer.allocUnsafe(10)); // from Node's shared slab: must not be pooled
  assert.equal(pool.freeCount, 0);
});

it("keeps at most maxFree buffers", () => {
  const pool = new FramePool(64, 2, 0);
  const bufs = [pool.take(10), pool.take(10), pool.take(10)];
  for (const b of bufs) pool.give(b);
  assert.equal(pool.freeCount, 2);
});

it("allocates small requests normally, so a burst of small packets does not take pooled-size buffers", () => {
  const pool = new FramePool(1024, 2);
  const small = pool.take(255);
  assert.equal(small.length, 255);
  assert.notEqual(small.buffer.byteLength, 1024, "not a pooled-size buffer");
  pool.give(small);
  assert.equal(pool.freeCount, 0);
  const large = pool.take(256);
  pool.give(large);
  assert.equal(pool.freeCount, 1, "from a quarter of the pooled size up, buffers are pooled");
});

it("drop() lets every free buffer go, and the pool makes new ones when asked again", () => {
  const pool = new FramePool(1024, 4, 0);
  const first = pool.take(100);
  pool.give(first);
  assert.equal(pool.freeCount, 1);
  pool.drop();
  assert.equal(pool.freeCount, 0);
  const next = pool.take(100);
  assert.notEqual(next.buffer, first.buffer, "a fresh buffer, not the dropped one");
  pool.give(next);
  assert.equal(pool.freeCount, 1, "buffers made after drop() are pooled as before");
});
