// The native heap helper (native/heap-trim.c, built into build/heap-trim.node by
// scripts/build-dist.mjs when the machine has a C compiler): glibc's malloc_trim(0), which gives
// the memory malloc holds free back to the kernel. The idle collector calls it after a collection
// (idle-gc.ts): after a burst of bulk traffic a server kept ~60 MiB of freed buffers resident
// without it (docs/benchmarks.md).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export type NativeHeap =
  | { readonly available: true; readonly path: string; trim(): boolean }
  | { readonly available: false; readonly path: string; readonly reason: string };

/** Where the build puts it; the same relative path from src/cli/ and from dist/cli/. */
export const heapTrimPath = fileURLToPath(new URL("../../build/heap-trim.node", import.meta.url));

interface HeapTrimModule {
  trim(): boolean;
  supported: boolean;
}

/** Loads the helper (Node caches it); says why when it cannot be had (never throws). */
export function loadNativeHeap(path = heapTrimPath): NativeHeap {
  if (!existsSync(path)) return { available: false, path, reason: "not built (scripts/build-dist.mjs builds it where a C compiler is installed)" };
  let loaded: HeapTrimModule;
  try {
    loaded = createRequire(import.meta.url)(path) as HeapTrimModule;
  } catch (err) {
    return { available: false, path, reason: `cannot be loaded: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (typeof loaded.trim !== "function") return { available: false, path, reason: "has no trim()" };
  if (!loaded.supported) return { available: false, path, reason: "this C library has no malloc_trim (not glibc)" };
  return { available: true, path, trim: () => loaded.trim() };
}
