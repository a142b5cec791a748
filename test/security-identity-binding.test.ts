// Identity binding with agent mTLS (docs/security.md "Identity binding"): a certificate's CN and
// SANs are what its agent may claim (by default only where it names addresses, and not the agent id); claims outside are refused at Connect with PERMISSION_DENIED
// naming the claim; `--identity-binding` strict/off/unset; and what happens when two agents claim
// one node identity (both kept, the one registered first is used, the other takes over when it leaves).
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { pino } from "pino";
import { Registry } from "prom-client";
import { NodetunnelServer, resolveServerOptions, type ServerOptionsInput } from "../src/server/index.js";
import { parseIdentityMap, type IdentityBindingMode } from "../src/server/agent-auth/index.js";
import {
  GrpcClient, GrpcStatus, createPki, type GrpcCallStatus, type GrpcClientCall, type PemPair, type Pki,
} from "../src/transport/index.js";

const log = pino({ level: "silent" });
let pki: Pki;
let node1: PemPair; // CN node-1, SAN DNS node-1, IP 10.224.0.5
let node1b: PemPair; // a second credential for the same node address (e.g. a replacement agent)
let node7: PemPair; // another node: 10.224.0.7
let shared: PemPair; // a shared agent certificate without SANs (the upstream way)

before(async () => {
  pki = await createPki();
  [node1, node1b, node7, shared] = await Promise.all([
    pki.issue("node-1", { client: true, dns: ["node-1"], ips: ["10.224.0.5", "fd00::5"] }),
    pki.issue("node-1b", { client: true, dns: ["node-1b"], ips: ["10.224.0.5"] }),
    pki.issue("node-7", { client: true, dns: ["node-7"], ips: ["10.224.0.7"] }),
    pki.issue("konnectivity-agent", { client: true }),
  ]);
});

async function startServer(t: { after(fn: () => void): void }, extra: Partial<ServerOptionsInput> = {}) {
  const server = await NodetunnelServer.start(resolveServerOptions({
    frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }],
    agentListen: { port: 0, host: "127.0.0.1" },
    agentTls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca },
    proxyStrategies: ["destHost", "default"],
    ...extra,
  }), { log, registry: new Registry() });
  const clients: GrpcClient[] = [];
  t.after(() => {
    for (const c of clients) c.destroy();
    server.destroy();
  });
  /** Opens an agent stream with `cert`; resolves with the open call, or the refusal status. */
  const connect = async (cert: PemPair, agentID: string, agentIdentifiers: string): Promise<{ call: GrpcClientCall } | GrpcCallStatus> => {
    const client = await GrpcClient.connect({ host: "127.0.0.1", port: server.addresses.agentPort, tls: { ca: pki.ca, cert: cert.cert, key: cert.key } });
    clients.push(client);
    const call = client.openStream("/AgentService/Connect", { agentID, agentIdentifiers });
    const status = once(call, "status").then(([s]) => s as GrpcCallStatus);
    return await Promise.race([call.headers.then(() => ({ call }), () => status), status]);
  };
  return { server, connect };
}

const refused = (r: { call: GrpcClientCall } | GrpcCallStatus): GrpcCallStatus => {
  assert.ok(!("call" in r), "expected the Connect to be refused");
  return r;
};
const accepted = (r: { call: GrpcClientCall } | GrpcCallStatus): GrpcClientCall => {
  assert.ok("call" in r, `expected the Connect to be accepted, got ${JSON.stringify(r)}`);
  return r.call;
};

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(check(), what);
}

