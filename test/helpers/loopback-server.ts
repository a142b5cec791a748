// A TCP server on 127.0.0.1 for one test: it keeps count of its open sockets and destroys them
// and itself when the test ends.
import { once } from "node:events";
import net from "node:net";

interface Hooks {
  after(fn: () => void): void;
}

export interface LoopbackServer {
  readonly port: number;
  /** `127.0.0.1:port`, as a DIAL_REQ or CONNECT names it. */
  readonly address: string;
  /** Sockets accepted and not yet closed. */
  open(): number;
}

export async function loopbackServer(t: Hooks, onSocket: (socket: net.Socket) => void): Promise<LoopbackServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
    onSocket(s);
  }).listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = (server.address() as net.AddressInfo).port;
  return { port, address: `127.0.0.1:${port}`, open: () => sockets.size };
}
