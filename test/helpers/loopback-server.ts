// A server for one test, on 127.0.0.1 or on a Unix socket: it keeps count of its open sockets
// and destroys them and itself when the test ends.
import { once } from "node:events";
import net from "node:net";

interface Hooks {
  after(fn: () => void): void;
}

export interface LoopbackServer {
  /** 0 on a Unix socket. */
  readonly port: number;
  /** `127.0.0.1:port`, as a DIAL_REQ or CONNECT names it; the path on a Unix socket. */
  readonly address: string;
  /** Sockets accepted and not yet closed. */
  open(): number;
}

/** `unixPath`: listen there instead of on a TCP port of 127.0.0.1. */
export async function loopbackServer(t: Hooks, onSocket: (socket: net.Socket) => void, unixPath?: string): Promise<LoopbackServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
    onSocket(s);
  });
  if (unixPath === undefined) server.listen(0, "127.0.0.1");
  else server.listen(unixPath);
  await once(server, "listening");
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = unixPath === undefined ? (server.address() as net.AddressInfo).port : 0;
  return { port, address: unixPath ?? `127.0.0.1:${port}`, open: () => sockets.size };
}
