// Runs every message of test/fixtures/doctor/explain/corpus.json through explainError and checks
// the mechanism (one of the contract's values), its finer detail, the first cause and what was
// extracted from the text.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { explainError } from "../src/doctor/explain/index.js";
import { exitCodeOf } from "../src/doctor/report/check-result.js";

interface Entry {
  text: string;
  mechanism: string;
  /** The doctor's finer class where it differs from the contract's mechanism. */
  mechanismDetail?: string;
  firstCause: string | null;
  host?: string;
  port?: number;
  nodeName?: string;
  checkIncludes?: string;
}

// doctor-cli.md `explain`: the only values `mechanism` may take.
const contractMechanisms = ["timeout", "refused", "no-route", "no-agent", "tls", "not-tls", "auth", "dns", "unknown"];

const corpus = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures/doctor/explain/corpus.json"), "utf8")) as Entry[];

test("the corpus holds at least 30 recognised messages", () => {
  assert.ok(corpus.filter((e) => e.firstCause !== null).length >= 30);
});

for (const e of corpus) {
  test(`explain: ${e.text.slice(0, 90)}`, () => {
    const r = explainError(e.text);
    const causes = r["causes"] as { id: string; why: string; check: string }[];
    assert.equal(r.check, "explain");
    assert.ok(contractMechanisms.includes(String(r["mechanism"])), `mechanism ${String(r["mechanism"])} is not in the contract`);
    assert.equal(r["mechanism"], e.mechanism, r.summary);
    assert.equal(r["mechanismDetail"], e.mechanismDetail ?? e.mechanism);
    if (e.firstCause === null) {
      assert.equal(r.status, "indeterminate");
      assert.equal(exitCodeOf(r.status), 3);
      assert.deepEqual(causes, []);
      assert.ok((r["collect"] as string[]).length > 0);
      return;
    }
    assert.equal(exitCodeOf(r.status), 0);
    assert.equal(causes[0]?.id, e.firstCause, JSON.stringify(causes.map((c) => c.id)));
    for (const c of causes) assert.match(c.check, /^(nodetunnel doctor |kubectl )/);
    const x = r["extracted"] as { host: string | null; port: number | null; nodeName: string | null };
    if (e.host) assert.equal(x.host, e.host);
    if (e.port) assert.equal(x.port, e.port);
    if (e.nodeName) assert.equal(x.nodeName, e.nodeName);
    if (e.checkIncludes) assert.ok(causes.some((c) => c.check.includes(e.checkIncludes!)), JSON.stringify(causes));
  });
}
