// Two places where commander's behaviour is not the CLI's, shared by withCliErrors and the
// doctor's withUsageErrors. Kept apart from command-support.ts so the doctor does not load the
// transport for them.
import type { Command, CommanderError } from "commander";

/**
 * Help or the version was asked for (exit 0). `commander.help` also ends a command run without
 * the subcommand it needs (`nodetunnel`, `nodetunnel doctor`): usage on stderr with exit code 1
 * from commander, which is bad usage here (exit 2), as every other usage error.
 */
export function isHelpAskedFor(err: CommanderError): boolean {
  return err.code === "commander.helpDisplayed" || err.code === "commander.version" || (err.code === "commander.help" && err.exitCode === 0);
}

/**
 * Commander suggests a near flag for `--flg value` but not for `--flg=value`: it looks the whole
 * argument up. Here the name alone is looked up and reported, so both forms get "Did you mean"
 * (and the value, which may be a secret, is not echoed). unknownOption is commander's own method
 * (not in its typings); each command parses its own flags, so each is given this.
 */
export function suggestForAssignedFlags(cmd: Command): Command {
  const patched = cmd as unknown as { unknownOption(flag: string): void };
  const unknownOption = patched.unknownOption.bind(cmd);
  patched.unknownOption = (flag) => unknownOption(/^--[^=]+=/.test(flag) ? flag.slice(0, flag.indexOf("=")) : flag);
  return cmd;
}
