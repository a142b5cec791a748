// A TCP load balancer on loopback in front of servers' agent ports, for HA tests.
import net from "node:net";
import type { Cleanup } from "./stack.js";

/**
 * A TCP load balancer on loopback in front of the servers' agent ports. `pick(n)` chooses the
 * backend for the n-th connection (round robin by default).
 */
export async function startLoadBalancer(cleanup: Cleanup, backends: () => readonly number[], pick?: (n: number, count: number) => number) {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const lb = net.createServer((client) => {
    const n = accepted++;
    const ports = backends();
    const port = ports[pick ? pick(n, ports.length) : n % ports.length]!;
    const upstream = net.connect(port, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.once("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => lb.listen(0, "127.0.0.1", () => resolve()));
  cleanup.after(() => {
    lb.close();
    for (const s of sockets) s.destroy();
  });
  return {
    port: (lb.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    /** Client-side connections still open through the balancer. */
    get open() {
      return [...sockets].filter((s) => s.localPort === (lb.address() as net.AddressInfo).port).length;
    },
  };
}
