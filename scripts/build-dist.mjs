// Compiles src/ to dist/ (same layout, one .js per .ts, ESM, inline source maps) with esbuild,
// for bin/nodetunnel.js to run without the tsx loader. Plain JavaScript so that `npm ci` can run
// it ("prepare") before anything else is set up. Types are checked by `npm run typecheck`, not
// here. The new tree is written beside dist/ and swapped in, so a process starting meanwhile
// sees either the old tree (with its old fingerprint, hence unused) or the new one.
// Usage: node scripts/build-dist.mjs [--if-stale]
import { copyFileSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { build } from "esbuild";
import { distDir, isDistCurrent, sourceFiles, sourceFingerprint, srcDir, stampFile } from "../bin/dist.js";

if (process.argv.includes("--if-stale") && isDistCurrent()) process.exit(0);

const started = Date.now();
const fingerprint = sourceFingerprint();
const files = sourceFiles();
const staging = `${distDir}.${process.pid}.tmp`;
rmSync(staging, { recursive: true, force: true });
try {
  await build({
    entryPoints: files.filter((f) => f.endsWith(".ts")),
    outdir: staging,
    outbase: srcDir,
    format: "esm",
    platform: "node",
    target: "node20",
    sourcemap: "inline",
    logLevel: "warning",
  });
  // Plain JavaScript assets read at run time (the dashboard's browser script) are copied as is.
  for (const f of files.filter((f) => f.endsWith(".js"))) {
    const to = join(staging, relative(srcDir, f));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(f, to);
  }
  writeFileSync(join(staging, relative(distDir, stampFile)), fingerprint);
  rmSync(distDir, { recursive: true, force: true });
  renameSync(staging, distDir);
} catch (err) {
  rmSync(staging, { recursive: true, force: true });
  console.error(`build-dist: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
console.error(`build-dist: ${files.length} files from src/ to dist/ in ${Date.now() - started} ms`);
