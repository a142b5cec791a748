import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveServerOptions, type ServerOptionsInput } from "./server-options.js";

const uds: ServerOptionsInput = { frontends: [{ mode: "grpc", listen: { path: "/tmp/x.sock" } }] };
const rejects = (input: ServerOptionsInput, message: RegExp) =>
  assert.throws(() => resolveServerOptions(input), (e: Error & { code?: string }) => e.code === "INVALID_OPTION" && message.test(e.message));

describe("resolveServerOptions", () => {
  it("applies upstream's defaults, turns the dial timeout on, and freezes the result", () => {
    const o = resolveServerOptions(uds);
    assert.equal(o.serverCount, 1);
    assert.deepEqual(o.proxyStrategies, ["default"]);
    assert.equal(o.agentListen.port, 8091);
    assert.equal(o.dialTimeoutMs, 10_000);
    assert.ok(o.serverId.length > 0);
    assert.ok(Object.isFrozen(o));
    assert.throws(() => ((o as { serverCount: number }).serverCount = 2));
  });

  it("names the flag when a value is wrong", () => {
    rejects({ ...uds, serverCount: 0 }, /--server-count/);
    rejects({ ...uds, proxyStrategies: ["destHost", "nearest" as never] }, /unknown strategy "nearest"/);
    rejects({ ...uds, proxyStrategies: ["default", "default"] }, /twice/);
    rejects({ ...uds, agentListen: { port: 70000 } }, /--agent-port/);
    rejects({ ...uds, dialTimeoutMs: 0 }, /--backend-dial-timeout/);
    rejects({ frontends: [] }, /no frontend/);
  });

  it("refuses a cleartext TCP frontend off loopback, and TLS on a Unix socket", () => {
    rejects({ frontends: [{ mode: "http-connect", listen: { port: 8090 } }] }, /needs TLS unless it binds to loopback/);
    assert.doesNotThrow(() => resolveServerOptions({ frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }] }));
    rejects({ frontends: [{ mode: "grpc", listen: { path: "/x" }, tls: { cert: "c", key: "k" } }] }, /Unix socket frontend has no TLS/);
  });

  it("refuses agent mTLS together with token authentication, and partial token flags", () => {
    rejects({ ...uds, agentTls: { cert: "c", key: "k", ca: "ca" }, tokenAuth: { agentNamespace: "kube-system", agentServiceAccount: "a", audience: "x" } }, /mutually exclusive/);
    rejects({ ...uds, tokenAuth: { agentNamespace: "kube-system", agentServiceAccount: "", audience: "x" } }, /needs all of/);
  });
});
