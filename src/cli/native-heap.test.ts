// The native heap helper, built by scripts/build-dist.mjs (npm test builds first) or committed
// prebuilt for linux-x64: loaded for real, it gives the memory of freed buffers back to the kernel.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { it } from "node:test";
import { heapTrimPath, loadNativeHeap, prebuiltHeapTrimPath } from "./native-heap.js";

const heap = loadNativeHeap([heapTrimPath]);
const sourcePath = fileURLToPath(new URL("../../native/heap-trim.c", import.meta.url));
const sourceSha256 = createHash("sha256").update(readFileSync(sourcePath)).digest("hex");
const isGlibc = Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

function hasCompiler(): boolean {
  try {
    execFileSync(process.env.CC || "cc", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const skipWhy = heap.available ? false : !hasCompiler() ? "no C compiler (cc) on this machine: build/heap-trim.node is not built" : !isGlibc ? "not glibc: no malloc_trim" : false;
const prebuiltSkipWhy = !existsSync(prebuiltHeapTrimPath) ? `no prebuilt helper for ${process.platform}-${process.arch}` : !isGlibc ? "not glibc: the prebuilt needs malloc_trim" : false;

it("is built and loads wherever there is a C compiler and glibc, from the current source", { skip: skipWhy }, () => {
  assert.equal(heap.available, true, heap.available ? "" : `${heap.path}: ${heap.reason}`);
  assert.equal(heap.available && heap.source, sourceSha256);
});

it("has a prebuilt copy for linux-x64 built from the current native/heap-trim.c", { skip: prebuiltSkipWhy }, () => {
  const prebuilt = loadNativeHeap([prebuiltHeapTrimPath]);
  assert.equal(prebuilt.available, true, prebuilt.available ? "" : prebuilt.reason);
  assert.equal(prebuilt.available && prebuilt.source, sourceSha256, "native/heap-trim.c changed: run node scripts/build-prebuilt.mjs and commit its output");
});

it("falls back to the prebuilt copy where nothing was built", { skip: prebuiltSkipWhy }, () => {
  const dir = mkdtempSync(join(tmpdir(), "nt-heap-"));
  try {
    const fallback = loadNativeHeap([join(dir, "heap-trim.node"), prebuiltHeapTrimPath]);
    assert.equal(fallback.available && fallback.path, prebuiltHeapTrimPath);
    const junk = join(dir, "junk.node");
    writeFileSync(junk, "not a shared object");
    const neither = loadNativeHeap([join(dir, "heap-trim.node"), junk]);
    assert.equal(neither.available, false);
    assert.match(neither.available ? "" : neither.reason, /not built.*; .*junk\.node cannot be loaded/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [which, path, skip] of [["built", heapTrimPath, skipWhy], ["prebuilt", prebuiltHeapTrimPath, prebuiltSkipWhy]] as const) it(`gives freed buffers' memory back: RSS falls by most of what they held (${which})`, { skip }, () => {
  // In a child process, so the measurement is not this test runner's heap: 2,000 × 64 KiB buffers
  // (as a bulk transfer leaves them) and small live allocations between them, then freed.
  const script = `
    const heap = require(${JSON.stringify(path)});
    const big = [], small = [];
    for (let i = 0; i < 2000; i++) { big.push(Buffer.allocUnsafeSlow(65536).fill(1)); small.push(Buffer.allocUnsafeSlow(200)); }
    big.length = 0; gc(); gc();
    const before = process.memoryUsage.rss();
    const released = heap.trim();
    console.log(JSON.stringify({ before, after: process.memoryUsage.rss(), released, keep: small.length }));`;
  const out = JSON.parse(execFileSync(process.execPath, ["--expose-gc", "-e", script], { encoding: "utf8" })) as { before: number; after: number; released: boolean };
  const MiB = 1048576;
  assert.equal(out.released, true);
  assert.ok(out.before - out.after > 64 * MiB, `RSS ${Math.round(out.before / MiB)} → ${Math.round(out.after / MiB)} MiB: at least 64 of the 125 MiB freed should go back`);
});

it("says why when the helper is missing or is not a loadable module", () => {
  const dir = mkdtempSync(join(tmpdir(), "nt-heap-"));
  try {
    const missing = loadNativeHeap([join(dir, "heap-trim.node")]);
    assert.equal(missing.available, false);
    assert.match(missing.available ? "" : missing.reason, /not built/);
    const junk = join(dir, "junk.node");
    writeFileSync(junk, "not a shared object");
    const broken = loadNativeHeap([junk]);
    assert.equal(broken.available, false);
    assert.match(broken.available ? "" : broken.reason, /cannot be loaded: .*junk\.node/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
