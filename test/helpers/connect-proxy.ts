// An HTTP CONNECT proxy on loopback, like the forward proxy of a node that may not reach the
// control plane directly: it reads a CONNECT head, asks `route` what to do with it, and either
// pipes the client to a loopback port (after "200") or answers and closes.
import { once } from "node:events";
import net from "node:net";
import type { TestContext } from "node:test";

export interface ConnectProxy {
  /** The proxy's URL, with `userInfo` ("user:password@") when given. */
  url(userInfo?: string): URL;
  /** Each CONNECT seen: its target (host:port) and whole head. */
  readonly requests: Array<{ readonly target: string; readonly head: string }>;
}

/** `route` returns the loopback port to tunnel to, or a complete HTTP answer to send before closing. */
export async function startConnectProxy(t: Pick<TestContext, "after">, route: (target: string, head: string) => number | string): Promise<ConnectProxy> {
  const requests: ConnectProxy["requests"][number][] = [];
  const server = net.createServer((client) => {
    client.on("error", () => {});
    let head = "";
    const onData = (c: Buffer) => {
      head += c.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      client.off("data", onData);
      const target = /^CONNECT (\S+) HTTP\/1\.1\r\n/.exec(head)?.[1] ?? "";
      requests.push({ target, head });
      const to = route(target, head);
      if (typeof to === "string") return void client.end(to);
      const upstream = net.connect(to, "127.0.0.1");
      upstream.on("error", () => client.destroy());
      upstream.once("connect", () => {
        client.write("HTTP/1.1 200 Connection established\r\n\r\n");
        client.pipe(upstream).pipe(client);
      });
    };
    client.on("data", onData);
  }).listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => {
    server.close();
  });
  const port = (server.address() as net.AddressInfo).port;
  return { url: (userInfo = "") => new URL(`http://${userInfo}127.0.0.1:${port}`), requests };
}
