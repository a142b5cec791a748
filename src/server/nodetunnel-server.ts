// The proxy server with its listeners: the agent service (gRPC over TLS), the frontends (gRPC or
// HTTP CONNECT, on Unix sockets or TLS TCP), and the health and admin ports.
//
//   running ──close(deadline)──▶ draining (listeners closed, GOAWAY, no new dials) ──▶ closed
//      └──────────destroy()──────────────┴─────────── deadline ───────────────────────▶ destroyed
import http from "node:http";
import https from "node:https";
import { createSecureContext } from "node:tls";
import { chmod, unlink } from "node:fs/promises";
import type { AddressInfo, Server as NetServer } from "node:net";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import {
  FEATURE_CREDIT, MetadataName, TunnelError, goQueryError, parseAgentIdentifiers,
} from "../protocol/index.js";
import { GrpcServer, GrpcStatus, bindWithMode, checkCertificatePem, removeStaleSocket, type GrpcServerCall, type TlsMaterial } from "../transport/index.js";
import { GrpcPacketChannel, type CallEnds } from "../tunnel/index.js";
import {
  anonymousCredential, certificateCredential, checkIdentityClaims, isBindingEnforced, tokenCredential,
  type AgentCredential, type TokenReviewUser,
} from "./agent-auth/index.js";
import { serveGrpcFrontend } from "./grpc-frontend.js";
import { healthRoutes, text, type RouteHandler } from "./health-endpoints.js";
import { connectFrontendSecureContext, createHttpConnectFrontend } from "./http-connect-frontend.js";
import { ProxyServer, type ServerTracers } from "./proxy-server.js";
import { ServerMetrics } from "./server-metrics.js";
import { WarningBudget } from "./warning-budget.js";
import { isLoopback, type FrontendConfig, type ServerOptions } from "./server-options.js";

export interface ServerDeps {
  readonly log: Logger;
  readonly registry: Registry;
  /** Extra routes for the admin port (the dashboard), tried before /metrics. */
  readonly adminRoutes?: RouteHandler;
  /**
   * Checks an agent's bearer token; resolves to the authenticated user (its name, or the TokenReview
   * user whose bound node and pod feed identity binding), rejects when invalid.
   */
  readonly authenticateToken?: (token: string, signal?: AbortSignal) => Promise<string | TokenReviewUser>;
  /** NODETUNNEL_TRACE's loggers; off when absent. */
  readonly tracers?: ServerTracers;
}

export interface BoundFrontend {
  readonly mode: FrontendConfig["mode"];
  readonly path?: string;
  readonly port?: number;
}

export interface ServerAddresses {
  readonly agentPort: number;
  readonly frontends: readonly BoundFrontend[];
  readonly healthPort?: number;
  readonly adminPort?: number;
}

const UDS_MODE = 0o770; // upstream creates the socket under umask 0007
const AGENT_STREAMLESS_SESSION_TIMEOUT_MS = 30_000;
/** Agents send nothing before the server's response headers (konnectivity.md §1.3); grpc-go's window is 64 KiB. */
const MAX_BYTES_BEFORE_ACCEPT = 64 * 1024;

/** A server call's channel ends with trailers: OK, or UNAVAILABLE and the reason. */
const serverCallEnds: CallEnds<GrpcServerCall> = {
  finish: (call, status, message) => call.end(status, message),
  abort: (call, err) => call.end(GrpcStatus.UNAVAILABLE, err?.message ?? "closed"),
};

export class NodetunnelServer {
  readonly proxy: ProxyServer;
  readonly metrics: ServerMetrics;
  private readonly agentServer: GrpcServer;
  private readonly grpcFrontends: GrpcServer[] = [];
  /** The frontends that speak TLS (a TCP listener with --server-cert), which a rotation reaches. */
  private readonly tlsGrpcFrontends: GrpcServer[] = [];
  private readonly tlsConnectFrontends: https.Server[] = [];
  private readonly httpServers: NetServer[] = [];
  private readonly socketPaths: string[] = [];
  private state: "running" | "draining" | "closed" = "running";
  private bound: ServerAddresses | undefined;
  private readonly agentServiceLog: Logger;
  /** Refused Connects are logged at most 10 per 10 s each kind, the rest counted (a retry loop or a flood). */
  private readonly refusedAgents: WarningBudget;
  private readonly refusedClaims: WarningBudget;

