// A real nodetunnel stack for conformance tests: the server with its listeners (HTTP CONNECT on
// loopback TCP, on a Unix socket and over mTLS; the gRPC frontend on a Unix socket; the agent
// port over TLS; the health port), real agents, and destinations that count their sockets.
// Everything is registered with the test's `after` so it goes away also when a test fails.
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { pino } from "pino";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions, type AgentOptionsInput } from "../../src/agent/index.js";
import { NodetunnelServer, resolveServerOptions, type FrontendConfig, type RouteHandler, type ServerOptionsInput } from "../../src/server/index.js";
import { createPki, type Pki } from "../../src/transport/index.js";
import { waitFor } from "./wait.js";

export const silentLog = pino({ level: process.env.NT_TEST_LOG ?? "silent" });

let pkiPromise: Promise<Pki> | undefined;
/** One CA per test process: key generation is the slow part. */
export const sharedPki = (): Promise<Pki> => (pkiPromise ??= createPki());

type Hooks = Pick<TestContext, "after">;

/**
 * Teardown for resources shared by a describe block: pass it where a TestContext is expected
 * and register `after(() => cleanup.run())` once. Runs in reverse order, also after a failure.
 */
export class Cleanup implements Hooks {
  private readonly fns: Array<() => unknown> = [];

  after(fn: () => unknown): void {
    this.fns.push(fn);
  }

  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // teardown goes on: one failing hook must not leak the rest
      }
    }
  }
}

export function tempDir(t: Hooks, prefix = "nt-conf-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface StackOptions extends Omit<ServerOptionsInput, "frontends"> {
  /** Also serve HTTP CONNECT over mTLS on loopback TCP. */
  readonly connectTls?: boolean;
  /** Extra routes on the admin port (the dashboard), given the server they serve. */
  readonly adminRoutes?: (server: () => NodetunnelServer) => RouteHandler;
}

export interface Stack {
  readonly pki: Pki;
  readonly dir: string;
  readonly server: NodetunnelServer;
  /** HTTP CONNECT, cleartext on 127.0.0.1. */
  readonly connectPort: number;
  /** HTTP CONNECT on a Unix socket. */
  readonly connectPath: string;
  /** HTTP CONNECT over mTLS on 127.0.0.1 (when asked for). */
  readonly connectTlsPort: number | undefined;
  /** The gRPC frontend (/ProxyService/Proxy) on a Unix socket. */
  readonly grpcPath: string;
  readonly agentPort: number;
  readonly healthPort: number;
  /** Starts a real agent against this server and waits until it is registered. */
  startAgent(agentId: string, identifiers: string, extra?: Partial<AgentOptionsInput>): Promise<NodetunnelAgent>;
  /** The server's tables are empty again (run after each scenario). */
  settled(timeoutMs?: number): Promise<void>;
}

export async function startStack(t: Hooks, options: StackOptions = {}): Promise<Stack> {
  const pki = await sharedPki();
  const dir = tempDir(t);
  const connectPath = join(dir, "connect.sock");
  const grpcPath = join(dir, "grpc.sock");
  const { connectTls, adminRoutes, ...serverInput } = options;
  const frontends: FrontendConfig[] = [
    { mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } },
    { mode: "http-connect", listen: { path: connectPath } },
    { mode: "grpc", listen: { path: grpcPath } },
  ];
  if (connectTls) {
    frontends.push({ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" }, tls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca } });
  }
  const server: NodetunnelServer = await NodetunnelServer.start(
    resolveServerOptions({
      serverId: "conformance-server",
      proxyStrategies: ["destHost", "default"],
      agentListen: { port: 0, host: "127.0.0.1" },
      agentTls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca },
      healthListen: { port: 0, host: "127.0.0.1" },
      ...serverInput,
      frontends,
    }),
    { log: silentLog, registry: new Registry(), adminRoutes: adminRoutes?.(() => server) },
  );
  t.after(() => server.destroy());
  const a = server.addresses;
  const agents: NodetunnelAgent[] = [];
  t.after(() => {
    for (const agent of agents) agent.destroy();
  });
  return {
    pki,
    dir,
    server,
    connectPort: a.frontends[0]!.port!,
    connectPath,
    connectTlsPort: connectTls ? a.frontends[3]!.port : undefined,
    grpcPath,
    agentPort: a.agentPort,
    healthPort: a.healthPort!,
    async startAgent(agentId, identifiers, extra = {}) {
      const agent = await NodetunnelAgent.start(
        resolveAgentOptions({
          agentId,
          identifiers,
          proxyServerHost: "127.0.0.1",
          proxyServerPort: a.agentPort,
          tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] },
          ...extra,
        }),
        { log: silentLog, registry: new Registry() },
      );
      agents.push(agent);
      await agent.waitForServers(1, 5000);
      await waitFor(() => server.proxy.registry.streamsOf(agentId).length > 0, `agent ${agentId} registered`);
      return agent;
    },
    async settled(timeoutMs = 3000) {
      await waitFor(
        () => server.proxy.pendingDialCount === 0 && server.proxy.establishedCount === 0,
        `no pending dial and no established connection (pending ${server.proxy.pendingDialCount}, established ${server.proxy.establishedCount})`,
        timeoutMs,
      );
    },
  };
}

export interface Destination {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  /** Sockets accepted so far. */
  readonly accepted: number;
  /** Sockets accepted and not yet closed. */
  readonly open: number;
  /** The accepted sockets, oldest first. */
  readonly sockets: readonly net.Socket[];
}

/**
 * A TCP destination on loopback that counts its sockets. By default it echoes; `banner` is
 * written on accept (a server that speaks first, like SSH or SMTP).
 */
export async function startDestination(t: Hooks, o: { host?: string; banner?: string; echo?: boolean } = {}): Promise<Destination> {
  const sockets: net.Socket[] = [];
  let open = 0;
  const server = net.createServer((s) => {
    sockets.push(s);
    open++;
    s.once("close", () => open--);
    s.on("error", () => {});
    if (o.banner !== undefined) s.write(o.banner);
    if (o.echo !== false) s.pipe(s);
  });
  const host = o.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  t.after(() => {
    server.close();
    for (const s of sockets) s.destroy();
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host,
    port,
    address: `${host}:${port}`,
    get accepted() {
      return sockets.length;
    },
    get open() {
      return open;
    },
    sockets,
  };
}

/**
 * One of our agents, connected over mTLS (the shared PKI's client pair) to another
 * implementation's server on loopback `port` (a Python or Go peer); destroyed after the test.
 */
export async function startAgentAgainst(t: Hooks, port: number, o: Partial<AgentOptionsInput> & { agentId: string }): Promise<NodetunnelAgent> {
  const pki = await sharedPki();
  const agent = await NodetunnelAgent.start(resolveAgentOptions({
    proxyServerHost: "127.0.0.1",
    proxyServerPort: port,
    tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [], servername: "localhost" },
    ...o,
  }), { log: silentLog, registry: new Registry() });
  t.after(() => agent.destroy());
  return agent;
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(host = "127.0.0.1"): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, host, () => resolve()));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
