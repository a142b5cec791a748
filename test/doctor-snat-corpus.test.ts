// Runs every case of test/fixtures/doctor/snat/cases.json through checkSnat: the arithmetic fields
// of the contract, the status, and what the metrics and connection samples reveal (including which
// connections take no SNAT port).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkSnat } from "../src/doctor/snat/index.js";

interface Case {
  name: string;
  opts: { nodes: number; outboundIps: number; portsPerNode?: number; maxSurge: number; maxNodes?: number; natGateway?: boolean; vnets?: string[] };
  metrics?: string;
  connections?: string;
  expected: Record<string, unknown> & {
    status: string;
    summaryIncludes?: string;
    fixIncludes?: string;
    assumptionIncludes?: string;
    detailIncludes?: string;
    fixCount?: number;
    failedConnections?: number | null;
    hotBackends?: string[];
    churnFirst?: { destination: string; connections: number; timeWait: number };
    churnLength?: number;
  };
}

const dir = join(import.meta.dirname, "fixtures/doctor/snat");
const cases = JSON.parse(readFileSync(join(dir, "cases.json"), "utf8")) as Case[];
const fields = ["portsPerNode", "capacityNodes", "defaultPoolLimit", "requiredPorts", "availablePorts", "nextBoundary", "excludedConnections"];

for (const c of cases) {
  test(`snat corpus: ${c.name}`, () => {
    const r = checkSnat({
      ...c.opts, natGateway: c.opts.natGateway ?? false,
      ...(c.metrics ? { metricsText: readFileSync(join(dir, c.metrics), "utf8") } : {}),
      ...(c.connections ? { connectionsText: readFileSync(join(dir, c.connections), "utf8") } : {}),
    });
    const e = c.expected;
    assert.equal(r.check, "snat");
    assert.equal(r.status, e.status, r.summary);
    for (const f of fields) if (f in e) assert.equal(r[f], e[f], f);
    if (e.summaryIncludes) assert.ok(r.summary.includes(e.summaryIncludes), r.summary);
    if (e.fixIncludes) assert.ok(r.fixes.some((f) => f.command.includes(e.fixIncludes!)), JSON.stringify(r.fixes));
    if (e.assumptionIncludes) assert.ok(r.assumptions.some((a) => a.includes(e.assumptionIncludes!)), JSON.stringify(r.assumptions));
    if (e.fixCount !== undefined) assert.equal(r.fixes.length, e.fixCount, JSON.stringify(r.fixes));
    // The same command is never suggested twice (doctor-cli.md: fixes are copy-paste commands).
    assert.equal(new Set(r.fixes.map((f) => f.command)).size, r.fixes.length, JSON.stringify(r.fixes));
    if (e.detailIncludes) assert.ok(r.details?.some((d) => d.includes(e.detailIncludes!)), JSON.stringify(r.details));
    const metrics = r["metrics"] as { failedConnections: number | null; backends: { backendIp: string; ratio: number }[] } | undefined;
    if ("failedConnections" in e) assert.equal(metrics?.failedConnections, e.failedConnections);
    if (e.hotBackends) assert.deepEqual(metrics?.backends.filter((b) => b.ratio >= 0.8).map((b) => b.backendIp).sort(), e.hotBackends);
    const churn = r["churn"] as { destination: string; connections: number; timeWait: number }[] | undefined;
    if (e.churnFirst) assert.deepEqual(churn?.[0], e.churnFirst);
    if (e.churnLength !== undefined) assert.equal(churn?.length, e.churnLength);
    if (r.status === "problem") assert.ok(r.fixes.length > 0 || r.summary.length > 0);
  });
}
