// The admin dashboard in a real browser (issue 7 item 3): a real stack on loopback (server with
// both frontends, two agents over mTLS, kubelet-like endpoints), one live connection through the
// tunnel, dials that fail for different reasons, and an agent whose id is an XSS attempt. Debian's
// chromium, driven by playwright-core, must show all of it, refresh by itself and run no script
// from the data. Screenshots go to test/artifacts/ (git-ignored) and are checked as PNGs.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { dashboardRoutes } from "../src/dashboard/index.js";
import { startFakeKubelet, type FakeKubelet } from "../src/lab/index.js";
import { noIdentifiers } from "../src/protocol/index.js";
import { serverSnapshot, type NodetunnelServer, type ServerSnapshot } from "../src/server/index.js";
import type { Pki } from "../src/transport/index.js";
import { createChannelPair } from "../src/tunnel/index.js";
import { httpConnect } from "./helpers/connect-client.js";
import { startStack } from "./helpers/stack.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(import.meta.dirname, "artifacts");
const VIEWPORT = { width: 1280, height: 900 };
// Written into the page as text if escaping works; sets a global if it ever runs.
const XSS_ID = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`;

/** CONNECT through the HTTP CONNECT frontend; resolves with the status line and the open socket. */
async function connect(port: number, target: string): Promise<{ status: string; socket: net.Socket }> {
  const { socket, head, rest } = await httpConnect({ port }, target, 10_000);
  if (rest.length > 0) socket.unshift(rest);
  return { status: head.split("\r\n")[0] ?? "", socket };
}

/** Width and height from a PNG's IHDR chunk, after checking the signature. */
function pngSize(file: string): { width: number; height: number; bytes: number } {
  const png = readFileSync(file);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file} is not a PNG`);
  assert.equal(png.subarray(12, 16).toString("latin1"), "IHDR");
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20), bytes: png.length };
}

