// The agent: one session per server, kept up with backoff (1 s, ×1.5, 10 % jitter, capped at
// 10 s, as upstream's --sync-interval/--sync-interval-cap), plus its health port.
//
// HA: every server must have a stream to every agent it may route to. Upstream agents are given
// one address (a load balancer) and keep dialing it until they hold `servercount` distinct
// server ids, closing duplicates. nodetunnel also takes a list of servers (or a DNS name with
// several addresses, resolved at each attempt): it keeps max(servers, servercount) slots, slot i
// dialing servers[i % n], and a slot that reaches a server already held closes it and retries.
// A server that sends a graceful GOAWAY (grpc-go's GracefulStop in a rolling update) gives up
// its slot at once: its stream keeps serving the connections it carries until it ends, and the
// slot connects a replacement meanwhile, so the new server can reach this node without waiting
// out the old one's shutdown; once that stream carries nothing, the agent ends it, so the old
// server's shutdown need not wait for it either.
//
//   running ──drain()──▶ draining (DRAIN on every stream, no new dials or streams) ──▶ stopped
//      └────────────────────────── destroy() ──────────────────────────────────────────┘
import http from "node:http";
import { lookup } from "node:dns/promises";
import { isIP, type AddressInfo } from "node:net";
import { createSecureContext } from "node:tls";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { TunnelError } from "../protocol/index.js";
import { checkCertificatePem, proxyFor } from "../transport/index.js";
import { MemoryBudget } from "../tunnel/index.js";
import { AgentMetrics } from "./agent-metrics.js";
import type { AgentOptions, ServerTarget } from "./agent-options.js";
import { AgentSession, type AgentTracers } from "./agent-session.js";
import { explainConnectError } from "./explain-connect-error.js";
import { connectToServer } from "./server-connection.js";

export interface AgentDeps {
  readonly log: Logger;
  readonly registry: Registry;
  /** Named debug tracers (NODETUNNEL_TRACE), made by the CLI. */
  readonly tracers?: AgentTracers;
  /** Random in [0, 1), injectable so backoff jitter can be tested. */
  readonly random?: () => number;
  /** Resolves a server name to all its addresses (node:dns by default; injectable for HA tests). */
  readonly lookup?: (host: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;
  /**
   * Counts the servers' valid Leases (upstream's --count-server-leases; the CLI lists them through
   * the Kubernetes API). Asked every `leaseCountIntervalMs` when the count source is not "header".
   */
  readonly countServerLeases?: () => Promise<number>;
}

interface Slot {
  readonly index: number;
  session: AgentSession | undefined;
  attempts: number;
  timer: NodeJS.Timeout | undefined;
  abort: AbortController | undefined;
  lastError: string | undefined;
  /** A connection attempt is under way (between its timer and its outcome). */
  isConnecting: boolean;
  /** Servers this slot reached that the agent already holds, in a row. */
  duplicates: number;
}

/**
 * Duplicates in a row, per server counted, retried at the first step before the slot backs off
 * (see tryConnectSlot). Behind one balanced address a slot looking for the last of N servers lands
 * on one it holds with chance (N−1)/N per try; 5·N such tries in a row happen by chance with
 * odds (1−1/N)^(5N) < e⁻⁵ (under 1 %), so the back-off and its warning mean a server that cannot
 * be reached, not an unlucky balancer.
 */
const DUPLICATES_PER_SERVER = 5;

export interface AgentStatus {
  readonly agentId: string;
  readonly state: "running" | "draining" | "stopped";
  /** `goingAway`: the server sent GOAWAY; its stream serves the connections it has until they end. */
  readonly servers: ReadonlyArray<{ serverId: string; connectedAt: number; connections: number; goingAway?: true }>;
  readonly knownServerCount: number;
  readonly lastErrors: readonly string[];
}

/**
 * The wait before reconnect attempt `attempt` (0-based): --sync-interval × 1.5^attempt, capped at
 * --sync-interval-cap, with ±10 % jitter (upstream's wait.Backoff shape). The jitter does not
 * compound: it is applied to the un-jittered step.
 */
export function backoffMs(attempt: number, o: { syncIntervalMs: number; syncIntervalCapMs: number }, random: () => number): number {
  const base = Math.min(o.syncIntervalMs * 1.5 ** attempt, o.syncIntervalCapMs);
  return Math.round(base * (1 + (random() * 2 - 1) * 0.1));
}

export class NodetunnelAgent {
  readonly metrics: AgentMetrics;
  private readonly slots: Slot[] = [];
  /** Streams of servers going away (GOAWAY): out of their slot, serving what they carry until they end. */
  private readonly retiring = new Set<AgentSession>();
  private readonly endedRetiring = new WeakSet<AgentSession>();
  private retiringTimer: NodeJS.Timeout | undefined;
  private readonly budget: MemoryBudget;
  private readonly log: Logger;
  private readonly random: () => number;
  /** What connections opened from now on use: the start's options, or those with rotated TLS material. */
  private connectOptions: AgentOptions;
  private state: "running" | "draining" | "stopped" = "running";
  /** The `servercount` header of the newest server connection. */
  private headerServerCount = 1;
  /** Valid server leases at the last successful count (0: none counted yet), as upstream's fallback count. */
  private leaseServerCount = 0;
  private leaseTimer: NodeJS.Timeout | undefined;
  private healthServer: http.Server | undefined;
  private adminServer: http.Server | undefined;
  private readyWaiters: Array<() => void> = [];

