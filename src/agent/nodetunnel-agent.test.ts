import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveAgentOptions } from "./agent-options.js";
import { backoffMs } from "./nodetunnel-agent.js";

describe("agent reconnect backoff", () => {
  const o = { syncIntervalMs: 1000, syncIntervalCapMs: 10_000 };
  it("starts at --sync-interval, grows ×1.5 and caps at --sync-interval-cap (no jitter at 0.5)", () => {
    const steps = [0, 1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffMs(attempt, o, () => 0.5));
    assert.deepEqual(steps, [1000, 1500, 2250, 3375, 5063, 7594, 10000, 10000]);
  });
  it("jitters by at most 10 %", () => {
    assert.equal(backoffMs(0, o, () => 0), 900);
    assert.equal(backoffMs(0, o, () => 0.999999), 1100);
    assert.equal(backoffMs(20, o, () => 0), 9000);
  });
});

describe("resolveAgentOptions", () => {
  it("takes upstream's defaults", () => {
    const a = resolveAgentOptions({});
    assert.deepEqual(a.servers, [{ host: "127.0.0.1", port: 8091 }]);
    assert.equal(a.dialTimeoutMs, 5000);
    assert.equal(a.syncIntervalMs, 1000);
    assert.equal(a.syncIntervalCapMs, 10_000);
  });
  it("accepts a list of servers, each with an optional port", () => {
    const a = resolveAgentOptions({ proxyServerHost: "10.0.0.10, 10.0.0.11:9000,[fd00::1]:8132", proxyServerPort: 8132 });
    assert.deepEqual(a.servers, [{ host: "10.0.0.10", port: 8132 }, { host: "10.0.0.11", port: 9000 }, { host: "fd00::1", port: 8132 }]);
  });
  it("validates its own identifiers strictly and names the flag", () => {
    assert.throws(() => resolveAgentOptions({ identifiers: "ipv4=10.0.0.300" }), /--agent-identifiers: "10.0.0.300" is not an IPv4 address/);
    assert.throws(() => resolveAgentOptions({ identifiers: "zone=a" }), /unknown key "zone"/);
    assert.deepEqual(resolveAgentOptions({ identifiers: "host=Node-1&ipv4=10.0.0.5&default-route=true" }).identifiers,
      { host: ["node-1"], ipv4: ["10.0.0.5"], ipv6: [], cidr: [], defaultRoute: true });
  });
  it("rejects a backoff cap below the interval", () => {
    assert.throws(() => resolveAgentOptions({ syncIntervalMs: 5000, syncIntervalCapMs: 1000 }), /--sync-interval-cap/);
  });
});
