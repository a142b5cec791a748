import { test } from "node:test";
import assert from "node:assert/strict";
import { SlotEmitter } from "./slot-emitter.js";

test("listeners run in order with the emitter as this; emit reports whether anyone listened", () => {
  const e = new SlotEmitter<"a" | "b">();
  const seen: string[] = [];
  assert.equal(e.emit("a", 1), false);
  e.on("a", function (this: unknown, x: number) {
    assert.equal(this, e);
    seen.push(`first ${x}`);
  });
  e.on("a", (x: number) => seen.push(`second ${x}`));
  assert.equal(e.emit("a", 7), true);
  assert.deepEqual(seen, ["first 7", "second 7"]);
  assert.equal(e.listenerCount("a"), 2);
  assert.equal(e.listenerCount("b"), 0);
});

test("off removes one listener among several or the only one; a listener added while emitting waits for the next emit", () => {
  const e = new SlotEmitter<"a">();
  const calls: string[] = [];
  const one = () => calls.push("one");
  const two = () => calls.push("two");
  const three = () => calls.push("three");
  e.on("a", one).on("a", two).on("a", three);
  e.off("a", two);
  e.emit("a");
  assert.deepEqual(calls, ["one", "three"]);
  e.off("a", one).off("a", three);
  assert.equal(e.listenerCount("a"), 0);
  e.on("a", () => e.on("a", one));
  calls.length = 0;
  e.emit("a");
  assert.deepEqual(calls, []);
  e.emit("a");
  assert.deepEqual(calls, ["one"]);
});

test("once runs at the next emit only, with the emitter as this; off with the original listener cancels it", () => {
  const e = new SlotEmitter<"a">();
  const seen: unknown[] = [];
  e.once("a", function (this: unknown, x: number) {
    seen.push(this === e, x);
  });
  e.on("a", (x: number) => seen.push(`on ${x}`));
  e.emit("a", 1);
  e.emit("a", 2);
  assert.deepEqual(seen, [true, 1, "on 1", "on 2"]);
  const cancelled = () => seen.push("cancelled ran");
  e.once("a", cancelled);
  e.off("a", cancelled);
  e.emit("a", 3);
  assert.deepEqual(seen.slice(4), ["on 3"]);
  assert.equal(e.listenerCount("a"), 1);
});
