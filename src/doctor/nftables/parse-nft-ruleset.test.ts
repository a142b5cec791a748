import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DoctorInputError } from "../input-error.js";
import { parseNftRuleset } from "./parse-nft-ruleset.js";

/** One chain of `table inet filter`, its body lines as given (written as for `nft -f`). */
const chain = (...body: string[]) => `table inet filter {\n\tchain input {\n${body.map((l) => `\t\t${l}\n`).join("")}\t}\n}\n`;
const base = (text: string) => parseNftRuleset(text).tables[0]!.chains[0]!.base;
const inputError = (line: number, what: RegExp) => (e: unknown) => e instanceof DoctorInputError && e.line === line && what.test(`${e.message} ${e.expected ?? ""}`);

describe("nftables text: the chain's type, hook and policy", () => {
  it("takes the policy from the type line, as nft list ruleset prints it", () => {
    assert.equal(base(chain("type filter hook input priority filter; policy drop;", "tcp dport 22 accept"))?.policy, "drop");
  });

  it("takes a policy written on a line of its own, with or without the semicolon", () => {
    assert.equal(base(chain("type filter hook input priority filter;", "policy drop;", "tcp dport 22 accept"))?.policy, "drop");
    assert.equal(base(chain("type filter hook input priority filter", "policy drop", "tcp dport 22 accept"))?.policy, "drop");
    assert.equal(base(chain("type filter hook input priority 0; policy drop"))?.policy, "drop");
  });

  it("takes a policy written before the type line", () => {
    assert.deepEqual(base(chain("policy drop;", "type filter hook input priority filter;")), { type: "filter", hook: "input", priority: 0, policy: "drop" });
  });

  it("keeps a rule that follows the chain's properties on the same line", () => {
    const c = parseNftRuleset(chain("type filter hook input priority filter; policy drop; tcp dport 22 accept", 'comment "a; b"')).tables[0]!.chains[0]!;
    assert.equal(c.base?.policy, "drop");
    assert.deepEqual(c.rules.map((r) => [r.index, r.text, r.line]), [[1, "tcp dport 22 accept", 3]]);
  });

  it("defaults to policy accept", () => {
    assert.equal(base(chain("type filter hook input priority filter;"))?.policy, "accept");
  });

  it("rejects a second policy, a policy on a chain without a hook, and an unknown policy, naming the line", () => {
    assert.throws(() => parseNftRuleset(chain("type filter hook input priority filter; policy accept;", "policy drop;")), inputError(4, /policy twice/));
    assert.throws(() => parseNftRuleset(chain("policy drop;", "tcp dport 22 accept")), inputError(3, /type <filter\|nat\|route> hook/));
    assert.throws(() => parseNftRuleset(chain("type filter hook input priority filter;", "policy reject;")), inputError(4, /policy <accept\|drop>/));
  });
});
