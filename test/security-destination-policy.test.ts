// The agent's --allowed-destinations (src/agent/destination-policy.ts): CIDRs v4 and v6, ports,
// ranges and lists; host names resolved, then checked by address; the refusal text a caller sees
// through the tunnel; and the metric nodetunnel_agent_denied_destinations_total.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { pino } from "pino";
import { Registry } from "prom-client";
import { DestinationPolicy, NodetunnelAgent, dialDestination, resolveAgentOptions } from "../src/agent/index.js";
import { isTunnelError } from "../src/protocol/index.js";
import { NodetunnelServer, resolveServerOptions } from "../src/server/index.js";
import { createPki } from "../src/transport/index.js";

const log = pino({ level: "silent" });

describe("parsing and matching", () => {
  const policy = DestinationPolicy.parse([
    "10.224.0.0/16:10250",
    "10.96.0.0/12:443,8443",
    "192.168.1.5:30000-30010",
    "172.16.0.0/12",
    "[fd00::/8]:10250",
    "[2001:db8::1]",
  ]);

  const cases: Array<[string, number, boolean]> = [
    ["10.224.3.4", 10250, true], ["10.224.3.4", 10255, false], ["10.225.0.1", 10250, false],
    ["10.96.0.1", 443, true], ["10.111.255.255", 8443, true], ["10.112.0.0", 443, false], ["10.96.0.1", 80, false],
    ["192.168.1.5", 30000, true], ["192.168.1.5", 30010, true], ["192.168.1.5", 30011, false], ["192.168.1.5", 29999, false], ["192.168.1.6", 30005, false],
    ["172.31.255.255", 1, true], ["172.32.0.0", 1, false],
    ["fd12::7", 10250, true], ["fd12::7", 443, false], ["fe80::1", 10250, false],
    ["2001:db8::1", 65535, true], ["2001:db8::2", 1, false],
  ];
  for (const [ip, port, allowed] of cases) {
    it(`${allowed ? "allows" : "refuses"} ${ip} port ${port}`, () => assert.equal(policy.allows(ip, port), allowed));
  }

  // Node's BlockList matches an IPv4 address against an IPv6 subnet through its IPv4-mapped form,
  // so an entry such as [::/0] (meant: any IPv6 node) also let through 127.0.0.1 and 169.254.169.254.
  it("keeps IPv6 entries to IPv6: [::/0] allows no IPv4 address, nor an IPv4-mapped one", () => {
    const v6Only = DestinationPolicy.parse(["10.224.0.0/16:10250", "[::/0]:10250"]);
    for (const ip of ["127.0.0.1", "169.254.169.254", "0.0.0.0", "::ffff:127.0.0.1", "::ffff:7f00:1", "0:0:0:0:0:ffff:a9fe:a9fe"]) {
      assert.equal(v6Only.allows(ip, 10250), false, ip);
    }
    for (const ip of ["fd00::1", "2001:db8::5", "10.224.0.5", "::ffff:10.224.0.5"]) assert.equal(v6Only.allows(ip, 10250), true, ip);
  });

  it("checks an IPv4-mapped IPv6 address as the IPv4 address it is, and takes IPv4-mapped CIDRs as IPv4", () => {
    const mapped = DestinationPolicy.parse(["[::ffff:10.224.0.0/112]:10250"]);
    assert.equal(mapped.allows("10.224.3.4", 10250), true);
    assert.equal(mapped.allows("::ffff:10.224.3.4", 10250), true);
    assert.equal(mapped.allows("10.225.0.1", 10250), false);
    assert.equal(mapped.allows("fd00::1", 10250), false);
    assert.equal(policy.allows("::ffff:10.224.3.4", 10250), true);
    assert.equal(policy.allows("::ffff:10.224.3.4", 10255), false);
  });

  it("refuses what is not an IP address (an empty host resolves to none)", () => {
    for (const ip of ["", "node-1", "10.224.0.5.", "::ffff:"]) assert.equal(policy.allows(ip, 10250), false, JSON.stringify(ip));
  });

  it("allows everything with no entries (upstream's default) and describes itself", () => {
    const open = DestinationPolicy.allowAll();
    assert.equal(open.isRestricted, false);
    assert.equal(open.allows("8.8.8.8", 53), true);
    assert.equal(open.describe(), "any destination");
    assert.equal(DestinationPolicy.parse(["10.0.0.0/8:10250"]).describe(), "10.0.0.0/8:10250");
  });

  it("refuses malformed entries with the entry and the expected forms", () => {
    for (const [spec, why] of [
      ["10.0.0.0/33", /prefix length "33" is out of range/],
      ["node-1:10250", /"node-1" is not an IP address/],
      ["10.0.0.0/8:0", /port range "0" is out of 1-65535/],
      ["10.0.0.0/8:20-10", /port range "20-10"/],
      ["10.0.0.0/8:http", /"http" is not a port or range/],
      ["fd00::/8:10250", /expected CIDR, CIDR:PORT/],
    ] as const) {
      assert.throws(() => DestinationPolicy.parse([spec]), (e) => isTunnelError(e, "INVALID_OPTION") && why.test(e.message) && e.message.includes("--allowed-destinations"), spec);
    }
  });
});

