// Rolling updates (issue 6 item 4; shared/spec/konnectivity.md §2.4 signals, §4 #18): an agent
// being replaced sends DRAIN, the server routes new dials to another agent, and the draining
// agent's existing connections keep working until they finish or the drain deadline passes. A
// server shutting down gracefully stops taking dials and lets its connections finish within its
// deadline.
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import { dialResponse } from "../src/protocol/index.js";
import { http2Implementations } from "../src/transport/index.js";
import { httpConnect, readUntil } from "./helpers/connect-client.js";
import { attachRawAgent } from "./helpers/raw-peers.js";
import { startDestination, startStack, type Destination, type Stack } from "./helpers/stack.js";
import { waitFor, within } from "./helpers/wait.js";

/** An open tunnelled connection through the stack's TCP CONNECT frontend, checked with one echo. */
async function open(stack: Stack, dest: Destination): Promise<net.Socket> {
  const { head, socket, rest } = await httpConnect({ port: stack.connectPort }, dest.address);
  assert.match(head, /^HTTP\/1\.1 200 /, head + rest.toString());
  await echo(socket, "hello");
  return socket;
}

async function echo(socket: net.Socket, text: string): Promise<void> {
  socket.write(text);
  const got = await readUntil(socket, Buffer.alloc(0), (b) => b.length >= text.length, 3000);
  assert.equal(got.toString(), text);
}

const connectionsOf = (agent: { status(): { servers: ReadonlyArray<{ connections: number }> } }) =>
  agent.status().servers.reduce((n, s) => n + s.connections, 0);

describe("rolling update: agent DRAIN", () => {
  it("routes new dials to another agent while the draining agent's connection keeps working; stops when it finishes", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["default"] });
    const dest = await startDestination(t);
    const old = await stack.startAgent("old-agent", "ipv4=127.0.4.1", { drainTimeoutMs: 10_000 });
    const kept = await open(stack, dest); // only the old agent exists: it carries this one
    t.after(() => kept.destroy());
    assert.equal(connectionsOf(old), 1);
    const replacement = await stack.startAgent("new-agent", "ipv4=127.0.4.2");

    const drained = old.drain();
    await waitFor(() => stack.server.proxy.registry.streamsOf("old-agent")[0]?.isDraining === true, "the server to mark the agent draining");
    assert.equal(old.status().state, "draining");

    const fresh: net.Socket[] = [];
    t.after(() => fresh.forEach((s) => s.destroy()));
    for (let i = 0; i < 10; i++) fresh.push(await open(stack, dest));
    assert.equal(connectionsOf(replacement), 10, "every new dial went to the agent that is not draining");
    assert.equal(connectionsOf(old), 1);
    await echo(kept, "still flowing during the drain");

    const finishedAt = Date.now();
    kept.end();
    await within(drained, "drain() to resolve once the last connection finished", 3000);
    assert.ok(Date.now() - finishedAt < 1500, `the agent stopped ${Date.now() - finishedAt} ms after its last connection`);
    assert.equal(old.status().state, "stopped");
    await waitFor(() => stack.server.proxy.registry.streamsOf("old-agent").length === 0, "the server to drop the drained agent");
    for (const s of fresh) await echo(s, "unaffected");
    for (const s of fresh) s.end();
    await stack.settled();
    assert.equal(dest.open, 0);
  });

  it("cuts a connection still open at the drain deadline, then stops", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["default"] });
    const dest = await startDestination(t);
    const agent = await stack.startAgent("deadline-agent", "ipv4=127.0.4.3", { drainTimeoutMs: 400 });
    const held = await open(stack, dest);
    t.after(() => held.destroy());
    // Cut at the deadline: a reset (an error), not a clean end; once() would reject on it.
    const closed = new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      let error: NodeJS.ErrnoException | undefined;
      held.on("error", (e) => (error = e)).once("close", () => resolve(error));
    });
    const started = Date.now();
    await within(agent.drain(), "drain() to give up at its deadline", 3000);
    const tookMs = Date.now() - started;
    assert.ok(tookMs >= 400 && tookMs < 1500, `drain took ${tookMs} ms with a 400 ms deadline`);
    assert.equal((await within(closed, "the frontend socket to be closed", 2000))?.code, "ECONNRESET");
    await stack.settled();
    await waitFor(() => dest.open === 0, "the destination socket to be closed");
    assert.equal(agent.status().state, "stopped");
  });
});