  private constructor(readonly options: ServerOptions, private readonly deps: ServerDeps) {
    this.metrics = new ServerMetrics(deps.registry);
    this.agentServiceLog = deps.log.child({ component: "agent-service" });
    this.refusedAgents = new WarningBudget(this.agentServiceLog, "agent connection refused");
    this.refusedClaims = new WarningBudget(this.agentServiceLog, "agent claimed an identity its credential does not allow");
    const agentEndpoint = () => `${options.agentListen.host ?? "<this server>"}:${this.bound?.agentPort ?? options.agentListen.port}`;
    this.proxy = new ProxyServer(options, deps.log.child({ component: "server" }), this.metrics, agentEndpoint, deps.tracers);
    // Summed at scrape time: walking the connections per scrape is cheaper than per byte.
    this.metrics.observeQueuedBytes(() => {
      let bytes = 0;
      for (const agent of this.proxy.registry.all()) for (const c of agent.connections.values()) bytes += c.queuedBytes + c.bufferedBytes;
      return bytes;
    });
    this.agentServer = new GrpcServer(
      { "/AgentService/Connect": (call) => void this.acceptAgent(call) },
      {
        tls: options.agentTls
          ? { cert: options.agentTls.cert, key: options.agentTls.key, ca: options.agentTls.ca, requestCert: options.agentTls.ca !== undefined, ...options.tlsPolicy }
          : undefined,
        keepaliveTimeMs: options.keepaliveTimeMs,
        keepaliveTimeoutMs: options.keepaliveTimeoutMs,
        http2: options.agentHttp2,
        // An agent keeps its Connect stream open for its whole life; a TLS session without one for
        // this long (a peer that never authenticates, or whose Connect was refused) is closed.
        streamlessSessionTimeoutMs: AGENT_STREAMLESS_SESSION_TIMEOUT_MS,
        // One connection carries every tunnel of an agent (transport/http2-session.ts).
        socketBufferBytes: 128 * 1024,
        // With node:http2 (--agent-http2=node): agents are node:http2 too when they are nodetunnel,
        // see transport/keep-reading.ts. The builtin session always reads.
        readWhileWriting: true,
        logger: deps.log.child({ component: "agent-listener" }),
      },
    );
  }

  static async start(options: ServerOptions, deps: ServerDeps): Promise<NodetunnelServer> {
    const server = new NodetunnelServer(options, deps);
    try {
      await server.listen();
    } catch (err) {
      server.destroy();
      throw err;
    }
    return server;
  }

  get addresses(): ServerAddresses {
    if (!this.bound) throw new TunnelError("CLOSED", "server is not listening");
    return this.bound;
  }

  private async listen(): Promise<void> {
    const o = this.options;
    // The agent port carries the agents' tokens and every tunnelled byte; upstream's agents always use TLS.
    if (!o.agentTls && !isLoopback(o.agentListen.host) && !o.insecureAllowAnyAgent) {
      throw new TunnelError("INVALID_OPTION", "the agent port needs TLS unless it binds to loopback: give --cluster-cert and --cluster-key (upstream's agents always connect with TLS), or --agent-bind-address=127.0.0.1");
    }
    if (!o.agentTls) this.deps.log.warn("the agent port has no TLS: agents connect in cleartext (h2c); use --cluster-cert/--cluster-key outside tests");
    else if (!o.agentTls.ca && !o.tokenAuth) this.deps.log.warn("agents are not authenticated: any TLS client can register as any node (give --cluster-ca-cert, or token authentication)");
    const agent = await this.agentServer.listen({ port: o.agentListen.port, host: o.agentListen.host });
    const frontends: BoundFrontend[] = [];
    for (const f of o.frontends) frontends.push(await this.listenFrontend(f));
    const healthPort = o.healthListen ? await this.listenHttp(o.healthListen, healthRoutes(() => this.proxy.isReady, this.deps.registry)) : undefined;
    const adminRoutes = healthRoutes(() => this.proxy.isReady, this.deps.registry);
    const extra = this.deps.adminRoutes;
    const adminPort = o.adminListen
      ? await this.listenHttp(o.adminListen, (req, res) => (extra?.(req, res) ?? false) || adminRoutes(req, res))
      : undefined;
    this.bound = { agentPort: agent.port!, frontends, healthPort, adminPort };
    this.deps.log.info({ serverId: o.serverId, ...this.bound }, "server started");
  }