describe("the dialer", () => {
  let listener: net.Server;
  let port = 0;
  before(async () => {
    listener = net.createServer((s) => s.end()).listen(0, "127.0.0.1");
    await once(listener, "listening");
    port = (listener.address() as net.AddressInfo).port;
  });
  after(() => listener.close());

  it("refuses a denied address before connecting, with Go-style text naming the policy", async () => {
    let accepted = 0;
    listener.on("connection", () => accepted++);
    await assert.rejects(dialDestination(`127.0.0.1:${port}`, { timeoutMs: 1000, policy: DestinationPolicy.parse(["10.0.0.0/8"]) }), (e) =>
      isTunnelError(e, "DESTINATION_DENIED") &&
      e.message === `dial tcp 127.0.0.1:${port}: destination not allowed by the agent's --allowed-destinations (10.0.0.0/8)`);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(accepted, 0, "no connection was attempted");
  });

  it("does not let an IPv6 entry reach the node itself through 0.0.0.0, an IPv4-mapped or a numeric host", async () => {
    let accepted = 0;
    const count = () => accepted++;
    listener.on("connection", count);
    const v6Only = DestinationPolicy.parse([`[::/0]:${port}`]);
    try {
      for (const host of ["0.0.0.0", "127.0.0.1", "[::ffff:127.0.0.1]", "2130706433", "localhost"]) {
        const outcome = await dialDestination(`${host}:${port}`, { timeoutMs: 1000, policy: v6Only }).then(
          (socket) => (socket.destroy(), "connected"),
          (e: unknown) => (isTunnelError(e, "DESTINATION_DENIED") ? "denied" : String(e)),
        );
        // localhost may resolve to ::1, which [::/0] allows (nothing listens there on this port).
        if (host === "localhost" && outcome !== "denied") assert.notEqual(outcome, "connected", host);
        else assert.equal(outcome, "denied", host);
      }
    } finally {
      listener.off("connection", count);
    }
    assert.equal(accepted, 0, "no connection reached the IPv4 listener");
  });

  it("resolves a host name, then checks the address", async () => {
    await assert.rejects(dialDestination(`localhost:${port}`, { timeoutMs: 1000, policy: DestinationPolicy.parse(["10.0.0.0/8"]) }),
      (e) => isTunnelError(e, "DESTINATION_DENIED") && e.message.startsWith(`dial tcp localhost:${port}: destination not allowed`));
    // localhost may resolve to 127.0.0.1 or ::1: allow exactly those at this port.
    const loopbackOnly = DestinationPolicy.parse([`127.0.0.1/32:${port}`, `[::1/128]:${port}`]);
    try {
      const socket = await dialDestination(`localhost:${port}`, { timeoutMs: 1000, policy: loopbackOnly });
      socket.destroy();
    } catch (err) {
      // Resolved to ::1 where nothing listens: the policy let it through, the connect was refused.
      assert.ok(!isTunnelError(err, "DESTINATION_DENIED"), String(err));
    }
  });
});

describe("through the tunnel", () => {
  it("a caller gets the refusal in its response, and the agent counts it", async (t) => {
    const pki = await createPki();
    const allowed = net.createServer((s) => s.end("hello")).listen(0, "127.0.0.1");
    await once(allowed, "listening");
    const allowedPort = (allowed.address() as net.AddressInfo).port;
    t.after(() => allowed.close());
    const server = await NodetunnelServer.start(resolveServerOptions({
      frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }],
      agentListen: { port: 0, host: "127.0.0.1" }, agentTls: { ...pki.server, ca: pki.ca }, proxyStrategies: ["default"],
    }), { log, registry: new Registry() });
    t.after(() => server.destroy());
    const agentRegistry = new Registry();
    const agent = await NodetunnelAgent.start(resolveAgentOptions({
      agentId: "node-1", identifiers: "", proxyServerHost: "127.0.0.1", proxyServerPort: server.addresses.agentPort,
      tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] }, allowedDestinations: [`127.0.0.1/32:${allowedPort}`],
    }), { log, registry: agentRegistry });
    t.after(() => agent.destroy());
    await agent.waitForServers(1);
    const connectPort = server.addresses.frontends[0]!.port!;
    const request = async (target: string): Promise<string> => {
      const socket = net.connect(connectPort, "127.0.0.1");
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
      let data = "";
      socket.on("data", (d: Buffer) => {
        data += d;
        if (data.includes("hello")) socket.end();
      });
      const timer = setTimeout(() => socket.destroy(), 5000);
      await new Promise((r) => socket.on("close", r));
      clearTimeout(timer);
      return data;
    };
    const denied = async () => (await agentRegistry.getSingleMetric("nodetunnel_agent_denied_destinations_total")!.get()).values[0]?.value ?? 0;
    assert.match(await request(`127.0.0.1:${allowedPort}`), /^HTTP\/1\.1 200[\s\S]*hello/);
    assert.equal(await denied(), 0);
    const refused = await request("127.0.0.1:1");
    assert.match(refused, /^HTTP\/1\.1 502 /);
    assert.match(refused, /dial tcp 127\.0\.0\.1:1: destination not allowed by the agent's --allowed-destinations \(127\.0\.0\.1\/32:\d+\)/);
    assert.equal(await denied(), 1);
  });
});
