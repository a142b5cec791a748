// HA (issue 6 item 4; shared/spec/konnectivity.md §2.7): three servers with --server-count=3,
// and agents that reach all of them however they are told where the servers are — a list, one
// address behind a round-robin load balancer (upstream's way: keep dialing, close duplicates), or
// a DNS name with several addresses (resolution injected: every address here is loopback). Every
// server must route to every agent; a server or agent that goes away and comes back is picked up
// again by the reconnect loop, with no operator action.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions, type AgentDeps, type AgentOptionsInput } from "../src/agent/index.js";
import { NodetunnelServer, resolveServerOptions } from "../src/server/index.js";
import type { PemPair, Pki } from "../src/transport/index.js";
import { httpConnect, readUntil } from "./helpers/connect-client.js";
import { Cleanup, sharedPki, silentLog, startDestination, type Destination } from "./helpers/stack.js";
import { startLoadBalancer } from "./helpers/load-balancer.js";
import { sleep, waitFor } from "./helpers/wait.js";

const SERVER_COUNT = 3;
// Short reconnect backoff so a returning server is found quickly (upstream: 1 s ×1.5, cap 10 s).
const SYNC = { syncIntervalMs: 100, syncIntervalCapMs: 400 };

let certPromise: Promise<PemPair> | undefined;
/** One server certificate valid for every loopback address the servers listen on. */
const serverCert = async (pki: Pki) =>
  (certPromise ??= pki.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1", "127.0.0.2", "127.0.0.3"] }));

let dnsCertPromise: Promise<PemPair> | undefined;
/** A certificate that names the servers' DNS name only, as a public or internal CA issues them. */
const dnsOnlyCert = async (pki: Pki) => (dnsCertPromise ??= pki.issue("konnectivity.nt-ha.invalid", { dns: ["konnectivity.nt-ha.invalid"], ips: [] }));

async function startServer(cleanup: Cleanup, serverId: string, agentListen: { host: string; port: number }, certFor = serverCert): Promise<NodetunnelServer> {
  const pki = await sharedPki();
  const cert = await certFor(pki);
  const server = await NodetunnelServer.start(
    resolveServerOptions({
      serverId,
      serverCount: SERVER_COUNT,
      // destHost only: a dial that succeeds reached the agent that owns the address, not a fallback.
      proxyStrategies: ["destHost"],
      frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }],
      agentListen,
      agentTls: { cert: cert.cert, key: cert.key, ca: pki.ca },
    }),
    { log: silentLog, registry: new Registry() },
  );
  cleanup.after(() => server.destroy());
  return server;
}

async function startAgent(cleanup: Cleanup, agentId: string, ip: string, input: Partial<AgentOptionsInput>, deps: Partial<AgentDeps> = {}): Promise<NodetunnelAgent> {
  const pki = await sharedPki();
  const agent = await NodetunnelAgent.start(
    resolveAgentOptions({
      agentId,
      identifiers: `ipv4=${ip}`,
      tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] },
      ...SYNC,
      ...input,
    }),
    { log: silentLog, registry: new Registry(), ...deps },
  );
  cleanup.after(() => agent.destroy());
  return agent;
}

/** CONNECT through `server` to `dest`, one round trip, close. Throws with the response when refused. */
async function roundTrip(server: NodetunnelServer, dest: Destination, text: string): Promise<void> {
  const { head, socket, rest } = await httpConnect({ port: server.addresses.frontends[0]!.port! }, dest.address);
  try {
    assert.match(head, /^HTTP\/1\.1 200 /, `${dest.address} via ${server.options.serverId}: ${head}${rest.toString()}`);
    socket.write(text);
    const echoed = await readUntil(socket, rest, (b) => b.length >= text.length);
    assert.equal(echoed.toString(), text);
  } finally {
    socket.destroy();
  }
}

/** Every server routes to every agent: one round trip per (server, agent) pair. */
async function assertFullMesh(servers: readonly NodetunnelServer[], dests: readonly Destination[]): Promise<void> {
  for (const s of servers) {
    for (const d of dests) await roundTrip(s, d, `${s.options.serverId}->${d.host}`);
  }
}

