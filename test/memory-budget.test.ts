// The memory budget, the last resort behind the per-connection caps: enough stalled readers, each
// holding its credit window, push a process over it, and it pauses reading its shared streams. That
// pause must end by itself: the connections whose readers took nothing are closed, and every other
// connection, other nodes' included, goes on. On the agent, whose paused stream would not even
// carry the CLOSE_REQs that free the memory, the same. Real server and agents on loopback, small
// budgets so that a few stalled connections reach them.
import assert from "node:assert/strict";
import net from "node:net";
import { it } from "node:test";
import { httpConnect, readUntil } from "./helpers/connect-client.js";
import { streamBytes } from "./helpers/bulk-peers.js";
import { startStack, type Stack } from "./helpers/stack.js";
import { sleep, waitFor } from "./helpers/wait.js";

const MiB = 1024 * 1024;

async function listen(t: { after(fn: () => void): void }, host: string, onConnection: (s: net.Socket) => void): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    onConnection(s);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return `${host}:${(server.address() as net.AddressInfo).port}`;
}

/** Opens a tunnel, sends one ping and waits for it back; throws on anything else. */
async function echoOnce(stack: Stack, address: string): Promise<void> {
  const { socket, head, rest } = await httpConnect({ port: stack.connectPort }, address, 5000);
  try {
    assert.equal(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
    socket.write("ping");
    assert.equal((await readUntil(socket, rest, (b) => b.length >= 4, 3000)).toString(), "ping");
  } finally {
    socket.destroy();
  }
}

/** The echo works within `ms`, retried: the budget's pause may hold it for about a second. */
async function echoWithin(stack: Stack, address: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await echoOnce(stack, address);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

it("on the server: stalled downloads that fill the budget are closed, and another node's connections go on", { timeout: 60_000 }, async (t) => {
  const stack = await startStack(t, { proxyStrategies: ["destHost"], flow: { memoryBudgetBytes: 12 * MiB } });
  await stack.startAgent("node-a", "ipv4=127.0.0.1");
  await stack.startAgent("node-b", "ipv4=127.0.0.2");
  const source = await listen(t, "127.0.0.1", (s) => streamBytes(s, 256 * MiB));
  const echoB = await listen(t, "127.0.0.2", (s) => s.pipe(s));
  await echoOnce(stack, echoB);
  const budget = stack.server.proxy.budget;
  // Each stalled download holds up to its 4 MiB credit window in the server: 6 of them pass 12 MiB.
  const stalled: net.Socket[] = [];
  t.after(() => stalled.forEach((s) => s.destroy()));
  for (let i = 0; i < 6; i++) {
    const { socket } = await httpConnect({ port: stack.connectPort }, source);
    socket.pause();
    socket.on("error", () => {});
    stalled.push(socket);
  }
  await waitFor(() => budget.isPaused, "the server's budget to pause its agent streams", 15_000);
  // Within a few seconds the pause ends by itself and the other node answers.
  await echoWithin(stack, echoB, 5000);
  await waitFor(() => !budget.isPaused, "the pause to end", 5000);
  // A paused client socket does not notice its reset; the server's table shows who was closed.
  const left = stack.server.proxy.establishedCount;
  assert.ok(left > 0 && left < 6, `some stalled downloads closed, not all: ${6 - left} of 6`);
  assert.ok(budget.usedBytes <= budget.limitBytes, `${budget.usedBytes} bytes held, budget ${budget.limitBytes}`);
  // node-a itself serves new connections too.
  const echoA = await listen(t, "127.0.0.1", (s) => s.pipe(s));
  await echoWithin(stack, echoA, 5000);
});

it("on the agent: uploads into destinations that never read fill its budget; they are closed and the node dials again", { timeout: 60_000 }, async (t) => {
  const stack = await startStack(t, { proxyStrategies: ["destHost"] });
  const agent = await stack.startAgent("node-a", "ipv4=127.0.0.1", { flow: { memoryBudgetBytes: 12 * MiB } });
  const stall = await listen(t, "127.0.0.1", (s) => s.pause());
  const echo = await listen(t, "127.0.0.1", (s) => s.pipe(s));
  const budget = (agent as unknown as { budget: { isPaused: boolean; usedBytes: number; limitBytes: number } }).budget;
  const chunk = Buffer.alloc(64 * 1024, 0x55);
  const uploads: net.Socket[] = [];
  t.after(() => uploads.forEach((s) => s.destroy()));
  for (let i = 0; i < 6; i++) {
    const { socket } = await httpConnect({ port: stack.connectPort }, stall);
    socket.on("error", () => {});
    let sent = 0;
    const pump = () => {
      while (sent < 32 * MiB && !socket.destroyed) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once("drain", pump);
      }
    };
    pump();
    uploads.push(socket);
  }
  await waitFor(() => budget.isPaused, "the agent's budget to pause its server stream", 15_000);
  await echoWithin(stack, echo, 5000);
  await waitFor(() => !budget.isPaused, "the pause to end", 5000);
  assert.ok(budget.usedBytes <= budget.limitBytes, `${budget.usedBytes} bytes held, budget ${budget.limitBytes}`);
});
