// Keepalive detects a dead peer (issue 6 item 6; shared/spec/konnectivity.md §1.7, §4 #19): a
// relay between agent and server that freezes — stops forwarding in both directions without
// closing either socket, as a black-holed path or a silently dropped NAT mapping does. Neither
// side gets a FIN or RST; each must find out from its own unanswered PING within keepalive time +
// timeout, release what belonged to the stream, and the agent must reconnect on its own.
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import { httpConnect, readUntil } from "./helpers/connect-client.js";
import { startDestination, startStack, type Stack } from "./helpers/stack.js";
import { sleep, waitFor, within } from "./helpers/wait.js";

const KEEPALIVE_TIME_MS = 200;
const KEEPALIVE_TIMEOUT_MS = 400;

/** A TCP relay to `port` whose current connections can be frozen (no bytes either way, nothing closed). */
async function startFreezableRelay(t: { after(fn: () => unknown): void }, port: number) {
  const pairs: Array<[net.Socket, net.Socket]> = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    pairs.push([client, upstream]);
    for (const s of [client, upstream]) s.on("error", () => {});
    client.pipe(upstream);
    upstream.pipe(client);
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  t.after(() => {
    server.close();
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    /** Freezes every connection open now; later connections pass normally. */
    freeze(): number {
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
        // Swallow what was already read, so nothing more crosses.
        a.removeAllListeners("data");
        b.removeAllListeners("data");
      }
      return pairs.length;
    },
  };
}

async function openEcho(stack: Stack, address: string): Promise<net.Socket> {
  const c = await httpConnect({ port: stack.connectPort }, address);
  assert.match(c.head, /^HTTP\/1\.1 200 /);
  c.socket.write("ping");
  assert.equal((await readUntil(c.socket, c.rest, (b) => b.length >= 4)).toString(), "ping");
  return c.socket;
}

describe("keepalive over a path that freezes", () => {
  it("server and agent each drop the dead stream within keepalive time + timeout; the agent reconnects and serves again", async (t) => {
    const stack = await startStack(t, { keepaliveTimeMs: KEEPALIVE_TIME_MS, keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS });
    const dest = await startDestination(t, { host: "127.0.7.1" });
    const relay = await startFreezableRelay(t, stack.agentPort);
    const agent = await stack.startAgent("frozen-node", "ipv4=127.0.7.1", {
      proxyServerPort: relay.port, keepaliveTimeMs: KEEPALIVE_TIME_MS, keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
      syncIntervalMs: 100, syncIntervalCapMs: 200,
    });
    const serverStream = stack.server.proxy.registry.streamsOf("frozen-node")[0]!;
    const agentSessionAt = agent.status().servers[0]!.connectedAt;
    const socket = await openEcho(stack, dest.address);
    t.after(() => socket.destroy());
    let frontendError: NodeJS.ErrnoException | undefined;
    socket.on("error", (e) => (frontendError = e));
    const frontendClosed = new Promise((resolve) => socket.once("close", resolve)); // once() would reject on the error
    // Idle pings are answered while the path works: nothing is dropped over several periods.
    await sleep(KEEPALIVE_TIME_MS * 4);
    assert.equal(serverStream.isClosed, false);
    assert.equal(agent.status().servers[0]!.connectedAt, agentSessionAt);

    const frozenAt = Date.now();
    assert.equal(relay.freeze(), 1);
    let serverMs = 0;
    let agentMs = 0;
    const limitMs = KEEPALIVE_TIME_MS + KEEPALIVE_TIMEOUT_MS + 700;
    while ((serverMs === 0 || agentMs === 0) && Date.now() - frozenAt < limitMs + 500) {
      if (serverMs === 0 && serverStream.isClosed) serverMs = Date.now() - frozenAt;
      if (agentMs === 0 && agent.status().servers[0]?.connectedAt !== agentSessionAt) agentMs = Date.now() - frozenAt;
      await sleep(5);
    }
    assert.ok(serverMs > 0 && serverMs < limitMs, `the server noticed after ${serverMs} ms (limit ${limitMs})`);
    assert.ok(agentMs > 0 && agentMs < limitMs, `the agent noticed after ${agentMs} ms (limit ${limitMs})`);
    t.diagnostic(`frozen path noticed by the server after ${serverMs} ms, by the agent after ${agentMs} ms`);
    // Not before a ping could have gone unanswered: it is keepalive that found it.
    assert.ok(serverMs >= KEEPALIVE_TIMEOUT_MS - 50 && agentMs >= KEEPALIVE_TIMEOUT_MS - 50, `server ${serverMs} ms, agent ${agentMs} ms`);

    // What the dead stream carried is released on both sides.
    await within(frontendClosed, "the frontend connection on the dead stream to close", 1000);
    assert.equal(frontendError?.code, "ECONNRESET", "cut short by the dead stream: a reset, not a clean end");
    await waitFor(() => dest.open === 0, "the agent to close the destination socket", 1000);
    await stack.settled(1000);

    // A new stream through the (working) relay: the node is reachable again.
    await agent.waitForServers(1, 3000);
    await waitFor(() => stack.server.proxy.registry.streamsOf("frozen-node").length === 1, "the agent registered again");
    const again = await openEcho(stack, dest.address);
    again.end();
    await stack.settled();
    await waitFor(() => dest.open === 0, "the destination socket closed");
  });
});
