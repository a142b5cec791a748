// Runs every case of test/fixtures/doctor/nsg/cases.json through checkNsg and compares the
// verdict, the deciding rule and the fix with the stored expectations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkNsg } from "../src/doctor/nsg/index.js";
import type { NsgInputs } from "../src/doctor/nsg/index.js";

interface Case {
  name: string;
  nsgs: Partial<Record<keyof NsgInputs, string>>;
  flags: { source: string; destination: string; port?: number; protocol?: "tcp" | "udp"; sourcePort?: number; vnets?: string[]; asgs?: Record<string, string[]> };
  expected: {
    verdict: "allowed" | "blocked" | "indeterminate";
    decidedBy: Record<string, unknown> | null;
    /** Where an undecidable rule makes the verdict indeterminate: what the flow ends in whichever way it matches. */
    eitherWay?: { verdict: "allowed" | "blocked"; decidedBy: Record<string, unknown> };
    summaryIncludes?: string;
    fixIncludes?: string;
    assumptionIncludes?: string;
    pathLength?: number;
  };
}

const dir = join(import.meta.dirname, "fixtures/doctor/nsg");
const cases = JSON.parse(readFileSync(join(dir, "cases.json"), "utf8")) as Case[];
const statusOf = { allowed: "ok", blocked: "problem", indeterminate: "indeterminate" } as const;
const effectOf = { allowed: "accept", blocked: "drop", indeterminate: null } as const;

test("the corpus has at least 15 cases", () => assert.ok(cases.length >= 15));

for (const c of cases) {
  test(`nsg corpus: ${c.name}`, () => {
    const inputs: { -readonly [K in keyof NsgInputs]: NsgInputs[K] } = {};
    for (const [key, file] of Object.entries(c.nsgs)) {
      inputs[key as keyof NsgInputs] = { label: file, text: readFileSync(join(dir, file), "utf8") };
    }
    const r = checkNsg(inputs, {
      source: c.flags.source, destination: c.flags.destination, port: c.flags.port ?? 10250,
      protocol: c.flags.protocol ?? "tcp", vnets: c.flags.vnets ?? [], asgs: c.flags.asgs ?? {},
      ...(c.flags.sourcePort === undefined ? {} : { sourcePort: c.flags.sourcePort }),
    });
    assert.equal(r.check, "nsg");
    assert.equal(r.verdict, c.expected.verdict, r.summary);
    assert.equal(r.status, statusOf[c.expected.verdict]);
    assert.equal(r.effect, effectOf[c.expected.verdict]);
    if (c.expected.decidedBy === null) assert.equal(r.decidedBy, null);
    else {
      assert.ok(r.decidedBy, "decidedBy is set");
      for (const [k, v] of Object.entries(c.expected.decidedBy)) assert.deepEqual(r.decidedBy[k], v, `decidedBy.${k}`);
    }
    if (c.expected.eitherWay) {
      const e = r["eitherWay"] as { verdict: string; effect: string; decidedBy: Record<string, unknown> } | undefined;
      assert.deepEqual([e?.verdict, e?.effect], [c.expected.eitherWay.verdict, effectOf[c.expected.eitherWay.verdict]], r.summary);
      for (const [k, v] of Object.entries(c.expected.eitherWay.decidedBy)) assert.deepEqual(e?.decidedBy[k], v, `eitherWay.decidedBy.${k}`);
    }
    if (c.expected.summaryIncludes) assert.ok(r.summary.includes(c.expected.summaryIncludes), r.summary);
    if (c.expected.fixIncludes) assert.ok(r.fixes.some((f) => f.command.includes(c.expected.fixIncludes!)), JSON.stringify(r.fixes));
    if (c.expected.assumptionIncludes) assert.ok(r.assumptions.some((a) => a.includes(c.expected.assumptionIncludes!)), JSON.stringify(r.assumptions));
    if (c.expected.pathLength !== undefined) assert.equal((r["path"] as unknown[]).length, c.expected.pathLength);
    if (c.expected.verdict === "blocked") assert.ok(r.fixes.length > 0, "a blocked flow comes with a fix");
  });
}
