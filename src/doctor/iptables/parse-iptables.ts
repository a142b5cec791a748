// Picks the parser from the content (doctor-cli.md: formats are detected, never flagged).
import { DoctorInputError } from "../input-error.js";
import type { Ruleset } from "./model.js";
import { isIptablesList, parseIptablesList } from "./parse-iptables-list.js";
import { isIptablesSave, parseIptablesSaveDumps } from "./parse-iptables-save.js";

/** The input as one Ruleset; an input holding both an iptables-save and an ip6tables-save dump is an input error here (see parseIptablesDumps). */
export function parseIptables(text: string): Ruleset {
  const dumps = parseIptablesDumps(text);
  if (dumps.length > 1) {
    const second = dumps[1]!.familyShownAt!;
    throw new DoctorInputError("the input holds both an iptables-save and an ip6tables-save dump", { line: second.line, expected: "one dump" });
  }
  return dumps[0]!;
}

/** Every dump in the input: one, or two where iptables-save and ip6tables-save output share the file. */
export function parseIptablesDumps(text: string): Ruleset[] {
  const lines = text.split(/\r?\n/);
  const index = lines.findIndex((l) => l.trim() !== "" && !l.trim().startsWith("#"));
  if (index < 0) {
    // checkIptables judges an empty input (iptables-save with no table loaded) before parsing; one
    // of comments only is not a dump (iptables-save's warnings come with the tables they warn of).
    const empty = lines.every((l) => l.trim() === "");
    throw new DoctorInputError(empty ? "the input is empty" : "the input holds only comments, no table or chain", { line: 1, expected: "iptables-save or iptables --list --line-numbers output" });
  }
  const first = lines[index]!.trim();
  if (isIptablesList(first)) return [parseIptablesList(text)];
  if (isIptablesSave(first)) return parseIptablesSaveDumps(text);
  throw new DoctorInputError(`"${first.slice(0, 60)}" is neither iptables-save nor iptables --list output`, {
    line: index + 1,
    expected: "iptables-save output (*filter, :INPUT ACCEPT [0:0], -A ...) or iptables --list output (Chain INPUT (policy ACCEPT))",
  });
}
