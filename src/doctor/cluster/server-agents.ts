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
}

export interface Endpoint { readonly host: string; readonly port: number }

function get(ep: Endpoint, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: ep.host, port: ep.port, path, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { if (body.length < 8 * 1024 * 1024) body += c; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

export function readyBackendCount(metrics: string): number | null {
  const m = /^konnectivity_network_proxy_server_ready_backend_connections(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/m.exec(metrics);
  return m ? Number(m[1]) : null;
}

export async function readServerAgents(health: Endpoint, admin: Endpoint | null, timeoutMs: number): Promise<ServerAgents> {
  if (admin) {
    try {
      const r = await get(admin, "/api/snapshot", timeoutMs);
      if (r.status === 200) {
        const s = JSON.parse(r.body) as { isReady: boolean; agents: Array<{ agentId: string; identifiers: unknown; peerAddress?: string }> };
        return { source: "snapshot", ready: s.isReady, count: s.agents.length, agents: s.agents.map((a) => ({ agentId: a.agentId, identifiers: a.identifiers, peerAddress: a.peerAddress ?? null })), reason: null };
      }
    } catch {
      // no dashboard on the admin port: fall back to the health port
    }
  }
  try {
    const ready = await get(health, "/readyz", timeoutMs);
    const metrics = await get(health, "/metrics", timeoutMs).catch(() => ({ status: 0, body: "" }));
    return { source: "metrics", ready: ready.status === 200, count: readyBackendCount(metrics.body), agents: [], reason: null };
  } catch (err) {
    return { source: "unreachable", ready: null, count: null, agents: [], reason: (err as Error).message };
  }
}