  /**
   * Rotated TLS material for the agent port (--cluster-cert, --cluster-key, --cluster-ca-cert) or
   * for every TLS frontend (--server-cert, --server-key, --server-ca-cert). Handshakes from now on
   * use it; connections already open keep theirs. Throws, changing nothing, when the material does
   * not make a TLS context.
   */
  reloadTls(listener: "agent" | "frontends", material: TlsMaterial): void {
    if (listener === "agent") {
      if (!this.options.agentTls) throw new TunnelError("INVALID_OPTION", "the agent port listens without TLS");
      this.agentServer.setTlsMaterial(material);
      return;
    }
    if (this.tlsGrpcFrontends.length + this.tlsConnectFrontends.length === 0) throw new TunnelError("INVALID_OPTION", "no frontend listens with TLS");
    const hadCa = this.options.frontends.some((f) => f.tls?.ca !== undefined);
    if ((material.ca !== undefined) !== hadCa) throw new TunnelError("INVALID_OPTION", "a client CA cannot be added or removed while the server runs");
    checkCertificatePem("the certificate", material.cert);
    if (material.ca !== undefined) checkCertificatePem("the CA", material.ca);
    const context = connectFrontendSecureContext(material, this.options.tlsPolicy);
    createSecureContext(context);
    for (const grpc of this.tlsGrpcFrontends) grpc.setTlsMaterial(material);
    for (const server of this.tlsConnectFrontends) server.setSecureContext(context);
  }

  private async listenFrontend(f: FrontendConfig): Promise<BoundFrontend> {
    const log = this.deps.log.child({ component: `frontend-${f.mode}` });
    // Stale socket files go first, in one place for both modes; one a process serves stops the start.
    if ("path" in f.listen && this.options.deleteExistingUdsFile) await removeStaleSocket(f.listen.path, f.flag ?? "--uds-name");
    if (f.mode === "grpc") {
      const grpc = new GrpcServer(
        {
          "/ProxyService/Proxy": (call) => {
            const channel = new GrpcPacketChannel(call, serverCallEnds);
            serveGrpcFrontend(channel, this.proxy, this.metrics, log);
          },
        },
        {
          tls: f.tls ? { cert: f.tls.cert, key: f.tls.key, ca: f.tls.ca, requestCert: f.tls.ca !== undefined, ...this.options.tlsPolicy } : undefined,
          keepaliveTimeMs: this.options.frontendKeepaliveTimeMs,
          http2: this.options.frontendHttp2,
          logger: log,
        },
      );
      this.grpcFrontends.push(grpc);
      if (f.tls) this.tlsGrpcFrontends.push(grpc);
      if ("path" in f.listen) {
        await grpc.listen({ path: f.listen.path, mode: f.listen.mode ?? UDS_MODE, deleteExisting: false });
        return { mode: f.mode, path: f.listen.path };
      }
      const bound = await grpc.listen({ port: f.listen.port, host: f.listen.host });
      return { mode: f.mode, port: bound.port };
    }
    const server = createHttpConnectFrontend(this.proxy, this.metrics, log, f.tls, this.options.tlsPolicy);
    this.httpServers.push(server);
    if (server instanceof https.Server) this.tlsConnectFrontends.push(server);
    if ("path" in f.listen) {
      const mode = f.listen.mode ?? UDS_MODE;
      await listenOn(server, f.listen.path, undefined, mode);
      this.socketPaths.push(f.listen.path);
      await chmod(f.listen.path, mode);
      return { mode: f.mode, path: f.listen.path };
    }
    await listenOn(server, f.listen.port, f.listen.host);
    return { mode: f.mode, port: (server.address() as AddressInfo).port };
  }

