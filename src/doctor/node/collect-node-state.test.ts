// The live probes of `doctor node` against loopback responders: the agent's /readyz must be
// bounded by one deadline for the whole exchange, not by http.get's idle timeout.
// Also the parse of `ip route get`, which names the interface and source of the agent's connection.
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { after, describe, test } from "node:test";
import { checkNode } from "./check-node.js";
import { getReadyz, parseRouteGet, readCommand } from "./collect-node-state.js";

// An HTTP responder that sends its headers and then one body byte every `everyMs`, never finishing:
// each byte resets an idle timeout.
async function dripping(everyMs: number): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once("data", () => {
      socket.write("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100000\r\n\r\n");
      const drip = setInterval(() => socket.write("x"), everyMs);
      socket.on("close", () => { clearInterval(drip); sockets.delete(socket); });
      socket.on("error", () => {});
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const close = () => new Promise<void>((r) => {
    server.close(() => r());
    sockets.forEach((s) => s.destroy());
  });
  return { port: (server.address() as { port: number }).port, close };
}

describe("getReadyz", () => {
  const closers: Array<() => Promise<void>> = [];
  after(() => Promise.all(closers.map((c) => c())));

  // Without the deadline this waits as long as the responder drips: the test's own timeout catches that.
  test("a health endpoint that drips a byte at a time ends at the deadline, as a timeout naming the endpoint", { timeout: 5000 }, async () => {
    const { port, close } = await dripping(50);
    closers.push(close);
    const started = Date.now();
    const h = await getReadyz({ host: "127.0.0.1", port }, 400);
    const elapsed = Date.now() - started;
    assert.deepEqual(h, { kind: "timeout", target: `http://127.0.0.1:${port}`, timeoutMs: 400 });
    assert.ok(elapsed >= 350 && elapsed < 2000, `ended after ${elapsed} ms`);
    const finding = (checkNode({
      iptablesSave: { ok: false, reason: "x" }, ufwStatus: { ok: false, reason: "ufw not found" }, nftRuleset: { ok: false, reason: "x" },
      procNetTcp: [], egress: null, agentHealth: h, ssTan: { ok: false, reason: "x" },
    }, { sources: [], nodeIp: null, port: 10250, inInterface: "eth0" }).findings as Array<{ id: string; status: string; summary: string }>).find((f) => f.id === "agent-health")!;
    assert.equal(finding.status, "problem");
    assert.match(finding.summary, new RegExp(`http://127\\.0\\.0\\.1:${port}/readyz gave no complete answer within 400 ms`));
  });

  test("a refused port is still an absent agent, not a timeout", async () => {
    const { port, close } = await dripping(50);
    await close();
    assert.deepEqual(await getReadyz({ host: "127.0.0.1", port }, 400), { kind: "absent", target: `http://127.0.0.1:${port}`, reason: "connection refused" });
  });
});

test("ip route get: the interface and source address of the route; none for an unreachable destination", () => {
  assert.deepEqual(parseRouteGet("10.225.0.4", "10.225.0.4 via 10.224.0.1 dev eth0 src 10.224.0.5 uid 0 \\    cache \n"), { host: "10.225.0.4", dev: "eth0", src: "10.224.0.5" });
  assert.deepEqual(parseRouteGet("fd00:1::4", "fd00:1::4 from :: via fe80::1 dev eth0 proto ra src fd00::5 metric 100 pref medium\n"), { host: "fd00:1::4", dev: "eth0", src: "fd00::5" });
  assert.deepEqual(parseRouteGet("10.1.0.1", "10.1.0.1 dev wg0 table 51820 uid 0 \\    cache \n"), { host: "10.1.0.1", dev: "wg0", src: null });
  assert.equal(parseRouteGet("10.225.0.4", "unreachable 10.225.0.4 uid 0 \\    cache <local> \n"), null);
  assert.equal(parseRouteGet("10.225.0.4", "blackhole 10.225.0.4 uid 0 \n"), null);
});

test("readCommand keeps what a command that succeeded wrote to stderr: iptables-nft's legacy-tables warning goes there", async () => {
  const r = await readCommand(["sh", "-c", "echo '# Warning: iptables-legacy tables present, use iptables-legacy-save to see them' >&2; echo '*filter'"]);
  assert.deepEqual(r, { ok: true, text: "*filter\n", stderr: "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n" });
  assert.deepEqual(await readCommand(["sh", "-c", "echo out"]), { ok: true, text: "out\n" });
});
