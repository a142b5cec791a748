// The dashboard on the admin port (issue 7 item 3): GET / (the page), /dashboard.js (its script)
// and /api/snapshot (the data as JSON). Other paths fall through to /metrics and friends.
// The admin port binds to 127.0.0.1 by default; the page has no controls, it only reads.
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isIP } from "node:net";
import { hostname } from "node:os";
import type { RouteHandler, ServerSnapshot } from "../server/index.js";
import { dashboardHtml } from "./dashboard-page.js";

// Read once: it ships beside this module (the sources run through tsx; there is no build step).
const clientScript = readFileSync(new URL("./dashboard-client.js", import.meta.url), "utf8");

// Scripts only from this origin (no inline script can run, whatever reached the page), data only
// from the same origin, no framing.
const contentSecurityPolicy =
  "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function dashboardRoutes(snapshot: () => ServerSnapshot): RouteHandler {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/" && path !== "/dashboard.js" && path !== "/api/snapshot") return false;
    if (!isHostAllowed(req)) {
      send(res, 403, "text/plain; charset=utf-8", `the dashboard answers browsers only at an IP address, localhost or ${hostname()} (Host: ${JSON.stringify(req.headers.host ?? "")} refused: DNS rebinding protection)`);
      return true;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "text/plain; charset=utf-8", "method not allowed", { Allow: "GET, HEAD" });
      return true;
    }
    switch (path) {
      case "/":
        send(res, 200, "text/html; charset=utf-8", dashboardHtml, { "Content-Security-Policy": contentSecurityPolicy });
        break;
      case "/dashboard.js":
        send(res, 200, "text/javascript; charset=utf-8", clientScript);
        break;
      default:
        send(res, 200, "application/json; charset=utf-8", JSON.stringify(snapshot()));
    }
    return true;
  };
}

/**
 * DNS rebinding: a page from another site can re-point its own name at 127.0.0.1 and then read this
 * port as its own origin; its requests carry that name in Host. So a browser (every one sends a
 * "Mozilla/" user agent) must name the port by an IP address, localhost or this machine's name.
 * Other clients (curl, Prometheus, `nodetunnel doctor cluster`) may use any name.
 */
function isHostAllowed(req: IncomingMessage): boolean {
  if (!(req.headers["user-agent"] ?? "").startsWith("Mozilla/")) return true;
  const host = (req.headers.host ?? "").toLowerCase();
  const name = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d*$/, "");
  const own = hostname().toLowerCase();
  return isIP(name) !== 0 || name === "localhost" || name.endsWith(".localhost") || name === own || name === own.split(".")[0];
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    ...headers,
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}
