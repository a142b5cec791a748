// The native heap helper (native/heap-trim.c, built into build/heap-trim.node by
// scripts/build-dist.mjs when the machine has a C compiler, or else the copy committed in
// native/prebuilt/<platform>-<arch>/ by scripts/build-prebuilt.mjs): glibc's malloc_trim(0), which
// gives the memory malloc holds free back to the kernel. The idle collector calls it after a
// collection (idle-gc.ts): after a burst of bulk traffic a server kept ~60 MiB of freed buffers
// resident without it, enough to take the bench's idle rows over their goal (docs/benchmarks.md).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export type NativeHeap =
  | { readonly available: true; readonly path: string; readonly source: string; trim(): boolean }
  | { readonly available: false; readonly path: string; readonly reason: string };

/** Where the build puts it; the same relative path from src/cli/ and from dist/cli/. */
export const heapTrimPath = fileURLToPath(new URL("../../build/heap-trim.node", import.meta.url));

/** The committed copy for this platform (there is one for linux-x64). */
export const prebuiltHeapTrimPath = fileURLToPath(new URL(`../../native/prebuilt/${process.platform}-${process.arch}/heap-trim.node`, import.meta.url));

interface HeapTrimModule {
  trim(): boolean;
  supported: boolean;
  /** SHA-256 of the heap-trim.c it was built from. */
  source?: string;
}

/**
 * The first of `paths` that loads: by default the helper built on this machine, then the prebuilt
 * copy for this platform. Says why when none can be had (never throws).
 */
export function loadNativeHeap(paths: readonly string[] = [heapTrimPath, prebuiltHeapTrimPath]): NativeHeap {
  const failed: Array<NativeHeap & { available: false }> = [];
  for (const path of paths) {
    const heap = loadFrom(path);
    if (heap.available) return heap;
    failed.push(heap);
  }
  const [first, ...rest] = failed;
  if (!first) return { available: false, path: "", reason: "no path to load it from" };
  const others = rest.filter((h) => existsSync(h.path)).map((h) => `; ${h.path} ${h.reason}`).join("");
  return { available: false, path: first.path, reason: first.reason + others };
}

/** Loads one file (Node caches it). */
function loadFrom(path: string): NativeHeap {
  if (!existsSync(path)) return { available: false, path, reason: "not built (scripts/build-dist.mjs builds it where a C compiler is installed)" };
  let loaded: HeapTrimModule;
  try {
    loaded = createRequire(import.meta.url)(path) as HeapTrimModule;
  } catch (err) {
    return { available: false, path, reason: `cannot be loaded: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (typeof loaded.trim !== "function") return { available: false, path, reason: "has no trim()" };
  if (!loaded.supported) return { available: false, path, reason: "this C library has no malloc_trim (not glibc)" };
  return { available: true, path, source: loaded.source ?? "unknown", trim: () => loaded.trim() };
}