  constructor(readonly options: AgentOptions, private readonly deps: AgentDeps) {
    this.metrics = new AgentMetrics(deps.registry);
    this.budget = new MemoryBudget(options.flow.memoryBudgetBytes);
    this.log = deps.log.child({ component: "agent", agentId: options.agentId });
    this.random = deps.random ?? Math.random;
    this.connectOptions = options;
    this.budget.onChange((paused, used) =>
      paused
        ? this.log.warn({ usedBytes: used }, "memory budget exceeded: pausing reads from server streams")
        : this.log.info({ usedBytes: used }, "memory back under budget"),
    );
    this.budget.onShed((count, freedBytes) =>
      this.log.warn({ connections: count, freedBytes, limitBytes: this.budget.limitBytes }, "memory budget: closed connections whose destinations took nothing, so the server streams can be read again"));
  }

  /**
   * Rotated TLS material (--ca-cert, --agent-cert, --agent-key): connections opened from now on
   * (reconnects, more servers) use it; streams already open keep theirs. A file the agent started
   * without cannot be added, nor one it started with removed. Throws, changing nothing, when the
   * material does not make a TLS context.
   */
  updateTls(material: { readonly ca?: string | Buffer; readonly cert?: string | Buffer; readonly key?: string | Buffer }): void {
    // Without TLS options the agent still uses TLS, with the system's CAs and no certificate.
    const current = this.options.tls ?? { alpnProtocols: [] };
    for (const name of ["ca", "cert", "key"] as const) {
      if ((material[name] === undefined) !== (current[name] === undefined)) {
        throw new TunnelError("INVALID_OPTION", `the ${name === "ca" ? "CA" : name} cannot be added or removed while the agent runs`);
      }
    }
    if (material.cert !== undefined) checkCertificatePem("the certificate", material.cert);
    if (material.ca !== undefined) checkCertificatePem("the CA", material.ca);
    createSecureContext({ ca: material.ca, cert: material.cert, key: material.key });
    this.connectOptions = { ...this.options, tls: { ...current, ca: material.ca, cert: material.cert, key: material.key } };
  }

