// One JSON request to the Kubernetes API with a client configuration (kubeconfig or in-cluster):
// the server's TLS trust, its client certificate or bearer token, a deadline and a bound on the
// answer's size. Used by the TokenReview client and the lease controller.
import https from "node:https";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import tls from "node:tls";
import { connectThroughProxy, proxyFor } from "../../transport/index.js";
import type { KubeClientConfig } from "../agent-auth/kube-client-config.js";

export interface KubeResponse {
  readonly status: number;
  readonly text: string;
}

export interface KubeRequest {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path and query, e.g. `/apis/coordination.k8s.io/v1/namespaces/kube-system/leases?labelSelector=a%3Db`. */
  readonly path: string;
  readonly body?: unknown;
  readonly signal: AbortSignal;
}

const maxResponseBytes = 1024 * 1024;

/** Thrown when the answer would be larger than 1 MiB. */
export class ResponseTooLarge extends Error {}

/** Resolves with any HTTP answer; rejects with the transport's error (or the signal's abort). */
export async function kubeRequest(config: KubeClientConfig, r: KubeRequest): Promise<KubeResponse> {
  let bearer = config.token;
  if (config.tokenFile) bearer = (await readFile(config.tokenFile, "utf8")).trim();
  const body = r.body === undefined ? undefined : JSON.stringify(r.body);
  const url = new URL(r.path, `${config.server}/`);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 443);
  const proxy = proxyFor(config.proxy, host, port);
  // Through a proxy (HTTPS_PROXY, as client-go): TLS to the API server inside its CONNECT tunnel.
  const tunnel = proxy ? await connectThroughProxy(proxy, host, port, { timeoutMs: 30_000, signal: r.signal, userAgent: "nodetunnel" }) : undefined;
  return await new Promise<KubeResponse>((resolve, reject) => {
    const req = https.request(url, {
      method: r.method,
      ca: config.ca,
      cert: config.cert,
      key: config.key,
      rejectUnauthorized: !config.insecureSkipTlsVerify,
      headers: {
        accept: "application/json",
        ...(body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) }),
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      },
      signal: r.signal,
      // No agent: with one (even agent: false makes a fresh one) Node ignores createConnection.
      agent: tunnel ? undefined : false,
      ...(tunnel ? {
        createConnection: () => tls.connect({
          socket: tunnel, host, servername: isIP(host) ? undefined : host,
          ca: config.ca, cert: config.cert, key: config.key, rejectUnauthorized: !config.insecureSkipTlsVerify,
        }),
      } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxResponseBytes) {
          req.destroy(new ResponseTooLarge(`response larger than ${maxResponseBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}