describe("rolling update: server graceful shutdown", () => {
  it("a dial the agent has not answered yet when close(deadline) begins still completes within the deadline", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["default"], dialTimeoutMs: 5000 });
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "slow-dialer", "ipv4=127.0.4.9");
    t.after(() => agent.destroy());
    const connecting = httpConnect({ port: stack.connectPort }, "127.0.4.9:10250", 8000);
    const req = await agent.packets.expect("DIAL_REQ");
    const closing = stack.server.close(5000);
    await new Promise((r) => setTimeout(r, 500)); // the destination takes its time
    agent.send(dialResponse(req.random, 5n));
    const { socket, head } = await connecting;
    t.after(() => socket.destroy());
    assert.equal(head, "HTTP/1.1 200 Connection Established\r\n\r\n", "not cut by the shutdown, not blamed on the agent");
    socket.destroy();
    await within(closing, "close() to resolve", 6000);
  });

  it("close(deadline) refuses new dials, lets an established connection finish, then stops", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["default"] });
    const dest = await startDestination(t);
    const agent = await stack.startAgent("gs-agent", "ipv4=127.0.4.4", { syncIntervalMs: 100, syncIntervalCapMs: 200 });
    const kept = await open(stack, dest);
    t.after(() => kept.destroy());

    const closing = stack.server.close(5000);
    // New dials: the frontend listener is gone.
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const s = net.connect(stack.connectPort, "127.0.0.1", () => {
          s.destroy();
          resolve();
        });
        s.once("error", reject);
      }),
      /ECONNREFUSED/,
    );
    await echo(kept, "the established connection still flows");
    assert.equal(stack.server.proxy.establishedCount, 1);

    const finishedAt = Date.now();
    kept.end();
    await within(closing, "close() to resolve after the last connection finished", 3000);
    assert.ok(Date.now() - finishedAt < 1500, `closed ${Date.now() - finishedAt} ms after the last connection`);
    await waitFor(() => agent.status().servers.length === 0, "the agent to see the server go");
    assert.equal(agent.status().state, "running", "the agent keeps trying to reconnect");
    await waitFor(() => dest.open === 0, "the destination socket closed");
  });

  for (const agentHttp2 of http2Implementations) {
    it(`close(deadline) sends agents GOAWAY first (agent port on ${agentHttp2}): the old stream keeps its connection while the agent already tries a replacement`, async (t) => {
      const stack = await startStack(t, { proxyStrategies: ["default"], agentHttp2 });
      const dest = await startDestination(t);
      const agent = await stack.startAgent("ga-agent", "ipv4=127.0.4.6", { syncIntervalMs: 100, syncIntervalCapMs: 200 });
      const kept = await open(stack, dest);
      t.after(() => kept.destroy());

      const closing = stack.server.close(10_000);
      await waitFor(() => agent.status().servers.some((s) => s.goingAway === true && s.connections === 1),
        "the agent to see the server going away, with the connection still on its stream");
      await echo(kept, "still flows after the GOAWAY");
      // The slot is free: the agent already tries to connect a replacement (here the same address,
      // whose agent port no longer listens), instead of waiting for this server's deadline.
      await waitFor(() => agent.status().lastErrors.some((e) => e.includes("ECONNREFUSED")), "the agent to try a replacement during the drain");
      assert.equal(stack.server.proxy.establishedCount, 1);

      kept.end();
      await within(closing, "close() to resolve after the last connection finished", 3000);
      await waitFor(() => agent.status().servers.length === 0, "the old stream to be gone");
      await waitFor(() => dest.open === 0, "the destination socket closed");
    });
  }

  it("one server restarting on its address: after a long drain the agent comes back at the first backoff step, not at the step its retries had reached", async (t) => {
    const first = await startStack(t, { proxyStrategies: ["default"] });
    const dest = await startDestination(t);
    const agent = await first.startAgent("restart-agent", "ipv4=127.0.4.7", {
      syncIntervalMs: 400, syncIntervalCapMs: 4000, healthListen: { port: 0, host: "127.0.0.1" },
    });
    const kept = await open(first, dest);
    t.after(() => kept.destroy());
    const closing = first.server.close(20_000);
    await waitFor(() => agent.status().servers.some((s) => s.goingAway === true), "the agent to see the server going away");
    // While the connection drains, the agent's tries at a replacement are refused and back off:
    // after the fifth, the next is ~3 s away (400 ms × 1.5⁵).
    const failures = async () => {
      const text = await (await fetch(`http://127.0.0.1:${agent.healthPort!}/metrics`)).text();
      return Number(/^konnectivity_network_proxy_agent_server_connection_failure_count\{direction="to_server"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    for (const until = Date.now() + 15_000; (await failures()) < 5;) {
      assert.ok(Date.now() < until, "five refused tries within 15 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    kept.end();
    await within(closing, "close() to resolve after the last connection finished", 3000);
    const second = await startStack(t, { proxyStrategies: ["default"], serverId: "second-server", agentListen: { port: first.agentPort, host: "127.0.0.1" } });
    const startedAt = Date.now();
    await waitFor(() => second.server.proxy.registry.streamsOf("restart-agent").length === 1, "the agent on the restarted server", 6000);
    const tookMs = Date.now() - startedAt;
    t.diagnostic(`back on the restarted server after ${tookMs} ms`);
    assert.ok(tookMs < 1500, `the agent came back ${tookMs} ms after the server (first backoff step: 400 ms)`);
  });

  it("close(deadline) cuts what is still open when the deadline passes", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["default"] });
    const dest = await startDestination(t);
    await stack.startAgent("gs-agent-2", "ipv4=127.0.4.5");
    const held = await open(stack, dest);
    t.after(() => held.destroy());
    // Cut at the deadline: a reset (an error), not a clean end; once() would reject on it.
    const closed = new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      let error: NodeJS.ErrnoException | undefined;
      held.on("error", (e) => (error = e)).once("close", () => resolve(error));
    });
    const started = Date.now();
    await within(stack.server.close(400), "close() to give up at its deadline", 3000);
    const tookMs = Date.now() - started;
    assert.ok(tookMs >= 350 && tookMs < 1500, `close took ${tookMs} ms with a 400 ms deadline`);
    assert.equal((await within(closed, "the frontend socket to be closed", 2000))?.code, "ECONNRESET");
    await waitFor(() => dest.open === 0, "the destination socket to be closed by the agent");
  });
});
