import assert from "node:assert/strict";
import { it } from "node:test";
import { Deque } from "./deque.js";

it("is first in, first out across emptying and refilling", () => {
  const q = new Deque<number>();
  assert.equal(q.shift(), undefined);
  for (let round = 0; round < 3; round++) {
    q.push(1);
    q.push(2);
    assert.equal(q.length, 2);
    assert.equal(q.shift(), 1);
    assert.equal(q.shift(), 2);
    assert.equal(q.length, 0, "empty again");
    assert.equal(q.peek(), undefined);
  }
});

it("keeps order through compaction of a long dead prefix", () => {
  const q = new Deque<number>();
  for (let i = 0; i < 5000; i++) q.push(i);
  for (let i = 0; i < 3000; i++) assert.equal(q.shift(), i);
  q.push(5000);
  assert.deepEqual([...q].slice(0, 3), [3000, 3001, 3002]);
  assert.equal(q.length, 2001);
  for (let i = 3000; i <= 5000; i++) assert.equal(q.shift(), i);
  assert.equal(q.length, 0);
});

it("replaceHead swaps the first item and refuses an empty deque", () => {
  const q = new Deque<string>();
  assert.throws(() => q.replaceHead("x"), /empty deque/);
  q.push("abc");
  q.push("d");
  q.replaceHead("bc");
  assert.equal(q.shift(), "bc");
  assert.equal(q.shift(), "d");
});
