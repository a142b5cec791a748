// Writes docs/flags.md from the commands' own definitions, so the flag reference cannot drift
// from the code (test/flags-doc.test.ts fails when the file is stale).
// Usage: tsx scripts/gen-flags-doc.ts [--check]
import { readFileSync, writeFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import type { Command } from "commander";
import { buildProgram } from "../src/cli/main.js";

export async function renderFlagsDoc(): Promise<string> {
  const io = { stdout: { write: () => true }, stderr: { write: () => true }, stdin: new PassThrough(), env: {}, exit: () => {} };
  const program = await buildProgram(io);
  // The environment paragraph is derived from the options too: which flags read which variable.
  const envOf = (name: string) => {
    const options = program.commands.find((c) => c.name() === name)!.options.filter((o) => !(o as unknown as { hidden: boolean }).hidden && o.long !== "--help");
    const conventional = (o: (typeof options)[number]) => `NODETUNNEL_${o.long!.slice(2).toUpperCase().replace(/-/g, "_")}`;
    return {
      other: options.filter((o) => o.envVar !== undefined && o.envVar !== conventional(o)).map((o) => `\`${o.long}\` reads \`${o.envVar}\``),
      none: options.filter((o) => o.envVar === undefined).map((o) => `\`${o.long}\``),
    };
  };
  const server = envOf("server");
  const agent = envOf("agent");
  const out: string[] = [
    "# Command-line flags",
    "",
    "Generated from the commands' definitions by `npx tsx scripts/gen-flags-doc.ts`; `npm test` checks it is current.",
    "The flags of `server` and `agent` can also be set in the environment as `NODETUNNEL_<FLAG>`",
    "(upper case, dashes as underscores; a flag given on the command line wins), with these exceptions.",
    `Instead of \`NODETUNNEL_...\`, ${[...server.other, ...agent.other].join(", ")} (upstream's variables).`,
    `No environment variable: server ${server.none.join(", ")}; agent ${agent.none.join(", ")}.`,
    "Both read `HTTPS_PROXY` (or `https_proxy`) and `NO_PROXY` (or `no_proxy`), as upstream's binaries do: the agent's",
    "servers, and kube-apiserver for the server's TokenReview and Leases and the agent's Lease counting, are then reached",
    "through an HTTP CONNECT proxy (docs/deploy.md).",
    "Exit codes: 0 success, 1 failure (doctor: a problem was found), 2 bad usage or input, 3 doctor:",
    "indeterminate.",
    "",
  ];
  const walk = (cmd: Command, path: string[]) => {
    const name = [...path, cmd.name()].join(" ");
    const visible = cmd.options.filter((o) => !(o as unknown as { hidden: boolean }).hidden);
    if (path.length > 0) {
      out.push(`## \`${name}\``, "", cmd.description(), "");
      if (visible.length > 0) {
        out.push("| flag | default | meaning |", "|---|---|---|");
        for (const o of visible) {
          const def = o.defaultValue === undefined || o.defaultValue === "" ? "" : `\`${String(o.defaultValue)}\``;
          out.push(`| \`${o.flags.replace(/\|/g, "\\|")}\` | ${def} | ${o.description.replace(/\|/g, "\\|")} |`);
        }
        out.push("");
      }
      const hidden = cmd.options.filter((o) => (o as unknown as { hidden: boolean }).hidden).map((o) => `\`${o.long}\``);
      if (hidden.length > 0) out.push(`Accepted for compatibility with upstream and ignored: ${hidden.join(", ")}.`, "");
    }
    for (const sub of cmd.commands) walk(sub, [...path, cmd.name()]);
  };
  walk(program, []);
  return out.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const text = await renderFlagsDoc();
  const path = new URL("../docs/flags.md", import.meta.url).pathname;
  if (process.argv.includes("--check")) {
    if (readFileSync(path, "utf8") !== text) {
      console.error("docs/flags.md is stale: run npx tsx scripts/gen-flags-doc.ts");
      process.exit(1);
    }
  } else writeFileSync(path, text);
}
