import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveServerOptions, type ServerOptionsInput } from "./server-options.js";

const uds: ServerOptionsInput = {
  frontends: [{ mode: "grpc", listen: { path: "/tmp/x.sock" } }],
  agentTls: { cert: "c", key: "k", ca: "ca" },
};
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
    rejects({ ...uds, dialTimeoutMs: -1 }, /--backend-dial-timeout/);
    assert.equal(resolveServerOptions({ ...uds, dialTimeoutMs: 0 }).dialTimeoutMs, 0, "0 turns the timeout off, as upstream's default");
    rejects({ frontends: [] }, /no frontend/);
  });

  it("refuses two frontends on one socket path, naming both flags (not 'another process serves it' at start)", () => {
    rejects({ ...uds, frontends: [{ mode: "grpc", listen: { path: "/tmp/x.sock" } }, { mode: "http-connect", flag: "--frontend", listen: { path: "/tmp/x.sock" } }] },
      /^--uds-name \(grpc\) and --frontend \(http-connect\) both listen on \/tmp\/x\.sock: give each frontend its own socket$/);
    assert.doesNotThrow(() => resolveServerOptions({ ...uds, frontends: [{ mode: "grpc", listen: { path: "/tmp/x.sock" } }, { mode: "http-connect", listen: { path: "/tmp/y.sock" } }] }));
  });

  it("refuses a cleartext TCP frontend off loopback, and TLS on a Unix socket", () => {
    rejects({ ...uds, frontends: [{ mode: "http-connect", listen: { port: 8090 } }] }, /needs TLS unless it binds to loopback/);
    assert.doesNotThrow(() => resolveServerOptions({ ...uds, frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }] }));
    rejects({ frontends: [{ mode: "grpc", listen: { path: "/x" }, tls: { cert: "c", key: "k" } }] }, /Unix socket frontend has no TLS/);
  });

  it("refuses agent mTLS together with token authentication, and partial token flags", () => {
    rejects({ ...uds, agentTls: { cert: "c", key: "k", ca: "ca" }, tokenAuth: { agentNamespace: "kube-system", agentServiceAccount: "a", audience: "x" } }, /mutually exclusive/);
    rejects({ ...uds, agentTls: undefined, agentListen: { port: 0, host: "127.0.0.1" }, tokenAuth: { agentNamespace: "kube-system", agentServiceAccount: "", audience: "x" } }, /needs all of/);
  });

  it("refuses a TLS TCP frontend off loopback without client certificates, as upstream", () => {
    const tcp = (host: string | undefined, ca?: string): ServerOptionsInput => ({
      ...uds, frontends: [{ mode: "http-connect", listen: { port: 8131, host }, tls: { cert: "c", key: "k", ca } }],
    });
    rejects(tcp(undefined), /needs --server-ca-cert/);
    rejects(tcp("10.0.0.4"), /needs --server-ca-cert/);
    assert.doesNotThrow(() => resolveServerOptions(tcp("10.0.0.4", "ca")));
    assert.doesNotThrow(() => resolveServerOptions(tcp("127.0.0.1")));
  });

});