const serverIdsOf = (agent: NodetunnelAgent) => agent.status().servers.map((s) => s.serverId).sort();

describe("HA: three servers, agents connected to all of them", () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());

  it("agents given the list of servers connect to all three, and every server routes to every agent", async () => {
    const servers = await Promise.all([1, 2, 3].map((i) => startServer(cleanup, `list-s${i}`, { host: "127.0.0.1", port: 0 })));
    const list = servers.map((s) => `127.0.0.1:${s.addresses.agentPort}`).join(",");
    const dests = await Promise.all([1, 2, 3].map((i) => startDestination(cleanup, { host: `127.0.1.${i}` })));
    const agents = await Promise.all([1, 2, 3].map((i) => startAgent(cleanup, `list-node-${i}`, `127.0.1.${i}`, { proxyServerHost: list })));
    for (const a of agents) await a.waitForServers(3, 5000);
    for (const a of agents) {
      assert.deepEqual(serverIdsOf(a), ["list-s1", "list-s2", "list-s3"]);
      assert.equal(a.status().knownServerCount, 3);
    }
    for (const s of servers) for (const a of agents) assert.equal(s.proxy.registry.streamsOf(a.options.agentId).length, 1);
    await assertFullMesh(servers, dests);

    // Kill one server: the other two keep serving every agent, and nothing waits for it.
    const port2 = servers[1]!.addresses.agentPort;
    servers[1]!.destroy();
    await waitFor(() => agents.every((a) => a.status().servers.length === 2), "agents to notice the lost server");
    await assertFullMesh([servers[0]!, servers[2]!], dests);

    // It comes back on the same address with the same id: agents reconnect on their own.
    const returnedAt = Date.now();
    const again = await startServer(cleanup, "list-s2", { host: "127.0.0.1", port: port2 });
    await waitFor(() => agents.every((a) => a.status().servers.length === 3), "agents to reconnect to the returned server", 5000);
    const reconnectMs = Date.now() - returnedAt;
    // Backoff capped at 400 ms (+10 % jitter) plus connect time: well under 2 s.
    assert.ok(reconnectMs < 2000, `reconnected after ${reconnectMs} ms`);
    await assertFullMesh([servers[0]!, again, servers[2]!], dests);

    // An agent restart: the new stream replaces the old one on every server.
    agents[0]!.destroy();
    await waitFor(() => [servers[0]!, again, servers[2]!].every((s) => s.proxy.registry.streamsOf("list-node-1").length === 0), "servers to drop the stopped agent");
    const restarted = await startAgent(cleanup, "list-node-1", "127.0.1.1", { proxyServerHost: list });
    await restarted.waitForServers(3, 5000);
    for (const s of [servers[0]!, again, servers[2]!]) assert.equal(s.proxy.registry.streamsOf("list-node-1").length, 1);
    await assertFullMesh([servers[0]!, again, servers[2]!], dests);
    for (const s of [servers[0]!, again, servers[2]!]) {
      await waitFor(() => s.proxy.establishedCount === 0 && s.proxy.pendingDialCount === 0, `${s.options.serverId} tables empty`);
    }
  });

  it("an agent given one load-balanced address keeps dialing until it holds three distinct servers, closing duplicates", async () => {
    const servers = await Promise.all([1, 2, 3].map((i) => startServer(cleanup, `lb-s${i}`, { host: "127.0.0.1", port: 0 })));
    const ports = servers.map((s) => s.addresses.agentPort);
    // Each backend twice in a row (s1, s1, s2, s2, s3, s3, ...): the agent's second connection
    // lands on the server it already holds, which upstream closes and retries.
    const lb = await startLoadBalancer(cleanup, () => ports, (n, count) => Math.floor(n / 2) % count);
    const dests = await Promise.all([1, 2].map((i) => startDestination(cleanup, { host: `127.0.2.${i}` })));
    const agent = await startAgent(cleanup, "lb-node-1", "127.0.2.1", { proxyServerHost: `127.0.0.1:${lb.port}` });
    await agent.waitForServers(3, 5000);
    assert.deepEqual(serverIdsOf(agent), ["lb-s1", "lb-s2", "lb-s3"]);
    assert.ok(lb.accepted >= 4, `the balancer saw ${lb.accepted} connections; at least one duplicate was expected`);
    await waitFor(() => lb.open === 3, `duplicates closed (open through the balancer: ${lb.open})`);
    for (const s of servers) assert.equal(s.proxy.registry.streamsOf("lb-node-1").length, 1);

    // A second agent behind plain round robin also ends up on all three.
    const rr = await startLoadBalancer(cleanup, () => ports);
    const second = await startAgent(cleanup, "lb-node-2", "127.0.2.2", { proxyServerHost: `127.0.0.1:${rr.port}` });
    await second.waitForServers(3, 5000);
    assert.deepEqual(serverIdsOf(second), ["lb-s1", "lb-s2", "lb-s3"]);
    await assertFullMesh(servers, dests);

    // A server behind the balancer dies and returns: agents find it again through the balancer.
    const port3 = ports[2]!;
    servers[2]!.destroy();
    await waitFor(() => agent.status().servers.length === 2 && second.status().servers.length === 2, "agents to notice the lost server");
    const again = await startServer(cleanup, "lb-s3", { host: "127.0.0.1", port: port3 });
    await waitFor(() => agent.status().servers.length === 3 && second.status().servers.length === 3, "agents to find the returned server through the balancer", 8000);
    await assertFullMesh([servers[0]!, servers[1]!, again], dests);
    await waitFor(() => lb.open === 3 && rr.open === 3, `one connection per server per agent (${lb.open}, ${rr.open})`);
  });

  it("a server count above the servers an agent can reach: its extra slots back off instead of a handshake every --sync-interval forever", async () => {
    // Three servers counted, one reachable (a new server not yet in the agent's list): the two
    // extra slots keep landing on the one they hold. At the first step alone that was a TLS
    // handshake every 100 ms per slot (~70 in four seconds); with the back-off after 15 in a row
    // (5 × the server count), ~45.
    const server = await startServer(cleanup, "only-s1", { host: "127.0.0.1", port: 0 });
    const lb = await startLoadBalancer(cleanup, () => [server.addresses.agentPort]);
    const agent = await startAgent(cleanup, "short-node", "127.0.4.1", { proxyServerHost: `127.0.0.1:${lb.port}` });
    await agent.waitForServers(1, 5000);
    const before = lb.accepted;
    await sleep(4000);
    const extra = lb.accepted - before;
    assert.ok(extra <= 58, `${extra} connections in 4 s from two slots that can only find the server they hold`);
    assert.ok(extra >= 2, "they still look for the missing servers");
    assert.match(agent.status().lastErrors.join("\n"), /duplicate connection to server only-s1/);
  });

  it("a server behind the balancer goes away gracefully: the agent backs off while no replacement exists, then reaches it while the old one still drains", async () => {
    const servers = await Promise.all([1, 2, 3].map((i) => startServer(cleanup, `roll-s${i}`, { host: "127.0.0.1", port: 0 })));
    const backends = servers.map((s) => s.addresses.agentPort);
    const lb = await startLoadBalancer(cleanup, () => backends);
    const dest = await startDestination(cleanup, { host: "127.0.3.1" });
    const agent = await startAgent(cleanup, "roll-node-1", "127.0.3.1", { proxyServerHost: `127.0.0.1:${lb.port}` });
    await agent.waitForServers(3, 5000);
    // A connection through the server that will leave, open for its whole drain.
    const { head, socket, rest } = await httpConnect({ port: servers[2]!.addresses.frontends[0]!.port! }, dest.address);
    assert.match(head, /^HTTP\/1\.1 200 /);
    socket.write("before");
    assert.equal((await readUntil(socket, rest, (b) => b.length >= 6)).toString(), "before");

    // It goes (SIGTERM with a graceful timeout): GOAWAY to the agent, its listener closed. Its
    // replacement is not there yet, so every try through the balancer lands on a server the agent
    // holds (or on the closed port). Those tries back off (100 ms × 1.5ⁿ, capped at 400 ms here)
    // instead of coming every 100 ms.
    const closing = servers[2]!.close(20_000);
    backends.splice(2, 1);
    await waitFor(() => agent.status().servers.some((s) => s.serverId === "roll-s3" && s.goingAway === true), "the agent to see roll-s3 going away");
    const acceptedBefore = lb.accepted;
    await new Promise((r) => setTimeout(r, 3000));
    const tries = lb.accepted - acceptedBefore;
    assert.ok(tries >= 3 && tries <= 20, `${tries} tries in 3 s with no replacement (without the backoff: ~26)`);

    // The replacement joins the balancer: the agent reaches it while roll-s3 still drains.
    const replacement = await startServer(cleanup, "roll-s4", { host: "127.0.0.1", port: 0 });
    backends.push(replacement.addresses.agentPort);
    await waitFor(() => replacement.proxy.registry.streamsOf("roll-node-1").length === 1, "the agent on the replacement", 5000);
    assert.equal(servers[2]!.proxy.establishedCount, 1, "roll-s3 still drains its connection");
    socket.write("during");
    assert.equal((await readUntil(socket, Buffer.alloc(0), (b) => b.length >= 6)).toString(), "during");
    assert.deepEqual(agent.status().servers.map((s) => `${s.serverId}${s.goingAway ? " (going away)" : ""}`).sort(),
      ["roll-s1", "roll-s2", "roll-s3 (going away)", "roll-s4"]);
    await assertFullMesh([servers[0]!, servers[1]!, replacement], [dest]);

    socket.end();
    await closing;
    await waitFor(() => agent.status().servers.length === 3, "roll-s3's stream to be gone");
    assert.deepEqual(serverIdsOf(agent), ["roll-s1", "roll-s2", "roll-s4"]);
  });

  // The servers' certificate carries only the DNS name: the agent checks it against the name it was
  // given, not against the address it picked (it once did, and failed closed).
  it("a DNS name with several addresses spreads the agent's slots over them", async (t) => {
    const first = await startServer(cleanup, "dns-s1", { host: "127.0.0.1", port: 0 }, dnsOnlyCert);
    const port = first.addresses.agentPort;
    let others: NodetunnelServer[];
    try {
      others = await Promise.all([2, 3].map((i) => startServer(cleanup, `dns-s${i}`, { host: `127.0.0.${i}`, port }, dnsOnlyCert)));
    } catch (err) {
      t.skip(`port ${port} is taken on 127.0.0.2/127.0.0.3 (${(err as Error).message})`);
      return;
    }
    const servers = [first, ...others];
    const lookups: string[] = [];
    // The name is never sent to a resolver: the injected lookup answers with loopback addresses.
    const lookup = async (host: string) => {
      lookups.push(host);
      return [1, 2, 3].map((i) => ({ address: `127.0.0.${i}`, family: 4 }));
    };
    const dests = await Promise.all([1].map((i) => startDestination(cleanup, { host: `127.0.3.${i}` })));
    const agent = await startAgent(cleanup, "dns-node-1", "127.0.3.1", { proxyServerHost: "konnectivity.nt-ha.invalid", proxyServerPort: port }, { lookup });
    await agent.waitForServers(3, 5000);
    assert.deepEqual(serverIdsOf(agent), ["dns-s1", "dns-s2", "dns-s3"]);
    assert.ok(lookups.length >= 3 && lookups.every((h) => h === "konnectivity.nt-ha.invalid"), `lookups: ${lookups.join(",")}`);
    await assertFullMesh(servers, dests);

    // The name is resolved again at each attempt: a server that returns is found.
    servers[2]!.destroy();
    await waitFor(() => agent.status().servers.length === 2, "agent to notice the lost server");
    const again = await startServer(cleanup, "dns-s3", { host: "127.0.0.3", port }, dnsOnlyCert);
    await waitFor(() => agent.status().servers.length === 3, "agent to reconnect to 127.0.0.3", 5000);
    await assertFullMesh([servers[0]!, servers[1]!, again], dests);
  });
});
