// Compiles src/ to dist/ (same layout, one .js per .ts, ESM, inline source maps) with esbuild,
// for bin/nodetunnel.js to run without the tsx loader. Plain JavaScript so that `npm ci` can run
// it ("prepare") before anything else is set up. Types are checked by `npm run typecheck`, not
// here. The new tree is written beside dist/ and swapped in, so a process starting meanwhile
// sees either the old tree (with its old fingerprint, hence unused) or the new one.
// It also compiles native/*.c to build/*.node with the system's C compiler when one is there
// (buildNative below); without one that step is skipped with a note, and nothing else depends on it.
// Usage: node scripts/build-dist.mjs [--if-stale]
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { build } from "esbuild";
import { distDir, isDistCurrent, repoRoot, sourceFiles, sourceFingerprint, srcDir, stampFile } from "../bin/dist.js";
import { compileNative, prebuiltPath } from "./native-build.mjs";

/**
 * native/<name>.c → build/<name>.node, when the .node is missing or older than its source.
 * Optional helpers only (native/heap-trim.c): a machine without `cc` gets a one-line note.
 */
function buildNative() {
  const nativeDir = join(repoRoot, "native");
  const outDir = join(repoRoot, "build");
  for (const name of readdirSync(nativeDir).filter((n) => n.endsWith(".c"))) {
    const source = join(nativeDir, name);
    const out = join(outDir, name.replace(/\.c$/, ".node"));
    if (existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) continue;
    mkdirSync(outDir, { recursive: true });
    try {
      compileNative(source, out);
    } catch (err) {
      const why = err.code === "ENOENT" ? `no C compiler ("${err.cc}")` : `${err.cc} failed: ${String(err.stderr ?? err.message).trim().split("\n")[0]}`;
      const fallback = existsSync(prebuiltPath(repoRoot, name))
        ? "the prebuilt copy in native/prebuilt/ is used instead"
        : "it is optional";
      console.error(`build-dist: ${relative(repoRoot, source)} not built, ${why}; ${fallback} (docs/operations.md, "Memory after a burst")`);
    }
  }
}

buildNative();
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
