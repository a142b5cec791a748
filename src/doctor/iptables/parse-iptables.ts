// Picks the parser from the content (doctor-cli.md: formats are detected, never flagged).
import { DoctorInputError } from "../input-error.js";
import type { Ruleset } from "./model.js";
import { isIptablesList, parseIptablesList } from "./parse-iptables-list.js";
import { isIptablesSave, parseIptablesSave } from "./parse-iptables-save.js";

export function parseIptables(text: string): Ruleset {
  const lines = text.split(/\r?\n/);
  const index = lines.findIndex((l) => l.trim() !== "" && !l.trim().startsWith("#"));
  if (index < 0) {
    throw new DoctorInputError("the input is empty", { line: 1, expected: "iptables-save or iptables --list --line-numbers output" });
  }
  const first = lines[index]!.trim();
  if (isIptablesList(first)) return parseIptablesList(text);
  if (isIptablesSave(first)) return parseIptablesSave(text);
  throw new DoctorInputError(`"${first.slice(0, 60)}" is neither iptables-save nor iptables --list output`, {
    line: index + 1,
    expected: "iptables-save output (*filter, :INPUT ACCEPT [0:0], -A ...) or iptables --list output (Chain INPUT (policy ACCEPT))",
  });
}