  static async start(options: AgentOptions, deps: AgentDeps): Promise<NodetunnelAgent> {
    const agent = new NodetunnelAgent(options, deps);
    try {
      await agent.listen();
    } catch (err) {
      // The health port may be listening when the admin port fails: close it, or the process stays.
      agent.destroy();
      throw err;
    }
    if (options.serverCountSource !== "header") {
      if (!deps.countServerLeases) throw new TunnelError("INVALID_OPTION", `server count source "${options.serverCountSource}" needs a way to count the servers' leases`);
      // Not awaited: a slow API server must not hold the first connection back. The slots the
      // count asks for are opened when it arrives.
      void agent.countLeases();
    }
    agent.ensureSlots();
    return agent;
  }

  /**
   * How many servers to hold (upstream's ServerCounter): the newest `servercount` header; or, when
   * leases are counted, their count (default) or the larger of the two (max). At least 1.
   */
  private get serverCount(): number {
    const source = this.options.serverCountSource;
    if (source === "header") return this.headerServerCount;
    if (source === "leases") return Math.max(1, this.leaseServerCount);
    return Math.max(1, this.headerServerCount, this.leaseServerCount);
  }

  /** One count of the servers' leases, then the next on its interval; a failure keeps the last count. */
  private async countLeases(): Promise<void> {
    if (this.state === "stopped") return;
    const before = this.serverCount;
    try {
      const n = await this.deps.countServerLeases!();
      // As upstream: no valid lease (a control plane starting, or a GC race) keeps the last count.
      if (n > 0) this.leaseServerCount = n;
      if (this.leaseCountFailing) this.log.info({ leases: n }, "counting the servers' leases again");
      this.leaseCountFailing = false;
    } catch (err) {
      if (!this.leaseCountFailing) {
        this.log.warn({ err: (err as Error).message, serverCount: this.serverCount }, "could not count the servers' leases; keeping the last count");
      }
      this.leaseCountFailing = true;
    }
    if (this.serverCount !== before) {
      this.log.info({ serverCount: this.serverCount, leases: this.leaseServerCount, header: this.headerServerCount }, "server count changed");
      this.metrics.setKnownServerCount(this.serverCount);
      this.ensureSlots();
    }
    // (The state may have changed while the count was awaited.)
    if ((this.state as string) !== "stopped") this.leaseTimer = setTimeout(() => void this.countLeases(), this.options.leaseCountIntervalMs).unref();
  }

  private leaseCountFailing = false;

  get isReady(): boolean {
    return this.sessions().length > 0;
  }

  get healthPort(): number | undefined {
    return (this.healthServer?.address() as AddressInfo | null)?.port;
  }

  get adminPort(): number | undefined {
    return (this.adminServer?.address() as AddressInfo | null)?.port;
  }

