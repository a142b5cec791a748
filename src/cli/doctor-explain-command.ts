// `nodetunnel doctor explain` (doctor-cli.md `doctor explain`): exit 0 when the message was
// recognised, 3 when it was not.
import type { Command } from "commander";
import { explainError } from "../doctor/index.js";
import type { CliIo } from "./cli-io.js";
import { UsageError } from "./doctor-flags.js";
import { checkCommand } from "./doctor-run.js";

export function explainCommand(io: CliIo): Command {
  return checkCommand(io, "explain", async (opts, args, { inputs }) => {
    const given = args.join(" ").trim();
    if (given !== "" && opts.file !== undefined) throw new UsageError("--file: give the error text either as an argument or with --file, not both");
    if (given === "" && opts.file === undefined) throw new UsageError("give the error text as an argument, or with --file F (- for standard input)");
    const text = given !== "" ? given : (await inputs.file("--file", opts.file as string)).text;
    if (text.trim() === "") throw new UsageError(`--file: ${opts.file === "-" ? "standard input" : String(opts.file)} is empty; expected an error message`);
    return explainError(text);
  }, (result) => (result.status === "indeterminate" ? 3 : 0))
    .description("map an error message (kubectl, kube-apiserver, konnectivity, curl) to its mechanism and likely causes")
    .argument("[text...]", "the error message (quote it)")
    .option("--file <file>", "read the message (or a log excerpt) from a file; - for stdin")
    .addHelpText("after", `
Examples:
  nodetunnel doctor explain 'Error from server: error dialing backend: dial tcp 10.224.0.5:10250: i/o timeout'
  kubectl logs -n kube-system deploy/coredns 2>&1 | nodetunnel doctor explain --file -
  nodetunnel doctor explain --file konnectivity-server.log --output json

Exit codes: 0 the message was recognised, 3 it was not, 2 bad usage.`);
}
