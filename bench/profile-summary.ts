// Summarizes `--cpu-prof` files (what `npm run bench -- --profile=DIR` leaves): per file, the
// functions with the most self time, and the share of time per source area (ours, node
// internals, dependencies, GC, idle).
// Usage: npx tsx bench/profile-summary.ts DIR [top=25]
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface FunctionCost {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly share: number;
}

function area(url: string, name: string): string {
  if (name === "(garbage collector)") return "gc";
  if (name === "(idle)" || name === "(program)" || name === "(root)") return name.slice(1, -1);
  if (url.includes("/node_modules/")) return `dep:${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? "?"}`;
  if (url.includes("/src/")) return `ours:${/\/src\/([^/]+)\//.exec(url)?.[1] ?? "?"}`;
  if (url.startsWith("node:")) return "node";
  return url === "" ? "native" : "other";
}

export function summarizeProfile(profile: CpuProfile, top: number): { totalMs: number; functions: FunctionCost[]; areas: [string, number][] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + (deltas[i + 1] ?? deltas[i] ?? 0));
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;
  const fns = new Map<string, { name: string; where: string; us: number }>();
  const areas = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const name = functionName || "(anonymous)";
    const where = url ? `${url.replace(/^file:\/\/.*?\/(src|node_modules)\//, "$1/")}:${lineNumber + 1}` : "";
    const key = `${name} ${where}`;
    const f = fns.get(key) ?? { name, where, us: 0 };
    f.us += us;
    fns.set(key, f);
    const a = area(url, name);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const functions = [...fns.values()].sort((a, b) => b.us - a.us).slice(0, top)
    .map((f) => ({ name: f.name, where: f.where, selfMs: f.us / 1000, share: f.us / totalUs }));
  return { totalMs: totalUs / 1000, functions, areas: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / totalUs]) };
}

function main(): void {
  const dir = process.argv[2];
  const top = Number(process.argv[3] ?? 25);
  if (!dir) throw new Error("usage: tsx bench/profile-summary.ts DIR [top]");
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".cpuprofile")).sort()) {
    const s = summarizeProfile(JSON.parse(readFileSync(join(dir, name), "utf8")) as CpuProfile, top);
    console.log(`\n== ${name}: ${(s.totalMs / 1000).toFixed(1)} s sampled`);
    console.log(`areas: ${s.areas.slice(0, 12).map(([a, v]) => `${a} ${(v * 100).toFixed(1)}%`).join(", ")}`);
    for (const f of s.functions) console.log(`${(f.share * 100).toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(6)} ms  ${f.name}  ${f.where}`);
  }
}

main();