  private async listenHttp(target: { port: number; host?: string }, routes: RouteHandler): Promise<number> {
    const server = http.createServer((req, res) => {
      if (!routes(req, res)) text(res, 404, "not found");
    });
    this.httpServers.push(server);
    await listenOn(server, target.port, target.host);
    return (server.address() as AddressInfo).port;
  }

  private async acceptAgent(call: GrpcServerCall): Promise<void> {
    const log = this.agentServiceLog;
    const fail = (status: number, message: string) => {
      this.refusedAgents.warn({ peer: call.peer.address, reason: message });
      call.end(status, message);
    };
    if (this.state !== "running") return fail(GrpcStatus.UNAVAILABLE, "server is shutting down");
    // Until it is accepted the peer is nobody (a TokenReview can take seconds): hold at most this
    // of what it sends, not the 8 MiB stream window node:http2 would keep per stream.
    call.readAhead(MAX_BYTES_BEFORE_ACCEPT);
    const ids = call.metadata.get(MetadataName.agentId) ?? [];
    if (ids.length !== 1 || ids[0] === "") return fail(GrpcStatus.INVALID_ARGUMENT, `expected exactly one ${MetadataName.agentId} metadata value, got ${ids.length}`);
    const agentId = ids[0]!;
    const idValues = call.metadata.get(MetadataName.agentIdentifiers) ?? [];
    if (idValues.length > 1) return fail(GrpcStatus.INVALID_ARGUMENT, `expected at most one ${MetadataName.agentIdentifiers} metadata value, got ${idValues.length}`);
    // Upstream reads it with Go's url.ParseQuery and refuses the Connect where that fails.
    const queryError = goQueryError(idValues[0] ?? "");
    if (queryError !== null) return fail(GrpcStatus.INVALID_ARGUMENT, `fail to parse url encoded string: ${queryError} (${MetadataName.agentIdentifiers} ${JSON.stringify(idValues[0])})`);
    const identifiers = parseAgentIdentifiers(idValues[0] ?? "");
    let credential: AgentCredential = anonymousCredential;
    if (this.options.agentTls?.ca) {
      if (!call.peer.authorized) return fail(GrpcStatus.UNAUTHENTICATED, "a client certificate signed by --cluster-ca-cert is required");
      credential = certificateCredential(call.peer.certificate, this.options.identityMap);
    } else if (this.options.tokenAuth) {
      const auth = call.metadata.get(MetadataName.authorization) ?? [];
      if (auth.length !== 1 || !auth[0]!.startsWith("Bearer ")) return fail(GrpcStatus.UNAUTHENTICATED, "expected one authorization metadata value of the form 'Bearer <token>'");
      if (!this.deps.authenticateToken) return fail(GrpcStatus.UNAUTHENTICATED, "token authentication is configured but no token reviewer is available");
      try {
        credential = tokenCredential(await this.deps.authenticateToken(auth[0]!.slice("Bearer ".length), call.signal), this.options.identityMap);
      } catch (err) {
        if (call.signal.aborted) return;
        const message = err instanceof Error ? err.message : String(err);
        // Too many agents being authenticated at once: not a verdict on the token; the agent retries.
        if (err instanceof TunnelError && err.code === "LIMIT") return fail(GrpcStatus.UNAVAILABLE, `token not checked yet: ${message}`);
        const denied = err instanceof TunnelError && err.code === "PERMISSION_DENIED";
        return fail(denied ? GrpcStatus.PERMISSION_DENIED : GrpcStatus.UNAUTHENTICATED, `token rejected: ${message}`);
      }
      if (call.signal.aborted) return;
    }
    // Identity binding (docs/security.md): claims outside the credential are refused and logged.
    const refusal = checkIdentityClaims(this.options.identityBinding, credential, agentId, identifiers);
    if (refusal) {
      // One line per refusal: this one names the claim (fail() would log the same refusal again).
      this.refusedClaims.warn({ peer: call.peer.address, agentId, claim: refusal.claim, principal: credential.principal, reason: refusal.message });
      call.end(GrpcStatus.PERMISSION_DENIED, refusal.message);
      return;
    }
    const authenticatedAs = credential.principal;
    if (!isBindingEnforced(this.options.identityBinding, credential) && this.options.identityBinding !== "off") {
      log.debug({ agentId, principal: authenticatedAs }, "agent identity not bound: the credential names no addresses and has no --agent-identity-map entry (--identity-binding=strict binds it)");
    }
    const offered = (call.metadata.get(MetadataName.features) ?? []).join(",").split(",").map((s) => s.trim());
    const credit = this.options.creditFlowControl && offered.includes(FEATURE_CREDIT);
    const headers: Record<string, string> = {
      [MetadataName.serverId]: this.options.serverId,
      [MetadataName.serverCount]: String(this.options.serverCount),
    };
    if (credit) headers[MetadataName.features] = FEATURE_CREDIT;
    call.sendHeaders(headers);
    const channel = new GrpcPacketChannel(call, serverCallEnds, { windowUpdates: credit });
    this.proxy.attachAgent(channel, { agentId, identifiers, credit, peerAddress: call.peer.address, authenticatedAs });
  }

