import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DestinationPolicy } from "../agent/destination-policy.js";
import { collectDestinations, parseDuration, parseInteger } from "./parse-values.js";

it("parses Go durations as upstream's flags take them", () => {
  assert.equal(parseDuration("--x", "1h"), 3_600_000);
  assert.equal(parseDuration("--x", "1m30s"), 90_000);
  assert.equal(parseDuration("--x", "500ms"), 500);
  assert.equal(parseDuration("--x", "0s"), 0);
  assert.equal(parseDuration("--x", "10"), 10_000);
  assert.throws(() => parseDuration("--keepalive-time", "soon"), /--keepalive-time: "soon" is not a duration/);
  assert.throws(() => parseDuration("--x", "5x"), /not a duration/);
});

it("takes every form Go's time.ParseDuration takes: a sign, numbers like .5 and 1., a unit after each number", () => {
  assert.equal(parseDuration("--x", "+30s"), 30_000);
  assert.equal(parseDuration("--x", ".5h"), 1_800_000);
  assert.equal(parseDuration("--x", "1.s"), 1000);
  assert.equal(parseDuration("--x", "1h0m0s"), 3_600_000);
  assert.equal(parseDuration("--x", "1.5h2m"), 5_520_000);
  assert.equal(parseDuration("--x", "-0s"), 0);
  assert.throws(() => parseDuration("--keepalive-time", "-30s"), /--keepalive-time: "-30s" is negative/);
  for (const bad of ["+", ".", ".s", "1h 2m", "1hh", "h", ""]) assert.throws(() => parseDuration("--x", bad), /not a duration/, bad);
});

it("parses integers within a range and names the flag", () => {
  assert.equal(parseInteger("--n", "42", 1, 100), 42);
  assert.throws(() => parseInteger("--server-count", "0", 1), /--server-count: 0 is out of range/);
  assert.throws(() => parseInteger("--n", "4.5"), /not an integer/);
});

describe("collectDestinations (--allowed-destinations)", () => {
  const collect = (...values: string[]) => values.reduce<string[] | undefined>((prev, v) => collectDestinations(v, prev), undefined);

  it("keeps CIDR:P1,P2 as one entry and splits CIDRs at commas", () => {
    assert.deepEqual(collect("10.0.0.0/8:10250,10255"), ["10.0.0.0/8:10250,10255"]);
    assert.deepEqual(collect("10.0.0.0/8,192.168.0.0/16:443,8000-8100,172.16.0.0/12"), ["10.0.0.0/8", "192.168.0.0/16:443,8000-8100", "172.16.0.0/12"]);
    assert.deepEqual(collect("[fd00::/8]:10250,10255"), ["[fd00::/8]:10250,10255"]);
    const entries = collect("10.0.0.0/8:10250,10255", "127.0.0.1:8080")!;
    assert.deepEqual(entries, ["10.0.0.0/8:10250,10255", "127.0.0.1:8080"]);
    const policy = DestinationPolicy.parse(entries);
    assert.equal(policy.allows("10.1.2.3", 10255), true);
    assert.equal(policy.allows("10.1.2.3", 22), false);
  });

  it("does not attach a port to the previous flag's value, nor to a CIDR without ports", () => {
    assert.deepEqual(collect("10.0.0.0/8:10250", "10255"), ["10.0.0.0/8:10250", "10255"]);
    assert.deepEqual(collect("10.0.0.0/8,10255"), ["10.0.0.0/8", "10255"]);
    assert.throws(() => DestinationPolicy.parse(collect("10.0.0.0/8,10255")!), /"10255"/);
  });
});
