// The image's build context: every path the Dockerfile copies from the context must survive
// .dockerignore, or `docker build` fails on a machine this suite cannot run Docker on. The
// .dockerignore here is an allowlist: "*" first, then "!path" lines, then exclusions such as tests.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { repoRoot } from "../bin/dist.js";

const lines = (file: string) => readFileSync(join(repoRoot, file), "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));

it("every COPY from the build context is let through by .dockerignore", () => {
  const ignore = lines(".dockerignore");
  assert.equal(ignore[0], "*", ".dockerignore starts by excluding everything");
  const allowed = ignore.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
  const sources = lines("Dockerfile")
    .filter((l) => /^COPY\s/i.test(l) && !/--from=/i.test(l))
    .flatMap((l) => l.split(/\s+/).slice(1, -1))
    .map((src) => src.replace(/\/$/, ""));
  assert.ok(sources.length >= 5, `found the COPY lines: ${sources.join(", ")}`);
  const missing = sources.filter((src) => !allowed.some((a) => src === a || src.startsWith(`${a}/`)));
  assert.deepEqual(missing, [], "add a !<path> line to .dockerignore for each");
});

it("every script the image copies has the local modules it imports copied too", () => {
  const copied = lines("Dockerfile")
    .filter((l) => /^COPY\s/i.test(l) && !/--from=/i.test(l))
    .flatMap((l) => l.split(/\s+/).slice(1, -1));
  const scripts = copied.filter((src) => src.startsWith("scripts/") && src.endsWith(".mjs"));
  assert.ok(scripts.includes("scripts/build-dist.mjs"), `the image builds dist/ with scripts/build-dist.mjs: ${copied.join(", ")}`);
  for (const script of scripts) {
    const imports = [...readFileSync(join(repoRoot, script), "utf8").matchAll(/from "\.\/([^"]+)"/g)].map((m) => `scripts/${m[1]}`);
    const missing = imports.filter((i) => !copied.includes(i));
    assert.deepEqual(missing, [], `${script} imports them: add them to its COPY line`);
  }
});