describe("admin dashboard in headless chromium", { skip: existsSync(CHROMIUM) ? false : `needs ${CHROMIUM} (CI installs Debian's chromium)` }, () => {
  const cleanups: Array<() => unknown> = [];
  let pki: Pki;
  let server: NodetunnelServer;
  let kubelets: FakeKubelet[];
  let connectPort = 0;
  let adminUrl = "";
  let live: tls.TLSSocket;
  let context: BrowserContext;
  let page: Page;

  before(async () => {
    const stack = await startStack({ after: (fn: () => unknown) => void cleanups.push(fn) }, {
      serverId: "dashboard-test",
      adminListen: { port: 0, host: "127.0.0.1" },
      proxyStrategies: ["destHost"],
      adminRoutes: (current) => dashboardRoutes(() => serverSnapshot(current().proxy)),
    });
    ({ pki, server, connectPort } = stack);
    kubelets = [];
    for (const [name, ip] of [["node-1", "127.0.1.1"], ["node-2", "127.0.1.2"]] as const) {
      const leaf = await pki.issue(name, { dns: [name], ips: [ip] });
      const k = await startFakeKubelet({ nodeName: name, cert: leaf.cert, key: leaf.key, host: ip, port: 0 });
      cleanups.push(() => k.close());
      kubelets.push(k);
    }
    adminUrl = `http://127.0.0.1:${server.addresses.adminPort}/`;
    for (const [name, ip] of [["node-1", "127.0.1.1"], ["node-2", "127.0.1.2"]] as const) {
      const client = await pki.issue(name, { client: true });
      await stack.startAgent(name, `host=${name}&ipv4=${ip}`, { tls: { ca: pki.ca, cert: client.cert, key: client.key, alpnProtocols: [] } });
    }
    // A third "agent" on an in-memory stream, with an id built to break out of the page's markup.
    // It never answers a DIAL_REQ, so a dial to stalled.node stays pending.
    const [serverSide, agentSide] = createChannelPair();
    agentSide.start({ packet: () => {}, drain: () => {}, close: () => {} });
    server.proxy.attachAgent(serverSide, { agentId: XSS_ID, identifiers: { ...noIdentifiers, host: ["<b>bold</b>", "stalled.node"] }, credit: false, peerAddress: "memory", authenticatedAs: "none" });
    cleanups.push(() => agentSide.destroy());

    // A live connection: CONNECT to node-1's kubelet, TLS inside the tunnel, an exec-like POST /echo
    // whose body stays open (an idle keep-alive socket would be closed by the kubelet after 5 s).
    const tunnel = await connect(connectPort, `127.0.1.1:${kubelets[0]!.port}`);
    assert.match(tunnel.status, /^HTTP\/1\.1 200/);
    live = tls.connect({ socket: tunnel.socket, ca: pki.ca, servername: "node-1" });
    cleanups.push(() => live.destroy());
    await new Promise<void>((resolve, reject) => live.once("secureConnect", resolve).once("error", reject));
    live.write("POST /echo HTTP/1.1\r\nHost: node-1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    await new Promise<void>((resolve) => live.once("data", () => resolve()));

    // A dial to a node without an agent, and one the agent cannot complete (nothing listens there).
    const noAgent = await connect(connectPort, "127.0.1.9:10250");
    noAgent.socket.destroy();
    assert.match(noAgent.status, /^HTTP\/1\.1 5\d\d/);
    const probe = net.createServer().listen(0, "127.0.1.2");
    await new Promise((r) => probe.once("listening", r));
    const closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const refused = await connect(connectPort, `127.0.1.2:${closedPort}`);
    refused.socket.destroy();
    assert.match(refused.status, /^HTTP\/1\.1 5\d\d/);

    const stalled = net.connect(connectPort, "127.0.0.1");
    cleanups.push(() => stalled.destroy());
    stalled.write("CONNECT stalled.node:10250 HTTP/1.1\r\nHost: stalled.node:10250\r\n\r\n");
    for (let i = 0; i < 50 && server.proxy.pendingDialCount === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.proxy.pendingDialCount, 1);

    mkdirSync(ARTIFACTS, { recursive: true });
    const profile = mkdtempSync(join(tmpdir(), "nt-dashboard-chromium-"));
    cleanups.push(() => rmSync(profile, { recursive: true, force: true }));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: VIEWPORT,
      deviceScaleFactor: 1,
    });
    cleanups.push(() => context.close());
    // Network safety: the browser may talk to the admin port on loopback and nothing else.
    await context.route("**/*", (route) => {
      const url = new URL(route.request().url());
      return url.protocol === "data:" || url.hostname === "127.0.0.1" ? route.continue() : route.abort();
    });
    page = context.pages()[0] ?? (await context.newPage());
  });

  after(async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // keep tearing down the rest
      }
    }
  });

  it("serves the snapshot as JSON with agents, the live connection and the diagnosed failures", async () => {
    const res = await fetch(`${adminUrl}api/snapshot`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const s = (await res.json()) as ServerSnapshot;
    assert.equal(s.serverId, "dashboard-test");
    assert.equal(s.serverCount, 1);
    assert.equal(s.isReady, true);
    assert.deepEqual(s.agents.map((a) => a.agentId).sort(), [XSS_ID, "node-1", "node-2"].sort());
    const n1 = s.agents.find((a) => a.agentId === "node-1")!;
    assert.equal(n1.connections, 1);
    assert.match(n1.authenticatedAs, /^mtls:node-1$/);
    assert.ok(n1.bytesToAgent > 0 && n1.bytesFromAgent > 0, "bytes counted both ways");
    assert.equal(s.connections.length, 1);
    assert.equal(s.connections[0]!.agentId, "node-1");
    assert.match(s.connections[0]!.connectID, /^\d+$/);
    const noAgent = s.recentFailures.find((f) => f.address === "127.0.1.9:10250");
    assert.ok(noAgent, "the no-agent dial is recorded");
    assert.equal(noAgent.reason, "no_agent");
    assert.match(noAgent.explanation, /no connected agent serves 127\.0\.1\.9/);
    const refused = s.recentFailures.find((f) => f.reason === "error_response");
    assert.ok(refused, "the refused dial is recorded");
    assert.equal(refused.agentId, "node-2");
    assert.match(refused.explanation, /refused the connection/);
    assert.equal(s.pendingDials.length, 1);
    assert.equal(s.pendingDials[0]!.address, "stalled.node:10250");
    assert.equal(s.pendingDials[0]!.agentId, XSS_ID);
    assert.equal(s.counts.pendingDials, 1);
    assert.equal(s.memory.isPaused, false);
    assert.ok(s.memory.limitBytes > 0);
  });

  it("refuses writes and leaves other admin paths to /metrics", async () => {
    const post = await fetch(`${adminUrl}api/snapshot`, { method: "POST" });
    assert.equal(post.status, 405);
    const metrics = await fetch(`${adminUrl}metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /konnectivity_network_proxy_server_ready_backend_connections 3/);
    const pageRes = await fetch(adminUrl);
    assert.match(pageRes.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  });

  it("shows agents, the live connection and the failed dials with their diagnosis, escaped", async () => {
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await page.goto(adminUrl);
    await page.waitForSelector("body[data-loaded=true]", { timeout: 10_000 });
    assert.equal(await page.textContent("#server-id"), "dashboard-test");
    assert.equal(await page.textContent("#readiness"), "ready");
    assert.equal(await page.textContent('[data-card="agents"] .value'), "3");
    assert.equal(await page.textContent('[data-card="connections"] .value'), "1");
    assert.equal(await page.textContent('[data-card="pending dials"] .value'), "1");
    assert.match(await page.locator("#pending-body").innerText(), /^stalled\.node:10250\s+<img src=x[^]*\d+ ms$/);

    const agents = await page.locator("#agents-body tr").allInnerTexts();
    assert.equal(agents.length, 3);
    const node1 = agents.find((r) => r.startsWith("node-1"))!;
    assert.match(node1, /host=node-1 ipv4=127\.0\.1\.1/);
    assert.match(node1, /mtls:node-1/);
    assert.match(node1, /serving/);
    assert.ok(agents.some((r) => r.startsWith("node-2")));
    // The attacker-chosen id is shown literally, and none of it became markup or ran.
    assert.ok(agents.some((r) => r.includes(XSS_ID)), "the XSS id is shown as text");
    assert.ok(agents.some((r) => r.includes("host=<b>bold</b>")));
    assert.equal(await page.locator("#agents-body img, #agents-body script, #agents-body b").count(), 0);
    assert.equal(await page.evaluate(() => typeof (globalThis as { __pwned?: unknown }).__pwned), "undefined");

    const snapshot = (await (await fetch(`${adminUrl}api/snapshot`)).json()) as ServerSnapshot;
    const connections = await page.locator("#connections-body tr").allInnerTexts();
    assert.equal(connections.length, 1);
    assert.match(connections[0]!, new RegExp(`^node-1\\s+${snapshot.connections[0]!.connectID}\\s`));

    const failures = await page.locator("#failures-body tr").allInnerTexts();
    const noAgent = failures.find((r) => r.includes("127.0.1.9:10250"));
    assert.ok(noAgent, `no-agent failure on the page: ${failures.join(" | ")}`);
    assert.match(noAgent, /no_agent/);
    assert.match(noAgent, /No agent available/);
    assert.match(noAgent, /no connected agent serves 127\.0\.1\.9/);
    assert.ok(failures.some((r) => /node-2/.test(r) && /refused the connection/.test(r)), "the agent's refused dial with its diagnosis");
    assert.match((await page.textContent("#updated")) ?? "", /^last updated \d\d:\d\d:\d\d$/);

    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png") });
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-full.png"), fullPage: true });
    await page.locator("#failures").screenshot({ path: join(ARTIFACTS, "dashboard-failures.png") });
    const shot = pngSize(join(ARTIFACTS, "dashboard.png"));
    assert.deepEqual({ width: shot.width, height: shot.height }, VIEWPORT);
    assert.ok(shot.bytes > 20_000, `a rendered page, not a blank one (${shot.bytes} bytes)`);
    const full = pngSize(join(ARTIFACTS, "dashboard-full.png"));
    assert.equal(full.width, VIEWPORT.width);
    assert.ok(full.height >= VIEWPORT.height);
    const table = pngSize(join(ARTIFACTS, "dashboard-failures.png"));
    assert.ok(table.width > 600 && table.height > 40, `failures table screenshot ${table.width}x${table.height}`);
    assert.deepEqual(errors, []);
  });

  it("refreshes by itself: a new failure and a closed connection show without a reload", async () => {
    const before = await page.textContent("#updated");
    const late = await connect(connectPort, "127.0.1.8:10250");
    late.socket.destroy();
    live.destroy();
    // Locators, not waitForFunction: the page's CSP (no eval) applies to the test's predicates too.
    await page.locator("#failures-body tr", { hasText: "127.0.1.8:10250" }).waitFor({ timeout: 6_000 });
    await page.locator('[data-card="connections"] .value', { hasText: /^0$/ }).waitFor({ timeout: 6_000 });
    assert.notEqual(await page.textContent("#updated"), before);
    assert.match((await page.locator("#connections-body").innerText()), /no live connection/);
  });

  it("says so when the server stops answering, and keeps the last data", async () => {
    server.destroy();
    await page.locator("#updated.stale").waitFor({ timeout: 6_000 });
    assert.match((await page.textContent("#updated")) ?? "", /^update failed at .*showing older data$/);
    assert.equal(await page.locator("#agents-body tr").count(), 3);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-stale.png") });
    assert.deepEqual(pngSize(join(ARTIFACTS, "dashboard-stale.png")).width, VIEWPORT.width);
  });
});
