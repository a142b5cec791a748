import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as net from "node:net";
import pino from "pino";
import { Registry } from "prom-client";
import { resolveAgentOptions } from "./agent-options.js";
import { backoffMs, NodetunnelAgent } from "./nodetunnel-agent.js";

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
  it("accepts a bare IPv6 address, as upstream does, and names what it expected otherwise", () => {
    assert.deepEqual(resolveAgentOptions({ proxyServerHost: "fd00::1", proxyServerPort: 8132 }).servers, [{ host: "fd00::1", port: 8132 }]);
    assert.deepEqual(resolveAgentOptions({ proxyServerHost: "::1,10.0.0.1" }).servers, [{ host: "::1", port: 8091 }, { host: "10.0.0.1", port: 8091 }]);
    assert.throws(() => resolveAgentOptions({ proxyServerHost: "fd00::zz" }), /--proxy-server-host: "fd00::zz" is not host, host:port, an IPv6 address or \[IPv6\]:port/);
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

describe("the admin port's /metrics redirect", () => {
  const rawGet = (port: number, host: string | undefined): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      let text = "";
      socket.on("data", (c: Buffer) => (text += c.toString("latin1")));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
      socket.write(`GET /metrics HTTP/1.1\r\n${host === undefined ? "" : `Host: ${host}\r\n`}Connection: close\r\n\r\n`);
    });

  it("points at the health port on the host the client named, and at the address it reached when Host is not a plain host", async (t) => {
    const agent = await NodetunnelAgent.start(resolveAgentOptions({
      proxyServerHost: "127.0.0.1",
      proxyServerPort: 1, // nothing listens: the agent keeps retrying in the background
      healthListen: { port: 0, host: "127.0.0.1" },
      adminListen: { port: 0, host: "127.0.0.1" },
    }), { log: pino({ level: "silent" }), registry: new Registry() });
    t.after(() => agent.destroy());
    const location = async (host: string | undefined) => /\r\nlocation: ([^\r]*)\r\n/i.exec(await rawGet(agent.adminPort!, host))?.[1];
    const health = agent.healthPort!;
    assert.equal(await location(`127.0.0.1:${agent.adminPort}`), `http://127.0.0.1:${health}/metrics`);
    assert.equal(await location("node-1.example:8094"), `http://node-1.example:${health}/metrics`);
    assert.equal(await location("[::1]:8094"), `http://[::1]:${health}/metrics`);
    for (const hostile of ["evil.example/x?", "user@evil.example", "evil.example:80:81", "evil.example#"]) {
      assert.equal(await location(hostile), `http://127.0.0.1:${health}/metrics`, hostile);
    }
    assert.match(await rawGet(agent.adminPort!, undefined), /^HTTP\/1\.1 400 /, "HTTP/1.1 without Host is refused by node:http itself");
  });
});

describe("the health port's /readyz", () => {
  it("answers upstream's bytes while no server is connected: 503 and every check, verbose or not", async (t) => {
    const agent = await NodetunnelAgent.start(resolveAgentOptions({
      proxyServerHost: "127.0.0.1",
      proxyServerPort: 1, // nothing listens: the agent never becomes ready
      healthListen: { port: 0, host: "127.0.0.1" },
    }), { log: pino({ level: "silent" }), registry: new Registry() });
    t.after(() => agent.destroy());
    const expected = { status: 503, body: "[+]ping ok\n[-]server-connected failed: no servers connected\n" };
    for (const path of ["/readyz", "/readyz?verbose", "/ready"]) {
      const res = await fetch(`http://127.0.0.1:${agent.healthPort}${path}`);
      assert.deepEqual({ status: res.status, body: await res.text() }, expected, path);
    }
  });
});

describe("updateTls", () => {
  it("takes rotated material of the same shape, and refuses, changing nothing, what would add, drop or break a part", async () => {
    const { createPki } = await import("../transport/index.js");
    const [a, b] = await Promise.all([createPki(), createPki()]);
    const agent = new NodetunnelAgent(resolveAgentOptions({ tls: { ca: a.ca, cert: a.client.cert, key: a.client.key, alpnProtocols: [] } }), {
      log: pino({ level: "silent" }), registry: new Registry(),
    });
    assert.throws(() => agent.updateTls({ ca: b.ca }), /the cert cannot be added or removed/);
    assert.throws(() => agent.updateTls({ ca: b.ca, cert: b.client.cert, key: a.client.key }), /key values mismatch/);
    agent.updateTls({ ca: b.ca, cert: b.client.cert, key: b.client.key });
    const plain = new NodetunnelAgent(resolveAgentOptions({}), { log: pino({ level: "silent" }), registry: new Registry() });
    assert.throws(() => plain.updateTls({ ca: b.ca }), /the CA cannot be added or removed/);
  });
});
