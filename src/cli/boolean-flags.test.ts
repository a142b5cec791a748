// Upstream's boolean flags are Go pflag booleans: a bare `--flag` means true, as manifests write
// `- --delete-existing-uds-file` (the Kubernetes docs' konnectivity-server.yaml does).
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { agentCommand, agentOptionsFromFlags, type AgentFlags } from "./agent-command.js";
import type { CliIo } from "./cli-io.js";
import { serverCommand, serverOptionsFromFlags, type ServerFlags } from "./server-command.js";

const io: CliIo = { stdout: { write: () => true }, stderr: { write: () => true }, stdin: Readable.from([]), env: {}, exit: () => {} };

function serverFlags(argv: string[]): ServerFlags {
  const cmd = serverCommand(io);
  const { operands, unknown } = cmd.parseOptions(argv);
  assert.deepEqual({ operands, unknown }, { operands: [], unknown: [] }, "every word is a known flag or its value");
  return cmd.opts<ServerFlags>();
}

describe("boolean flags", () => {
  it("take a bare --delete-existing-uds-file as true, and do not swallow the next flag", () => {
    const f = serverFlags(["--uds-name=/run/k.sock", "--delete-existing-uds-file", "--server-port=0"]);
    assert.equal(serverOptionsFromFlags(f).deleteExistingUdsFile, true);
    assert.equal(f.serverPort, "0");
  });

  it("take =true / =false and the environment as before", () => {
    assert.equal(serverOptionsFromFlags(serverFlags(["--delete-existing-uds-file=false"])).deleteExistingUdsFile, false);
    assert.equal(serverOptionsFromFlags(serverFlags(["--delete-existing-uds-file=true"])).deleteExistingUdsFile, true);
    assert.equal(serverOptionsFromFlags(serverFlags([])).deleteExistingUdsFile, true, "upstream's default");
    assert.throws(() => serverOptionsFromFlags(serverFlags(["--delete-existing-uds-file=maybe"])), /--delete-existing-uds-file: "maybe" is not true or false/);
  });

  it("apply to --credit-flow-control on both commands", () => {
    assert.equal(serverOptionsFromFlags(serverFlags(["--credit-flow-control", "--mode=grpc"])).creditFlowControl, true);
    const agent = agentCommand(io);
    agent.parseOptions(["--credit-flow-control", "--proxy-server-host=cp.example"]);
    const f = agent.opts<AgentFlags>();
    assert.equal(agentOptionsFromFlags(f).creditFlowControl, true);
    assert.equal(f.proxyServerHost, "cp.example");
  });
});
