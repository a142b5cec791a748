import assert from "node:assert/strict";
import { test } from "node:test";
import { checkFlowFamilies, familyOf, unmapped } from "./flow-family.js";
import { DoctorInputError } from "./input-error.js";

test("an IPv4-mapped IPv6 address is IPv4; families must agree, a missing destination always does", () => {
  assert.equal(familyOf("::ffff:10.224.0.7"), "ipv4");
  assert.equal(familyOf("fd00::7"), "ipv6");
  assert.equal(unmapped("::ffff:10.224.0.7"), "10.224.0.7");
  assert.equal(unmapped("fd00::7"), "fd00::7");
  assert.doesNotThrow(() => checkFlowFamilies("::ffff:10.224.0.7", "10.224.0.5"));
  assert.doesNotThrow(() => checkFlowFamilies("fd00::7", undefined));
  assert.throws(() => checkFlowFamilies("fd00::7", "10.224.0.5"),
    (e: unknown) => e instanceof DoctorInputError && /--source fd00::7 is IPv6 and --destination 10\.224\.0\.5 is IPv4/.test(e.message) && e.expected === "two IPv4 or two IPv6 addresses");
});