describe("binding to the client certificate (default: on for certificates with SAN IPs, for the identifiers)", () => {
  it("accepts the certificate's own names and addresses", async (t) => {
    const { server, connect } = await startServer(t);
    accepted(await connect(node1, "node-1", "host=node-1&ipv4=10.224.0.5&ipv6=fd00:0::5"));
    assert.equal(server.proxy.registry.streamsOf("node-1")[0]!.authenticatedAs, "mtls:node-1");
    accepted(await connect(node1, "10.224.0.5", "ipv4=10.224.0.5"));
  });

  it("refuses another node's address, a host name and default-route, naming the claim", async (t) => {
    const { server, connect } = await startServer(t);
    const cases: Array<[string, string, RegExp]> = [
      ["node-1", "ipv4=10.224.0.7", /claim ipv4=10\.224\.0\.7 \(allowed: .*ip=10\.224\.0\.5.*identity binding is on because the certificate names addresses/],
      ["node-1", "host=node-7", /claim host=node-7/],
      ["node-1", "ipv4=10.224.0.5&default-route=true", /claim default-route=true/],
      ["node-1", "ipv6=fd00::6", /claim ipv6=fd00::6/],
      ["node-1", "ipv4=010.224.0.5", /claim ipv4=010\.224\.0\.5/],
    ];
    for (const [id, claims, message] of cases) {
      const status = refused(await connect(node1, id, claims));
      assert.equal(status.code, GrpcStatus.PERMISSION_DENIED, claims);
      assert.match(status.message, message);
    }
    assert.equal(server.proxy.registry.agentCount, 0);
  });

  it("binds the agent id only with --identity-binding=strict: upstream's agent id is a random UUID by default", async (t) => {
    const unset = await startServer(t);
    accepted(await unset.connect(node1, "3f1c2a9e-4b7d-4c1e-9a57-0d6f4c3b2a10", "ipv4=10.224.0.5"));
    const strict = await startServer(t, { identityBinding: "strict" });
    assert.match(refused(await strict.connect(node1, "3f1c2a9e-4b7d-4c1e-9a57-0d6f4c3b2a10", "ipv4=10.224.0.5")).message, /claim agentID=3f1c2a9e/);
    assert.match(refused(await strict.connect(node1, "node-7", "ipv4=10.224.0.5")).message, /claim agentID=node-7/);
  });

  it("leaves a shared certificate with only a DNS name unbound (an upstream agent's certificate works unchanged)", async (t) => {
    const sharedDns = await pki.issue("konnectivity-agent", { client: true, dns: ["konnectivity-agent"] });
    const unset = await startServer(t);
    accepted(await unset.connect(sharedDns, "3f1c2a9e-4b7d-4c1e-9a57-0d6f4c3b2a10", "ipv4=10.224.0.9&host=node-9"));
    const strict = await startServer(t, { identityBinding: "strict" });
    assert.match(refused(await strict.connect(sharedDns, "konnectivity-agent", "ipv4=10.224.0.9")).message, /claim ipv4=10\.224\.0\.9/);
  });

  it("leaves a shared certificate without SANs unbound unless --identity-binding=strict", async (t) => {
    const unset = await startServer(t);
    accepted(await unset.connect(shared, "anything", "ipv4=10.224.0.9"));
    const strict = await startServer(t, { identityBinding: "strict" });
    const status = refused(await strict.connect(shared, "anything", "ipv4=10.224.0.9"));
    assert.match(status.message, /credential mtls:konnectivity-agent does not allow the claim agentID=anything/);
    accepted(await strict.connect(shared, "konnectivity-agent", ""));
  });

  it("--identity-binding=off accepts every claim (upstream's behaviour)", async (t) => {
    const { connect } = await startServer(t, { identityBinding: "off" satisfies IdentityBindingMode });
    accepted(await connect(node1, "node-7", "ipv4=10.224.0.7&default-route=true"));
  });

  it("the identity map extends a certificate by its CN", async (t) => {
    const { connect } = await startServer(t, { identityMap: parseIdentityMap('"cn/konnectivity-agent":\n  defaultRoute: true\n  agentIds: [gateway-1]\n') });
    accepted(await connect(shared, "gateway-1", "default-route=true"));
    const status = refused(await connect(shared, "gateway-1", "ipv4=10.224.0.5"));
    assert.match(status.message, /claim ipv4=10\.224\.0\.5/);
  });
});

describe("two agents claiming one node identity", () => {
  it("an agent that takes another's agent id first, with its own address, does not take that node's traffic", async (t) => {
    // node-7's credential, node-1's agent id (not bound by default), node-7's own address: accepted.
    // node-1 then (re)connects: its address routes to it, not to the stream that held the id first.
    const { server, connect } = await startServer(t);
    accepted(await connect(node7, "node-1", "ipv4=10.224.0.7"));
    accepted(await connect(node1, "node-1", "ipv4=10.224.0.5"));
    assert.equal(server.proxy.registry.pick("10.224.0.5:10250")?.agent.authenticatedAs, "mtls:node-1");
    assert.equal(server.proxy.registry.pick("10.224.0.7:10250")?.agent.authenticatedAs, "mtls:node-7");
  });

  it("same agent id twice (a reconnect): both streams kept, the oldest used", async (t) => {
    const { server, connect } = await startServer(t);
    const first = accepted(await connect(node1, "node-1", "ipv4=10.224.0.5"));
    accepted(await connect(node1, "node-1", "ipv4=10.224.0.5"));
    const streams = server.proxy.registry.streamsOf("node-1");
    assert.equal(streams.length, 2);
    assert.equal(server.proxy.registry.pick("10.224.0.5:10250")?.agent, streams[0]);
    first.cancel();
    await until(() => server.proxy.registry.streamsOf("node-1").length === 1, "the first stream is removed");
    assert.equal(server.proxy.registry.pick("10.224.0.5:10250")?.agent, server.proxy.registry.streamsOf("node-1")[0]);
  });

  it("a different agent id: allowed only when its credential allows the identity; the first registered is used", async (t) => {
    const { server, connect } = await startServer(t);
    const first = accepted(await connect(node1, "node-1", "ipv4=10.224.0.5"));
    accepted(await connect(node1b, "node-1b", "ipv4=10.224.0.5"));
    const intruder = refused(await connect(node7, "node-7", "ipv4=10.224.0.5"));
    assert.equal(intruder.code, GrpcStatus.PERMISSION_DENIED);
    assert.match(intruder.message, /mtls:node-7 does not allow the claim ipv4=10\.224\.0\.5/);
    assert.equal(server.proxy.registry.pick("10.224.0.5:10250")?.agent.agentId, "node-1");
    first.cancel();
    await until(() => server.proxy.registry.streamsOf("node-1").length === 0, "node-1 leaves");
    assert.equal(server.proxy.registry.pick("10.224.0.5:10250")?.agent.agentId, "node-1b", "the other holder takes over");
  });
});
