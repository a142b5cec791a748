// How native/*.c becomes a Node-API module: one cc command, with the SHA-256 of the source baked
// in (the module's `source` export), shared by scripts/build-dist.mjs (build/, on every build where
// there is a C compiler) and scripts/build-prebuilt.mjs (native/prebuilt/, committed).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

/** Where the committed copy of native/<name>.c for this platform lives (src/cli/native-heap.ts loads it). */
export function prebuiltPath(repoRoot, name) {
  return join(repoRoot, "native", "prebuilt", `${process.platform}-${process.arch}`, name.replace(/\.c$/, ".node"));
}

export function sourceSha256(source) {
  return createHash("sha256").update(readFileSync(source)).digest("hex");
}

/** Compiles `source` to `out` (through a staging file); throws what cc threw. */
export function compileNative(source, out, extraFlags = []) {
  const staging = `${out}.${process.pid}.tmp`;
  const cc = process.env.CC || "cc";
  try {
    execFileSync(cc, [
      "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", ...extraFlags,
      `-DHEAP_TRIM_SOURCE_SHA256="${sourceSha256(source)}"`, "-o", staging, source,
    ], { stdio: ["ignore", "ignore", "pipe"] });
    renameSync(staging, out);
  } catch (err) {
    rmSync(staging, { force: true });
    throw Object.assign(err, { cc });
  }
}
