import assert from "node:assert/strict";
import { it } from "node:test";
import { DialRateLimiter } from "./dial-rate-limiter.js";

it("allows a burst, then the steady rate, and refills with time", () => {
  let now = 0;
  const limiter = new DialRateLimiter(10, 5, () => now);
  const takes = () => {
    let n = 0;
    while (limiter.tryTake()) n++;
    return n;
  };
  assert.equal(takes(), 5);
  now += 100; // 0.1 s at 10/s: one more
  assert.equal(takes(), 1);
  now += 10_000; // refills to the burst, not beyond
  assert.equal(takes(), 5);
});
