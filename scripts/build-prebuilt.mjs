// Rebuilds native/prebuilt/<platform>-<arch>/heap-trim.node from native/heap-trim.c: the copy that
// machines without a C compiler load (src/cli/native-heap.ts). Run it after changing the C source
// and commit the result; src/cli/native-heap.test.ts fails while the prebuilt's baked-in source
// hash differs from the file. Stripped, so that it holds nothing but the code.
// Usage: node scripts/build-prebuilt.mjs
import { mkdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { repoRoot } from "../bin/dist.js";
import { compileNative, prebuiltPath, sourceSha256 } from "./native-build.mjs";

if (process.platform !== "linux") throw new Error("prebuilt helpers are built on Linux (glibc) only");
const source = join(repoRoot, "native", "heap-trim.c");
const out = prebuiltPath(repoRoot, "heap-trim.c");
mkdirSync(dirname(out), { recursive: true });
compileNative(source, out, ["-s"]);
console.log(`built ${relative(repoRoot, out)} from ${relative(repoRoot, source)} (sha256 ${sourceSha256(source)})`);