  /**
   * Graceful shutdown: stop accepting, GOAWAY to agents and frontends, let connections finish
   * within the deadline, then destroy what is left. Idempotent.
   *
   * The agent port closes first, as grpc-go's GracefulStop: its listener goes and every agent
   * gets GOAWAY while its stream carries on. nodetunnel agents take that as "connect a
   * replacement now" and end the old stream once it carries nothing, so the server that replaces
   * this one reaches them at once instead of after this one's deadline.
   */
  async close(deadlineMs = this.options.gracefulShutdownTimeoutMs): Promise<void> {
    if (this.state !== "running") return;
    this.state = "draining";
    this.proxy.close();
    for (const s of this.httpServers) s.close();
    const until = Date.now() + deadlineMs;
    // With no time to drain (--graceful-shutdown-timeout=0s, the default) what is left is cut at
    // once, which is what was asked for: the gRPC servers get no deadline of their own, whose
    // passing they would log as a warning, and are destroyed below.
    const isImmediate = deadlineMs === 0;
    const grpcDeadlineMs = isImmediate ? null : deadlineMs;
    const agentsGone = this.agentServer.close(grpcDeadlineMs);
    const frontendsGone = Promise.all(this.grpcFrontends.map((g) => g.close(grpcDeadlineMs)));
    if (!isImmediate) await frontendsGone;
    // Dials accepted before the shutdown may still complete and carry their connection; neither
    // kind is cut before the deadline.
    while ((this.proxy.establishedCount > 0 || this.proxy.pendingDialCount > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    // GOAWAY only stops new streams: upstream's agents keep their Connect stream open, so waiting
    // for them to hang up would always run to the deadline. End each stream (UNAVAILABLE, as a
    // grpc-go server stopping) so agents reconnect elsewhere now.
    for (const agent of this.proxy.registry.all()) agent.channel.end(GrpcStatus.UNAVAILABLE, "server is shutting down");
    if (isImmediate) {
      this.deps.log.info({ agents: this.proxy.registry.agentCount, connections: this.proxy.establishedCount }, "no graceful shutdown time (--graceful-shutdown-timeout=0s): closing what is left now");
      this.destroy();
      await Promise.all([agentsGone, frontendsGone]);
      return;
    }
    await agentsGone;
    this.destroy();
  }

  /** Fails everything now. Idempotent. */
  destroy(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.proxy.destroy();
    this.agentServer.destroy();
    for (const g of this.grpcFrontends) g.destroy();
    for (const s of this.httpServers) {
      s.close();
      (s as http.Server).closeAllConnections?.();
    }
    for (const p of this.socketPaths) void unlink(p).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.destroy();
  }
}

/** `socketMode`: a Unix socket is created with this mode (bindWithMode), never wider. */
async function listenOn(server: NetServer, portOrPath: number | string, host?: string, socketMode = UDS_MODE): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    const done = () => {
      server.off("error", reject);
      resolve();
    };
    if (typeof portOrPath === "string") bindWithMode(socketMode, () => server.listen(portOrPath, done));
    else server.listen(portOrPath, host, done);
  });
}

