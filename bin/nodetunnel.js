#!/usr/bin/env -S node --max-semi-space-size=1 --heap-growing-percent=300
// The entry point. It runs the compiled dist/ when that matches src/ exactly (see bin/dist.js), and
// the TypeScript sources through tsx otherwise, so a clone works with or without a build.
// NODETUNNEL_FROM_SOURCE=1 forces the sources. The #! line carries bin/dist.js's nodeFlags for
// `nodetunnel ...` (the npm bin link and the image's entry point); `node bin/nodetunnel.js` gets
// only those V8 still takes at run time (below) unless given:
// `node --max-semi-space-size=1 --heap-growing-percent=300 bin/nodetunnel.js ...`.
import { setFlagsFromString } from "node:v8";
import { isDistCurrent, runtimeNodeFlags } from "./dist.js";

// Started as `node bin/nodetunnel.js` (an npm script, a harness), the #! line is not read: the
// flags V8 still takes after start are set here (bin/dist.js says which and why). NODE_OPTIONS
// cannot carry --heap-growing-percent (node refuses it there), so the arguments are all to check.
for (const flag of runtimeNodeFlags) {
  if (!process.execArgv.some((a) => a.startsWith(flag.split("=")[0]))) setFlagsFromString(flag);
}

// main() is called here rather than by the module itself: started through a symlink (the npm bin
// link, `npx nodetunnel`, the image's /usr/local/bin/nodetunnel), argv[1] is the link's path.
let cli;
if (process.env.NODETUNNEL_FROM_SOURCE !== "1" && isDistCurrent()) {
  cli = await import("../dist/cli/main.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  cli = await import("../src/cli/main.ts");
}
await cli.main(process.argv.slice(2));
