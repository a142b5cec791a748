// Carries out an `iptables --delete/--insert/--append` command on a parsed table, renumbering
// as the kernel does (troubleshooting.md §4.2: later rules shift after a delete or insert). The
// fix planner runs its own commands through this and walks the result, so a suggested fix is
// one the evaluator has seen open the flow; tests use it the same way.
import type { Chain, Rule, Table } from "./model.js";
import { parseIptablesSave } from "./parse-iptables-save.js";

const OPERATIONS: Readonly<Record<string, "delete" | "insert" | "append">> = {
  "-D": "delete", "--delete": "delete",
  "-I": "insert", "--insert": "insert",
  "-A": "append", "--append": "append",
};

// Not user input: a command this fails on is a bug in whoever built it.
function invalid(command: string, expected: string): never {
  throw new Error(`cannot apply "${command}": expected ${expected}`);
}

function renumber(chain: Chain, rules: readonly Rule[]): Chain {
  return { ...chain, rules: rules.map((rule, i) => ({ ...rule, number: i + 1 })) };
}

// The rule spec read as iptables-save would print it, with the table's user chains declared so
// that a jump resolves.
function parseSpec(table: Table, chain: string, spec: string, command: string): Rule {
  const declarations = [...table.chains.values()].map((c) => `:${c.name} ${c.policy ?? "-"} [0:0]`);
  const save = `*${table.name}\n${declarations.join("\n")}\n-A ${chain} ${spec}\nCOMMIT\n`;
  const rule = parseIptablesSave(save).tables.get(table.name)?.chains.get(chain)?.rules[0];
  return rule ?? invalid(command, "a rule specification");
}

/** The table after `command` (`iptables` or `ip6tables`, one of `--delete CHAIN N`, `--insert CHAIN [N] SPEC` or `--append CHAIN SPEC`). */
export function applyIptablesCommand(table: Table, command: string): Table {
  const m = /^\s*(iptables|ip6tables)\s+(\S+)\s+(\S+)(?:\s+(\d+))?(?:\s+(.*?))?\s*$/.exec(command);
  const operation = m ? OPERATIONS[m[2]!] : undefined;
  if (!m || operation === undefined) invalid(command, "iptables --delete|--insert|--append CHAIN ...");
  const chainName = m[3]!;
  const number = m[4] === undefined ? null : Number(m[4]);
  const spec = m[5] ?? "";
  const chain = table.chains.get(chainName) ?? invalid(command, `a chain of the ${table.name} table`);
  const rules = [...chain.rules];
  switch (operation) {
    case "delete":
      // By number only: the planner never deletes by specification.
      if (number === null || number < 1 || number > rules.length) invalid(command, `a rule number 1-${rules.length}`);
      rules.splice(number - 1, 1);
      break;
    case "insert": {
      const position = number ?? 1;
      if (position < 1 || position > rules.length + 1) invalid(command, `a position 1-${rules.length + 1}`);
      rules.splice(position - 1, 0, parseSpec(table, chainName, spec, command));
      break;
    }
    case "append":
      rules.push(parseSpec(table, chainName, spec, command));
      break;
  }
  const chains = new Map(table.chains);
  chains.set(chainName, renumber(chain, rules));
  return { ...table, chains };
}
