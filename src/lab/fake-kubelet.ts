// A kubelet-like HTTPS endpoint for the demo, the lab and the benchmarks: it serves
// /containerLogs/<namespace>/<pod>/<container> (what `kubectl logs` fetches), /healthz, and
// /exec-like echo on /echo, with the TLS certificate a kubelet would have.
import https from "node:https";
import type { AddressInfo } from "node:net";

export interface FakeKubeletOptions {
  readonly nodeName: string;
  readonly cert: string;
  readonly key: string;
  readonly host: string;
  readonly port: number;
}

export interface FakeKubelet {
  readonly nodeName: string;
  readonly host: string;
  readonly port: number;
  readonly requests: number;
  close(): Promise<void>;
}

export function logLines(nodeName: string, namespace: string, pod: string, container: string, count = 3): string {
  const lines: string[] = [];
  for (let i = 1; i <= count; i++) {
    lines.push(`2026-11-25T12:00:0${i}Z ${namespace}/${pod}/${container} on ${nodeName}: request ${i} served`);
  }
  return lines.join("\n") + "\n";
}

export async function startFakeKubelet(o: FakeKubeletOptions): Promise<FakeKubelet> {
  let requests = 0;
  const server = https.createServer({ cert: o.cert, key: o.key }, (req, res) => {
    requests++;
    const url = new URL(req.url ?? "/", "https://kubelet");
    const logs = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (logs) {
      const body = logLines(o.nodeName, logs[1]!, logs[2]!, logs[3]!);
      res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    } else if (url.pathname === "/healthz") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("ok");
    } else if (url.pathname === "/echo" && req.method === "POST") {
      res.writeHead(200, { "Content-Type": "application/octet-stream" });
      req.pipe(res);
    } else {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("404 page not found\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    nodeName: o.nodeName,
    host: o.host,
    port,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
