// Checks the architecture of src/: no import cycles between modules, and every folder imports
// only the folders DESIGN.md puts beneath it. Fails with the offending paths.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

// folder → the src/ folders it may import (besides itself).
const allowed: Record<string, string[]> = {
  protocol: [],
  transport: ["protocol"],
  tunnel: ["protocol", "transport"],
  server: ["protocol", "transport", "tunnel"],
  agent: ["protocol", "transport", "tunnel"],
  doctor: ["protocol"],
  lab: ["protocol", "doctor"],
  dashboard: ["protocol", "server"],
  cli: ["protocol", "transport", "tunnel", "server", "agent", "doctor", "lab", "dashboard"],
};

const root = resolve("src");
const files: string[] = [];
(function walk(dir: string) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(".ts")) files.push(path);
  }
})(root);

const importRe = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;
const graph = new Map<string, string[]>();
const problems: string[] = [];
const topFolder = (file: string) => relative(root, file).split("/")[0]!;

for (const file of files) {
  const text = readFileSync(file, "utf8");
  const deps: string[] = [];
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2]!;
    const target = resolve(dirname(file), spec.replace(/\.js$/, ".ts"));
    if (!target.startsWith(root)) continue;
    const from = topFolder(file);
    const to = topFolder(target);
    const isTest = file.endsWith(".test.ts");
    if (from !== to && !isTest && !(allowed[from] ?? []).includes(to)) {
      problems.push(`${relative(".", file)} imports ${relative(".", target)}: ${from}/ may not depend on ${to}/`);
    }
    if (!isTest) deps.push(target);
  }
  graph.set(file, deps);
}

// Cycle detection (depth-first, colouring).
const state = new Map<string, "active" | "done">();
const stack: string[] = [];
function visit(file: string): void {
  state.set(file, "active");
  stack.push(file);
  for (const dep of graph.get(file) ?? []) {
    if (state.get(dep) === "active") {
      const cycle = stack.slice(stack.indexOf(dep)).concat(dep).map((f) => relative(".", f));
      problems.push(`import cycle: ${cycle.join(" → ")}`);
    } else if (!state.has(dep)) visit(dep);
  }
  stack.pop();
  state.set(file, "done");
}
for (const file of graph.keys()) if (!state.has(file)) visit(file);

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`check-imports: ${files.length} modules, no cycles, layering respected`);
