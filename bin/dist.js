// The compiled copy of src/ in dist/, and whether it is current. Running plain JavaScript saves
// each process the tsx loader (a module-hooks thread with its own V8 heap: ~25 MiB of RSS per
// process, measured in docs/benchmarks.md) and the start-up compile. dist/ is written by
// scripts/build-dist.mjs (run by `npm ci` through "prepare", by `npm test` and by the bench);
// bin/nodetunnel.js uses it only while it matches src/ exactly, and runs src/ through tsx otherwise.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * V8 flags for server and agent processes, on bin/nodetunnel.js's #! line (test/dist-entry.test.ts
 * checks they agree).
 * - A 1 MiB semi-space instead of V8's 16 MiB: the young generation no longer grows to 32 MiB under
 *   bulk traffic, so RSS for 2,000 idle connections grew by 16 instead of 27 MiB per process; bulk
 *   transfers measured no slower (the working set stays in cache).
 * - The old generation's limit set at 4× the live heap after each full GC, V8's largest factor,
 *   instead of a factor V8 derives from how fast the program allocated lately. V8 counts the Buffer
 *   memory allocated since the last full GC against that limit; a process that was idle when a
 *   bulk transfer began got a limit with ~9 MiB of room, less than the buffers a transfer keeps in
 *   flight, and ran a full GC every ~100 ms for the whole transfer (135 in 10 s, against 1 when the
 *   transfer starts right after start-up). One connection up: 137 → 221 MB/s in a full bench run,
 *   with no change in the memory or request rows (docs/benchmarks.md).
 */
export const nodeFlags = ["--max-semi-space-size=1", "--heap-growing-percent=300"];

/**
 * Those of nodeFlags that V8 still takes once the process runs: the growing factor is read at each
 * full GC, while the semi-space's maximum is fixed when the heap is made.
 */
export const runtimeNodeFlags = ["--heap-growing-percent=300"];

export const repoRoot = fileURLToPath(new URL("../", import.meta.url));
export const srcDir = join(repoRoot, "src");
export const distDir = join(repoRoot, "dist");
export const stampFile = join(distDir, ".src-fingerprint");

/** The files of src/ that run (tests excluded), sorted. */
export function sourceFiles(dir = srcDir, out = []) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if ((name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.endsWith(".d.ts")) || name.endsWith(".js")) out.push(path);
  }
  return out.sort();
}

/** Path, size and modification time of every source file: changes whenever src/ is written. */
function statFingerprint(files) {
  return files
    .map((f) => {
      const s = statSync(f);
      return `${relative(srcDir, f)} ${s.size} ${Math.trunc(s.mtimeMs)}`;
    })
    .join("\n");
}

/** A hash of every source file's path and bytes: changes only when what would be built does. */
function contentHash(files) {
  const hash = createHash("sha256");
  for (const f of files) {
    const bytes = readFileSync(f);
    hash.update(`${relative(srcDir, f)} ${bytes.length}\n`).update(bytes);
  }
  return hash.digest("hex");
}

/** What dist/.src-fingerprint records about the src/ a build was made from. */
export function sourceFingerprint() {
  const files = sourceFiles();
  return JSON.stringify({ stat: statFingerprint(files), sha256: contentHash(files) });
}

/**
 * Whether dist/ was built from src/ as it is now. The stat line answers in well under a
 * millisecond when nothing was touched; when times differ (a checkout, `touch`, a file written
 * back unchanged) the content decides, which costs a few milliseconds.
 */
export function isDistCurrent() {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(stampFile, "utf8"));
  } catch {
    return false;
  }
  const files = sourceFiles();
  return stamp.stat === statFingerprint(files) || stamp.sha256 === contentHash(files);
}
