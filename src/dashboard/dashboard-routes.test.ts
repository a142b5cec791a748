import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { after, before, describe, it } from "node:test";
import type { ServerSnapshot } from "../server/index.js";
import { dashboardRoutes } from "./dashboard-routes.js";

const snapshot = { serverId: "s-1" } as unknown as ServerSnapshot;

describe("dashboard routes", () => {
  let server: http.Server;
  let port = 0;

  before(async () => {
    const routes = dashboardRoutes(() => snapshot);
    server = http.createServer((req, res) => {
      if (!routes(req, res)) res.writeHead(404).end();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  /** GET /api/snapshot on 127.0.0.1 with the given Host and User-Agent headers. */
  async function get(host: string, userAgent: string): Promise<{ status: number; body: string }> {
    const req = http.request({ host: "127.0.0.1", port, path: "/api/snapshot", headers: { host, "user-agent": userAgent } });
    req.end();
    const [res] = (await once(req, "response")) as [http.IncomingMessage];
    let body = "";
    for await (const chunk of res) body += String(chunk);
    return { status: res.statusCode ?? 0, body };
  }

  const browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";

  it("answers a browser that names the port by address, localhost or this machine's name", async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `app.localhost:${port}`, `${hostname()}:${port}`, "127.0.0.1"]) {
      const r = await get(host, browser);
      assert.equal(r.status, 200, host);
      assert.equal((JSON.parse(r.body) as { serverId: string }).serverId, "s-1");
    }
  });

  it("refuses a browser that reaches it under another name (DNS rebinding), naming the Host", async () => {
    for (const host of [`attacker.example:${port}`, "127.0.0.1.attacker.example", `localhost.attacker.example:${port}`]) {
      const r = await get(host, browser);
      assert.equal(r.status, 403, host);
      assert.match(r.body, /DNS rebinding protection/);
      assert.ok(r.body.includes(JSON.stringify(host)), r.body);
    }
  });

  it("answers other clients under any name (curl, Prometheus, nodetunnel doctor cluster)", async () => {
    for (const ua of ["curl/8.5.0", "node", "Prometheus/2.53.0"]) {
      assert.equal((await get(`cp-1.example.internal:${port}`, ua)).status, 200, ua);
    }
  });
});
