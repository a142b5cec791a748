// Which agents the server has: the admin port's /api/snapshot where the dashboard serves it (ids
// and identities), else the health port's /readyz and the upstream gauge
// konnectivity_network_proxy_server_ready_backend_connections from /metrics (a count only).
import http from "node:http";

export interface ServerAgents {
  readonly source: "snapshot" | "metrics" | "unreachable";
  readonly ready: boolean | null;
  readonly count: number | null;
  readonly agents: ReadonlyArray<{ readonly agentId: string; readonly identifiers: unknown; readonly peerAddress: string | null }>;
  readonly reason: string | null;
  /** Why the admin port's /api/snapshot could not be read (absent when it answered, or had no dashboard). */
  readonly adminReason?: string;
}

export interface Endpoint { readonly host: string; readonly port: number }

const urlOf = (ep: Endpoint, path: string) => `http://${ep.host.includes(":") ? `[${ep.host}]` : ep.host}:${ep.port}${path}`;

// One deadline for the whole exchange, as `--timeout` promises: http.get's `timeout` is an idle
// timeout, which an endpoint that drips a byte now and then never trips, so a timer destroys the
// request instead. The error names the endpoint, since the caller reads several.
function get(ep: Endpoint, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  const url = urlOf(ep, path);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: ep.host, port: ep.port, path }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { if (body.length < 8 * 1024 * 1024) body += c; });
      res.on("end", () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    const deadline = setTimeout(() => req.destroy(new Error(`${url}: no complete answer within ${timeoutMs} ms (timeout)`)), timeoutMs);
    deadline.unref();
    req.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(deadline);
      reject(err.message.startsWith(url) ? err : new Error(`${url}: ${err.code ?? err.message}`, { cause: err }));
    });
  });
}

export function readyBackendCount(metrics: string): number | null {
  const m = /^konnectivity_network_proxy_server_ready_backend_connections(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/m.exec(metrics);
  return m ? Number(m[1]) : null;
}

/** `progress` is told each address as it is read (the admin port first, the health port if needed). */
export async function readServerAgents(health: Endpoint, admin: Endpoint | null, timeoutMs: number, progress: (url: string) => void = () => {}): Promise<ServerAgents> {
  let adminReason: string | undefined;
  if (admin) {
    try {
      progress(urlOf(admin, "/api/snapshot"));
      const r = await get(admin, "/api/snapshot", timeoutMs);
      if (r.status === 200) {
        const s = JSON.parse(r.body) as { isReady: boolean; agents: Array<{ agentId: string; identifiers: unknown; peerAddress?: string }> };
        return { source: "snapshot", ready: s.isReady, count: s.agents.length, agents: s.agents.map((a) => ({ agentId: a.agentId, identifiers: a.identifiers, peerAddress: a.peerAddress ?? null })), reason: null };
      }
    } catch (err) {
      // no dashboard on the admin port (or no answer from it): fall back to the health port
      adminReason = (err as Error).message;
    }
  }
  const admitted = adminReason === undefined ? {} : { adminReason };
  try {
    progress(`${urlOf(health, "/readyz")} and /metrics`);
    const ready = await get(health, "/readyz", timeoutMs);
    const metrics = await get(health, "/metrics", timeoutMs).catch(() => ({ status: 0, body: "" }));
    return { source: "metrics", ready: ready.status === 200, count: readyBackendCount(metrics.body), agents: [], reason: null, ...admitted };
  } catch (err) {
    return { source: "unreachable", ready: null, count: null, agents: [], reason: (err as Error).message, ...admitted };
  }
}
