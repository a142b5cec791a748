import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";
import { renderFlagsDoc } from "../scripts/gen-flags-doc.js";

it("docs/flags.md matches the commands' definitions (regenerate: npx tsx scripts/gen-flags-doc.ts)", async () => {
  const onDisk = readFileSync(new URL("../docs/flags.md", import.meta.url), "utf8");
  assert.equal(onDisk, await renderFlagsDoc());
});
