// Every fixture (made by scripts/gen-iptables-fixtures.sh from real iptables) through
// checkIptables, in every format the tools printed, against the expectations in cases.json and
// against what the kernel did with a real connection (kernel-results.json).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { checkIptables } from "../src/doctor/iptables/index.js";
import type { CheckIptablesOptions } from "../src/doctor/iptables/index.js";

const dir = join(import.meta.dirname, "fixtures/doctor/iptables");
interface Decided { verdict: string; effect?: string | null; decidedBy?: { chain: string; rule: number | null; target: string } }
/** `eitherWay`: where an undecidable rule makes the verdict indeterminate, what the flow ends in whichever way it matches. */
interface Expect extends Decided { eitherWay?: Decided }
interface Case { id: string; rules: string; flags: CheckIptablesOptions; expect: Expect; fixes?: string[]; listWithoutV?: Expect; listExpect?: Expect; why?: string }
const { cases } = JSON.parse(readFileSync(join(dir, "cases.json"), "utf8")) as { cases: Case[] };
const kernel = JSON.parse(readFileSync(join(dir, "kernel-results.json"), "utf8")) as Record<string, string>;

const kernelEffect: Record<string, string> = { connected: "accept", refused: "reject", unreachable: "reject", timeout: "drop" };
const FULL = ["save.txt", "save-c.txt", "list-nv.txt", "list-v.txt"];
const NO_V = ["list.txt", "list-n.txt"];

// doctor-cli.md: decidedBy.target is "ACCEPT" | "DROP" | "REJECT" for a rule that decided and
// "policy" (rule null) for a policy; a rule that could not be decided (an indeterminate verdict)
// is named by its own target as the input shows it (a chain it jumps to, RETURN...), never "policy".
function assertTargetInContract(result: ReturnType<typeof checkIptables>, label: string): void {
  // doctor-cli.md: decidedBy.target is "ACCEPT" | "DROP" | "REJECT" | "policy", whatever decided,
  // for an indeterminate verdict too; "policy" with a rule number is a rule that hands the decision
  // on, its own target in ruleTarget.
  const d = result.decidedBy as { target: string; rule: number | null; ruleTarget?: string };
  assert.ok(["ACCEPT", "DROP", "REJECT", "policy"].includes(d.target), `${label}: decidedBy.target ${d.target}`);
  if (d.rule !== null && d.target === "policy") assert.equal(typeof d.ruleTarget, "string", `${label}: ruleTarget for rule ${d.rule}`);
}

// doctor-cli.md: decidedBy.text is "the rule as the input showed it"; for a policy, the input's
// own line (`:INPUT DROP [0:0]`, `Chain INPUT (policy DROP 0 packets, 0 bytes)`).
function assertPolicyQuoted(result: ReturnType<typeof checkIptables>, input: string, label: string): void {
  const d = result.decidedBy as { rule: number | null; policy: string | null; text: string };
  if (d.rule !== null || d.policy === null) return;
  assert.ok(input.split("\n").some((l) => l.trim() === d.text), `${label}: "${d.text}" is not a line of the input`);
  assert.match(d.text, /^:\S+ (ACCEPT|DROP) \[\d+:\d+\]$|^Chain \S+ \(policy (ACCEPT|DROP)( \d+ packets, \d+ bytes)?\)$/, label);
}

function assertExpect(result: ReturnType<typeof checkIptables>, expect: Expect, label: string): void {
  assert.equal(result.verdict, expect.verdict, `${label}: ${result.summary}`);
  if (expect.effect !== undefined) assert.equal(result.effect, expect.effect, label);
  if (expect.decidedBy) {
    const d = result.decidedBy as Record<string, unknown>;
    assert.deepEqual({ chain: d.chain, rule: d.rule, target: d.target }, expect.decidedBy, `${label}: ${result.summary}`);
  }
  const status = { allowed: "ok", blocked: "problem", indeterminate: "indeterminate" }[expect.verdict];
  assert.equal(result.status, status, label);
  if (expect.eitherWay) {
    const e = result.eitherWay as { verdict: string; effect: string; decidedBy: Record<string, unknown> } | undefined;
    assert.ok(e, `${label}: no eitherWay`);
    assert.deepEqual([e.verdict, e.effect], [expect.eitherWay.verdict, expect.eitherWay.effect], label);
    if (expect.eitherWay.decidedBy) assert.deepEqual({ chain: e.decidedBy.chain, rule: e.decidedBy.rule, target: e.decidedBy.target }, expect.eitherWay.decidedBy, label);
  }
}

describe("doctor iptables corpus", () => {
  it("has at least 20 cases, including A10-A14", () => {
    assert.ok(cases.length >= 20);
    for (const a of ["A10", "A11", "A12", "A13", "A14"]) assert.ok(cases.some((c) => c.id.startsWith(a)), a);
  });

  for (const c of cases) {
    describe(c.id, () => {
      it("expectation agrees with the kernel", () => {
        const effect = c.expect.verdict === "indeterminate" ? c.expect.eitherWay?.effect : c.expect.effect;
        if (effect === undefined) return;
        assert.equal(kernelEffect[kernel[c.id]!], effect, `kernel said ${kernel[c.id]}`);
      });
      for (const file of FULL) {
        it(`${file}`, () => {
          const input = readFileSync(join(dir, c.rules, file), "utf8");
          const result = checkIptables(input, c.flags);
          assertTargetInContract(result, `${c.id}/${file}`);
          assertPolicyQuoted(result, input, `${c.id}/${file}`);
          assertExpect(result, file.startsWith("list") && c.listExpect ? c.listExpect : c.expect, `${c.id}/${file}`);
          if (c.fixes && file.startsWith("save")) assert.deepEqual(result.fixes.map((f) => f.command), c.fixes);
        });
      }
      for (const file of NO_V) {
        it(`${file} (interfaces hidden)`, () => {
          const input = readFileSync(join(dir, c.rules, file), "utf8");
          const result = checkIptables(input, c.flags);
          assertTargetInContract(result, `${c.id}/${file}`);
          assertPolicyQuoted(result, input, `${c.id}/${file}`);
          if (c.listWithoutV) assertExpect(result, c.listWithoutV, `${c.id}/${file}`);
          // Without -v the doctor may only be less sure, never different.
          else if (result.verdict !== "indeterminate") assertExpect(result, c.listExpect ?? c.expect, `${c.id}/${file}`);
        });
      }
    });
  }
});
