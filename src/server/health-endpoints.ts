// /healthz, /readyz (and the deprecated /ready) and /metrics, as upstream serves them
// (shared/spec/konnectivity.md §2.5): healthz always 200; readyz 200 while at least one agent is
// connected, 500 "no connection to any proxy agent" otherwise. /metrics is served on both the
// health and the admin port, so scrapers configured for either upstream layout keep working.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "prom-client";

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export function healthRoutes(isReady: () => boolean, registry: Registry): RouteHandler {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    switch (path) {
      case "/healthz":
        text(res, 200, "ok");
        return true;
      case "/readyz":
      case "/ready":
        if (isReady()) text(res, 200, "ok");
        else text(res, 500, "no connection to any proxy agent");
        return true;
      case "/metrics":
        registry.metrics().then(
          (body) => {
            res.writeHead(200, { "Content-Type": registry.contentType });
            res.end(body);
          },
          (err: unknown) => text(res, 500, String(err)),
        );
        return true;
      default:
        return false;
    }
  };
}

export function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" });
  res.end(body);
}
