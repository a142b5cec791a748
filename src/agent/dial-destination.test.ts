// A dial cancelled by the server (DIAL_CLS): before it starts, during the connect, and after it
// ended (no effect). Loopback only.
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { it } from "node:test";
import { DestinationPolicy } from "./destination-policy.js";
import { DialCancel, DialError, dialDestination } from "./dial-destination.js";

const anyDestination = DestinationPolicy.parse([]);

async function listener(): Promise<{ port: number; accepted: net.Socket[]; close: () => void }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s)).listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    close: () => {
      for (const s of accepted) s.destroy();
      server.close();
    },
  };
}

const isCancelled = (e: unknown) => e instanceof DialError && e.kind === "cancelled" && /operation was canceled/.test(e.goText);

it("a dial cancelled before it starts or while connecting rejects as cancelled", async () => {
  const l = await listener();
  try {
    const early = new DialCancel();
    early.cancel();
    await assert.rejects(dialDestination(`127.0.0.1:${l.port}`, { timeoutMs: 1000, policy: anyDestination, cancel: early }), isCancelled);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(l.accepted.length, 0, "a dial cancelled before it began makes no connection attempt");

    const during = new DialCancel();
    const dial = dialDestination(`127.0.0.1:${l.port}`, { timeoutMs: 1000, policy: anyDestination, cancel: during });
    during.cancel(); // the connect is under way: no await before it with an IP address
    await assert.rejects(dial, isCancelled);
    assert.equal(during.cancelled, true);
  } finally {
    l.close();
  }
});

it("cancelling after the dial succeeded changes nothing", async () => {
  const l = await listener();
  try {
    const cancel = new DialCancel();
    const socket = await dialDestination(`127.0.0.1:${l.port}`, { timeoutMs: 1000, policy: anyDestination, cancel });
    cancel.cancel();
    assert.equal(socket.destroyed, false);
    socket.write("still open");
    socket.destroy();
  } finally {
    l.close();
  }
});

it("the dial's deadline covers the name lookup: a resolver that never answers fails the dial on time", async () => {
  const never = () => new Promise<string>(() => {});
  const started = performance.now();
  await assert.rejects(
    dialDestination("slow.test:10250", { timeoutMs: 150, policy: anyDestination, lookup: never }),
    (e) => e instanceof DialError && e.kind === "timeout" && e.goText === "dial tcp: lookup slow.test: i/o timeout",
  );
  const ms = performance.now() - started;
  assert.ok(ms >= 140 && ms < 2000, `failed after ${ms.toFixed(0)} ms, deadline 150`);
});

it("a dial cancelled during its lookup rejects at once and connects nowhere when the lookup answers later", async () => {
  const l = await listener();
  try {
    let answer!: (ip: string) => void;
    const slow = () => new Promise<string>((r) => (answer = r));
    const cancel = new DialCancel();
    const dial = dialDestination(`named.test:${l.port}`, { timeoutMs: 5000, policy: anyDestination, cancel, lookup: slow });
    cancel.cancel();
    await assert.rejects(dial, isCancelled);
    answer("127.0.0.1");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(l.accepted.length, 0);
  } finally {
    l.close();
  }
});

it("an address without a port fails with Go's text", async () => {
  await assert.rejects(
    dialDestination("127.0.0.1", { timeoutMs: 1000, policy: anyDestination }),
    (e) => e instanceof DialError && e.goText === "dial tcp: address 127.0.0.1: missing port in address",
  );
});

it("a port past 65535 fails with Go's text for an invalid port", async () => {
  await assert.rejects(
    dialDestination("127.0.0.1:99999", { timeoutMs: 1000, policy: anyDestination }),
    (e) => e instanceof DialError && e.goText === "dial tcp: address 99999: invalid port",
  );
});

it("a refused dial to a name says the address it connected to, as Go does", async () => {
  const probe = net.createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const port = (probe.address() as net.AddressInfo).port;
  probe.close();
  await once(probe, "close");
  // A test resolver: no real lookup of an invented name.
  const lookup = async (host: string) => (host === "kubelet.test" ? "127.0.0.1" : Promise.reject(new Error("unexpected")));
  await assert.rejects(
    dialDestination(`kubelet.test:${port}`, { timeoutMs: 1000, policy: anyDestination, lookup }),
    (e) => e instanceof DialError && e.goText === `dial tcp 127.0.0.1:${port}: connect: connection refused`,
  );
});
