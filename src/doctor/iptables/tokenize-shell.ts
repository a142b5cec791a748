// iptables-save writes a rule as a shell command line: strings with spaces are double-quoted
// and `"`/`\` inside them backslash-escaped (xtables_save_string). Splitting like a shell keeps
// `--comment "block kubelet"` one argument.

export interface ShellToken {
  readonly value: string;
  /** True when any part was quoted: such a token is always an argument, never an option. */
  readonly quoted: boolean;
}

export function tokenizeShell(line: string): ShellToken[] | { error: string } {
  const tokens: ShellToken[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    let value = "";
    let quoted = false;
    while (i < line.length && !/\s/.test(line[i]!)) {
      const c = line[i]!;
      if (c === '"') {
        quoted = true;
        i++;
        while (i < line.length && line[i] !== '"') {
          if (line[i] === "\\" && i + 1 < line.length) i++;
          value += line[i];
          i++;
        }
        if (i >= line.length) return { error: "an unterminated double quote" };
        i++;
      } else if (c === "'") {
        quoted = true;
        const end = line.indexOf("'", i + 1);
        if (end < 0) return { error: "an unterminated single quote" };
        value += line.slice(i + 1, end);
        i = end + 1;
      } else if (c === "\\" && i + 1 < line.length) {
        value += line[i + 1];
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    tokens.push({ value, quoted });
  }
  return tokens;
}
