import assert from "node:assert/strict";
import { it } from "node:test";
import { StreamTable } from "./stream-table.js";

const s = (id: number) => ({ id });
const ids = (t: StreamTable<{ id: number }>) => t.list().map((x) => x.id);

it("finds, lists in id order and forgets streams, one or many", () => {
  const t = new StreamTable<{ id: number }>();
  assert.equal(t.size, 0);
  assert.deepEqual(ids(t), []);
  assert.equal(t.get(1), undefined);
  const one = s(1);
  t.add(one);
  assert.equal(t.get(1), one);
  assert.equal(t.get(3), undefined);
  assert.equal(t.size, 1);
  t.add(s(3));
  t.add(s(5));
  assert.equal(t.size, 3);
  assert.deepEqual(ids(t), [1, 3, 5]);
  t.delete(1);
  assert.deepEqual(ids(t), [3, 5]);
  t.add(s(7));
  assert.deepEqual(ids(t), [3, 5, 7], "a stream opened later lists after the earlier ones");
  t.delete(5);
  t.delete(3);
  assert.deepEqual(ids(t), [7]);
  assert.equal(t.get(7)?.id, 7);
  t.delete(9);
  assert.equal(t.size, 1, "deleting an unknown id changes nothing");
  t.delete(7);
  assert.equal(t.size, 0);
  assert.deepEqual(ids(t), []);
});

it("gives a copy to iterate: the table may change meanwhile", () => {
  const t = new StreamTable<{ id: number }>();
  for (const id of [1, 3, 5]) t.add(s(id));
  const seen: number[] = [];
  for (const x of t.list()) {
    seen.push(x.id);
    t.delete(x.id);
  }
  assert.deepEqual(seen, [1, 3, 5]);
  assert.equal(t.size, 0);
});

it("visits every stream without a copy, one or many", () => {
  const t = new StreamTable<{ id: number }>();
  const visited = () => {
    const seen: number[] = [];
    t.forEach((x) => seen.push(x.id));
    return seen.sort((a, b) => a - b);
  };
  assert.deepEqual(visited(), []);
  t.add(s(1));
  assert.deepEqual(visited(), [1]);
  for (const id of [3, 5, 7]) t.add(s(id));
  t.delete(1);
  assert.deepEqual(visited(), [3, 5, 7]);
});