  /** Resolves when at least `count` servers are connected (or rejects after timeoutMs). */
  async waitForServers(count = 1, timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.sessions().length < count) {
      if (Date.now() > until) throw new TunnelError("DIAL_TIMEOUT", `agent ${this.options.agentId} reached ${this.sessions().length} of ${count} servers: ${this.status().lastErrors.join("; ")}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.readyWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  status(): AgentStatus {
    return {
      agentId: this.options.agentId,
      state: this.state,
      servers: this.allSessions().map((s) => ({
        serverId: s.serverId, connectedAt: s.connectedAt, connections: s.connectionCount, ...(this.retiring.has(s) ? { goingAway: true as const } : {}),
      })),
      knownServerCount: this.serverCount,
      lastErrors: this.slots.map((s) => s.lastError).filter((e): e is string => e !== undefined),
    };
  }

  /**
   * First SIGTERM: DRAIN to every server, no new dials or streams; resolves when existing
   * connections have finished or the drain deadline passed, then stops.
   */
  async drain(): Promise<void> {
    if (this.state !== "running") return;
    this.state = "draining";
    this.log.info({ deadlineMs: this.options.drainTimeoutMs }, "draining: servers will route new dials elsewhere");
    for (const slot of this.slots) {
      clearTimeout(slot.timer);
      slot.abort?.abort();
      slot.session?.drain();
    }
    for (const s of this.retiring) s.drain();
    const until = Date.now() + this.options.drainTimeoutMs;
    while (this.allSessions().some((s) => s.connectionCount > 0 || s.pendingDialCount > 0) && Date.now() < until && this.state === "draining") {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const s of this.allSessions()) s.end();
    this.destroy();
  }

  /** Second SIGTERM, or tests: stop now. Idempotent. */
  destroy(): void {
    if (this.state === "stopped") return;
    this.state = "stopped";
    clearTimeout(this.leaseTimer);
    for (const slot of this.slots) {
      clearTimeout(slot.timer);
      slot.abort?.abort();
      slot.session?.destroy(new TunnelError("CLOSED", "agent stopped"));
    }
    for (const s of this.retiring) s.destroy(new TunnelError("CLOSED", "agent stopped"));
    clearInterval(this.retiringTimer);
    this.healthServer?.close();
    this.healthServer?.closeAllConnections();
    this.adminServer?.close();
    this.adminServer?.closeAllConnections();
    this.metrics.setOpenServerConnections(0);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.destroy();
  }

  /** The streams in slots: the servers that can route new dials here. */
  private sessions(): AgentSession[] {
    return this.slots.map((s) => s.session).filter((s): s is AgentSession => s !== undefined && !s.isClosed);
  }

  /** Those and the streams of servers going away (a retiring stream leaves the set when it closes). */
  private allSessions(): AgentSession[] {
    return [...this.sessions(), ...this.retiring];
  }

  private ensureSlots(): void {
    const wanted = Math.max(this.options.servers.length, this.serverCount);
    while (this.slots.length < wanted) {
      const slot: Slot = { index: this.slots.length, session: undefined, attempts: 0, timer: undefined, abort: undefined, lastError: undefined, isConnecting: false, duplicates: 0 };
      this.slots.push(slot);
      this.schedule(slot, 0);
    }
  }

  private schedule(slot: Slot, delayMs: number): void {
    if (this.state !== "running") return;
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => void this.connectSlot(slot), delayMs);
    slot.timer.unref();
  }

  private retry(slot: Slot, reason: string): void {
    slot.lastError = reason;
    slot.duplicates = 0;
    this.schedule(slot, backoffMs(slot.attempts++, this.options, this.random));
  }

  private async connectSlot(slot: Slot): Promise<void> {
    slot.isConnecting = true;
    try {
      await this.tryConnectSlot(slot);
    } finally {
      slot.isConnecting = false;
    }
  }

  private async tryConnectSlot(slot: Slot): Promise<void> {
    if (this.state !== "running") return;
    // Slots beyond what the servers and the count need stay idle.
    if (slot.index >= Math.max(this.options.servers.length, this.serverCount)) return;
    const configured = this.options.servers[slot.index % this.options.servers.length]!;
    const abort = new AbortController();
    slot.abort = abort;
    let target: ServerTarget;
    try {
      // Through a proxy the name goes in the CONNECT: the proxy resolves it (the node may not).
      const proxy = proxyFor(this.options.proxy, configured.host, configured.port);
      target = proxy ? { ...configured, proxy } : await this.resolveTarget(configured, slot.index);
    } catch (err) {
      this.metrics.serverConnectionFailed();
      return this.retry(slot, `resolve ${configured.host}: ${(err as Error).message}`);
    }
    let conn;
    try {
      conn = await connectToServer(target, this.connectOptions, abort.signal, this.log.child({ server: `${target.host}:${target.port}` }));
    } catch (err) {
      if (this.state !== "running") return;
      this.metrics.serverConnectionFailed();
      const tls = this.connectOptions.tls;
      const explained = explainConnectError(err, {
        host: target.host, servername: tls?.servername ?? target.servername, caFile: tls?.caFile,
        hasToken: this.options.serviceAccountTokenPath !== undefined, hasClientCertificate: tls?.cert !== undefined,
      });
      // A local problem (the token file) is not the server's: said without "connect to".
      const message = explained.isLocal ? (err as Error).message : `connect to ${target.host}:${target.port}: ${(err as Error).message}`;
      if (slot.lastError !== message) this.log.warn({ server: `${target.host}:${target.port}` }, `${explained.message}; retrying with backoff`);
      return this.retry(slot, message);
    }
    if (this.state !== "running") {
      conn.close();
      return;
    }
    if (this.allSessions().some((s) => s.serverId === conn.serverId)) {
      // Reached a server this agent already holds (a load balancer sent us there): try again,
      // at the first step, as upstream's agent does below its server count. While a server is
      // going away the replacement may not exist yet (its pod starts after the old one leaves),
      // so back off: thousands of agents retrying every second through the balancer would be a
      // TLS handshake storm on the servers that stay. The first step comes back when the old
      // stream ends.
      // After 5 × the server count in a row (DUPLICATES_PER_SERVER) the slot backs off too (up to --sync-interval-cap): a server count
      // above the servers this agent can reach (the count raised before a new server is in every
      // agent's list, or one server listed twice) would otherwise cost a TLS handshake every
      // --sync-interval, forever, on the server it keeps reaching. Said once per run of them.
      conn.close();
      const message = `duplicate connection to server ${conn.serverId}`;
      if (this.retiring.size > 0) return this.retry(slot, message);
      slot.lastError = message;
      slot.duplicates++;
      const atFirstStep = DUPLICATES_PER_SERVER * Math.max(1, this.serverCount);
      if (slot.duplicates === atFirstStep) {
        this.log.warn(
          { server: `${target.host}:${target.port}`, serverId: conn.serverId, serverCount: this.serverCount, connectedServers: this.allSessions().length },
          `the server count is ${this.serverCount} but ${target.host}:${target.port} keeps reaching server ${conn.serverId}, which this agent already holds: retrying with backoff (is a server missing from --proxy-server-host, or listed twice?)`,
        );
      }
      this.schedule(slot, backoffMs(Math.max(0, slot.duplicates - atFirstStep + 1), this.options, this.random));
      return;
    }
    slot.duplicates = 0;
    slot.attempts = 0;
    slot.lastError = undefined;
    this.headerServerCount = conn.serverCount;
    this.metrics.setKnownServerCount(this.serverCount);
    const session = new AgentSession(conn.channel, {
      agentId: this.options.agentId,
      serverId: conn.serverId,
      credit: conn.credit,
      dialTimeoutMs: this.options.dialTimeoutMs,
      flow: this.options.flow,
      policy: this.options.policy,
      budget: this.budget,
      metrics: this.metrics,
      log: this.log.child({ serverId: conn.serverId }),
      tracers: this.deps.tracers,
    });
    slot.session = session;
    this.metrics.setOpenServerConnections(this.allSessions().length);
    this.log.info({ serverId: conn.serverId, server: `${target.host}:${target.port}`, serverCount: this.serverCount, credit: conn.credit, alpn: conn.alpnProtocol }, "connected to server");
    for (const w of this.readyWaiters.splice(0)) w();
    conn.onGoingAway(() => {
      if (slot.session !== session || this.state !== "running") return;
      slot.session = undefined;
      this.retiring.add(session);
      this.log.info({ serverId: conn.serverId, connections: session.connectionCount }, "server is going away (GOAWAY): connecting a replacement; its stream serves its connections until they end");
      this.schedule(slot, 0);
      this.endIdleRetiring();
    });
    session.onClosed((err) => {
      conn.close();
      const wasRetiring = this.retiring.delete(session);
      if (slot.session === session) slot.session = undefined;
      this.metrics.setOpenServerConnections(this.allSessions().length);
      if (wasRetiring) {
        this.endIdleRetiring();
        // No replacement yet (one server, restarting): its retries have backed off while it
        // drained, so start again from the first step, as a lost stream does.
        if (this.state === "running" && slot.session === undefined && !slot.isConnecting) {
          slot.attempts = 0;
          this.schedule(slot, backoffMs(0, this.options, this.random));
        }
        return;
      }
      if (this.state !== "running") return;
      this.log.warn({ serverId: conn.serverId, reason: err?.message }, "lost the server stream; reconnecting");
      this.retry(slot, `stream to ${conn.serverId} ended${err ? `: ${err.message}` : ""}`);
    });
    this.ensureSlots();
  }

  /** Ends the streams of going-away servers that carry nothing (checked every 500 ms while there are any). */
  private endIdleRetiring(): void {
    if (this.state === "stopped") {
      clearInterval(this.retiringTimer);
      this.retiringTimer = undefined;
      return;
    }
    for (const s of this.retiring) {
      if (s.connectionCount > 0 || s.pendingDialCount > 0 || this.endedRetiring.has(s)) continue;
      this.endedRetiring.add(s);
      s.end();
    }
    if (this.retiring.size === 0) {
      clearInterval(this.retiringTimer);
      this.retiringTimer = undefined;
    } else {
      this.retiringTimer ??= setInterval(() => this.endIdleRetiring(), 500).unref();
    }
  }

  /** A DNS name with several addresses spreads the slots over them (upstream #394). */
  private async resolveTarget(t: ServerTarget, slotIndex: number): Promise<ServerTarget> {
    if (isIP(t.host) !== 0 || this.options.servers.length > 1) return t;
    const all = await (this.deps.lookup ?? ((host: string) => lookup(host, { all: true })))(t.host);
    if (all.length <= 1) return t;
    const pick = all[slotIndex % all.length]!;
    return { host: pick.address, port: t.port, servername: t.host };
  }

  private async listen(): Promise<void> {
    const routes = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const url = new URL(req.url ?? "/", "http://agent");
      const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
        res.writeHead(status, { "Content-Type": type });
        res.end(body);
      };
      switch (url.pathname) {
        case "/healthz":
          return send(200, "ok");
        case "/readyz":
        case "/ready": {
          // Upstream's bytes (cmd/agent/app/server.go): a failure always lists every check;
          // success is "ok", or the list and "check passed" when ?verbose is asked for.
          const ready = this.isReady;
          const checks = `[+]ping ok\n${ready ? "[+]server-connected ok" : "[-]server-connected failed: no servers connected"}\n`;
          if (!ready) return send(503, checks);
          return send(200, url.searchParams.has("verbose") ? `${checks}check passed\n` : "ok");
        }
        case "/metrics":
          void this.deps.registry.metrics().then((body) => send(200, body, this.deps.registry.contentType));
          return;
        case "/status":
          return send(200, JSON.stringify(this.status(), null, 2), "application/json");
        default:
          return send(404, "not found");
      }
    };
    if (this.options.healthListen) this.healthServer = await listenHttp(this.options.healthListen, routes);
    if (this.options.adminListen) {
      this.adminServer = await listenHttp(this.options.adminListen, (req, res) => {
        if ((req.url ?? "").startsWith("/metrics") && this.healthServer) {
          // Upstream's admin port redirects /metrics to the health port.
          res.writeHead(301, { Location: metricsLocation(req, this.healthPort!) });
          res.end();
          return;
        }
        routes(req, res);
      });
    }
  }
}

/**
 * Where the admin port's /metrics redirect points: the health port on the host the client named,
 * as upstream does, but only when the Host header is a plain name or address. Anything else (a
 * path, userinfo, another scheme smuggled into Host) gets the address the request arrived on, so
 * the redirect cannot be made to point elsewhere.
 */
export function metricsLocation(req: Pick<http.IncomingMessage, "headers" | "socket">, healthPort: number): string {
  const named = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/.exec(req.headers.host ?? "");
  let host = named?.[1];
  if (host === undefined) {
    const local = req.socket.localAddress ?? "127.0.0.1";
    host = local.includes(":") ? `[${local}]` : local;
  }
  return `http://${host}:${healthPort}/metrics`;
}

async function listenHttp(target: { port: number; host?: string }, handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(target.port, target.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
