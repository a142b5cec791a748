// Flags as upstream's manifests write them: klog's one-letter -v, and the agent's old spelling of
// --lease-label-selector, parsed by the commands themselves (their defaults included).
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { agentCommand, agentFlagsAsGiven, serverCountFromFlags } from "./agent-command.js";
import type { CliIo } from "./cli-io.js";
import { serverCommand } from "./server-command.js";

const io: CliIo = { stdout: { write: () => true }, stderr: { write: () => true }, stdin: Readable.from([]), env: {}, exit: () => {} };

function parse(command: ReturnType<typeof agentCommand>, argv: string[]): ReturnType<typeof agentCommand> {
  const { operands, unknown } = command.parseOptions(argv);
  assert.deepEqual({ operands, unknown }, { operands: [], unknown: [] }, `every word of ${argv.join(" ")} is a known flag or its value`);
  return command;
}

describe("klog's verbosity flag", () => {
  it("is taken as -v=N, -v N and --v=N by both commands, and the next flag is still read", () => {
    for (const make of [serverCommand, agentCommand]) {
      for (const argv of [["-v=4", "--log-level=debug"], ["-v", "4", "--log-level=debug"], ["--v=4", "--log-level=debug"], ["-v4", "--log-level=debug"]]) {
        const flags = parse(make(io), argv).opts<{ v?: string; logLevel?: string }>();
        assert.notEqual(flags.v, undefined, argv.join(" "));
        assert.equal(flags.logLevel, "debug", argv.join(" "));
      }
    }
  });
});

describe("klog's other flags", () => {
  it("are accepted by both commands, in klog's spelling and with dashes, with or without a value", () => {
    const argv = [
      "--logtostderr=true", "--alsologtostderr", "--log-file=/var/log/konnectivity-server.log", "--log_file", "/tmp/x.log",
      "--log-file-max-size=0", "--stderrthreshold=INFO", "--vmodule=server=4", "--log_dir=/tmp", "--skip_headers", "--one-output=true", "--add-dir-header",
      "--log-level=debug",
    ];
    for (const make of [serverCommand, agentCommand]) {
      assert.equal(parse(make(io), argv).opts<{ logLevel?: string }>().logLevel, "debug");
    }
  });
});

describe("the agent's --lease-label (upstream's old spelling of --lease-label-selector)", () => {
  const leases = (argv: string[]) => serverCountFromFlags(agentFlagsAsGiven(parse(agentCommand(io), ["--count-server-leases", ...argv]))).leases;
  it("selects the leases when given alone, although --lease-label-selector has a default", () => {
    assert.equal(leases(["--lease-label=app=custom-server"])?.selector, "app=custom-server");
  });
  it("gives way to --lease-label-selector when both are given, and the default applies when neither is", () => {
    assert.equal(leases(["--lease-label=app=old", "--lease-label-selector=app=new"])?.selector, "app=new");
    assert.equal(leases([])?.selector, "k8s-app=konnectivity-server");
  });
});
