// A gRPC server on node:http2 that routes by :path (DESIGN.md: framed by hand for the windows).
// TLS with ALPN "h2" (and optional required client certificates) on TCP; cleartext HTTP/2 with
// prior knowledge on a Unix socket, as kube-apiserver's egress selector dials it
// (konnectivity.md §1.7).
//
//   open ──close(deadline)──▶ closing (GOAWAY sent, listeners closed, calls finish) ──▶ closed
//     └──────destroy()───────────────┴──destroy() / deadline──▶ destroyed (GOAWAY, everything cut)
import { chmod } from "node:fs/promises";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import type { Logger } from "pino";
import { TunnelError } from "../protocol/tunnel-error.js";
import { checkCertificatePem } from "./certificate-pem.js";
import { GrpcStatus, percentEncodeGrpcMessage } from "./grpc-status.js";
import { keepReading } from "./keep-reading.js";
import { maxFrameBytes, maxSessionMemoryMiB, resolveGrpcServerOptions, type GrpcServerOptions, type ResolvedGrpcServerOptions, type TlsMaterial } from "./grpc-options.js";
import { ServerCall, type CallStream, type GrpcPeer, type GrpcServerCall } from "./grpc-server-call.js";
import { minMaxFrameBytes } from "./http2-frame.js";
import { HandshakeGuard } from "./handshake-guard.js";
import { Http2Session } from "./http2-session.js";
import { startKeepalive, type Keepalive, type KeepaliveOptions } from "./keepalive.js";
import { tlsCipherOrder } from "./tls-suites.js";
import { bindWithMode, removeStaleSocket } from "./unix-socket.js";
import { metadataFromHeaders } from "./metadata.js";

export type { GrpcServerOptions } from "./grpc-options.js";
export type GrpcHandler = (call: GrpcServerCall) => void;
/** `deleteExisting` (default true): remove a stale socket file at `path` first (upstream's --delete-existing-uds-file). */
export type GrpcListenTarget = { port: number; host?: string } | { path: string; mode?: number; deleteExisting?: boolean };

// node:http2's servers, or a plain net/tls server whose connections Http2Session serves
// (options.http2 "builtin").
type Http2AnyServer = http2.Http2Server | http2.Http2SecureServer | net.Server;
type AnySession = http2.ServerHttp2Session | Http2Session;
type IncomingHeaders = Record<string, string | string[] | undefined>;

// grpc-go's keepalive enforcement allows two bad pings, the third gets GOAWAY
// (internal/transport/http2_server.go, maxPingStrikes).
const maxPingStrikes = 2;

/** What the server keeps per session, in one object: a frontend holds a session per proxied connection. */
class SessionRecord {
  lastPingAt = 0;
  pingStrikes = 0;
  keepalive: Keepalive | undefined;
  /** Open streams and the timer that closes the session while it has none (streamlessSessionTimeoutMs). */
  openStreams = 0;
  streamlessTimer: NodeJS.Timeout | undefined;
  constructor(readonly peer: GrpcPeer) {}
}

// Listeners every session shares (`this` is the session), so a session costs no closures.
interface SessionListeners {
  ping(this: AnySession): void;
  error(this: AnySession, err: Error): void;
  close(this: AnySession): void;
  /** The builtin server's "stream" event. */
  stream(this: Http2Session, stream: CallStream, headers: IncomingHeaders, flags: number, rawHeaders: string[]): void;
}

export class GrpcServer {
  readonly #routes: ReadonlyMap<string, GrpcHandler>;
  #options: ResolvedGrpcServerOptions;
  readonly #log: Logger | undefined;
  readonly #servers = new Set<Http2AnyServer>();
  readonly #sessions = new Map<AnySession, SessionRecord>();
  readonly #calls = new Set<ServerCall>();
  readonly #sessionListeners: SessionListeners;
  readonly #keepaliveOptions: KeepaliveOptions<AnySession>;
  // Shared by every call and stream (`this` is the call): none of them costs a closure.
  readonly #forgetCall: (this: ServerCall) => void;
  readonly #logStreamError = (err: Error): void => this.#log?.debug({ err: err.message }, "stream error");
  readonly #socketPaths = new Map<Http2AnyServer, string>();
  readonly #removeListeners = new Map<Http2AnyServer, () => void>();
  #state: "open" | "closing" | "destroyed" = "open";
  #closed: Promise<void> | undefined;
  #onIdle: (() => void) | undefined;

  constructor(routes: Record<string, GrpcHandler>, options?: GrpcServerOptions) {
    this.#routes = new Map(Object.entries(routes));
    this.#options = resolveGrpcServerOptions(options);
    this.#log = this.#options.logger?.child({ subsystem: "grpc-server" });
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the listeners below get the session as `this`
    const server = this;
    this.#sessionListeners = {
      ping() {
        server.#onPing(this);
      },
      // A peer's protocol error is its problem (debug); our own failure inside the builtin HTTP/2
      // server, which cost the peer its connection, is ours (error).
      error(err) {
        if (err.message.startsWith("http2: internal error")) server.#log?.error({ err: err.message }, "HTTP/2 session failed on an internal error");
        else server.#log?.debug({ err: err.message }, "session error");
      },
      close() {
        server.#onSessionClose(this);
      },
      stream(stream, headers, _flags, rawHeaders) {
        server.#countStream(this, stream);
        server.#onStream(stream, headers, rawHeaders, server.#sessions.get(this)?.peer ?? peerOf(this.socket, server.#socketPaths));
      },
    };
    this.#keepaliveOptions = {
      timeMs: this.#options.keepaliveTimeMs,
      timeoutMs: this.#options.keepaliveTimeoutMs,
      onDead: (silentForMs, session) => {
        this.#log?.warn({ peer: this.#sessions.get(session)?.peer.address, silentForMs }, "keepalive: no PING ack, dropping session");
        session.destroy(new TunnelError("CLOSED", `keepalive: no PING ack within ${this.#options.keepaliveTimeoutMs} ms`));
      },
    };
    const calls = this.#calls;
    this.#forgetCall = function (this: ServerCall) {
      calls.delete(this);
    };
  }

  /**
   * The certificate, key and CA of TLS handshakes from now on (a rotated certificate, a new CA);
   * sessions already open keep theirs. Throws, changing nothing, when the material does not make
   * a TLS context (PEM that does not parse, a key that does not match its certificate).
   */
  setTlsMaterial(material: TlsMaterial): void {
    const current = this.#options.tls;
    if (current === undefined) throw new TunnelError("INVALID_OPTION", "this gRPC server listens without TLS");
    if ((material.ca === undefined) !== (current.ca === undefined)) {
      throw new TunnelError("INVALID_OPTION", "a client CA cannot be added or removed while the server runs");
    }
    checkCertificatePem("the certificate", material.cert);
    if (material.ca !== undefined) checkCertificatePem("the CA", material.ca);
    const next = { ...current, cert: material.cert, key: material.key, ca: material.ca };
    const options = tlsServerOptions(next, this.#options.tlsHandshakeTimeoutMs);
    tls.createSecureContext(options);
    for (const server of this.#servers) if (server instanceof tls.Server) server.setSecureContext(options);
    this.#options = { ...this.#options, tls: next };
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  async listen(target: GrpcListenTarget): Promise<{ port?: number; path?: string }> {
    if (this.#state !== "open") throw new TunnelError("CLOSED", "grpc server is closed");
    if ("path" in target && target.deleteExisting !== false) await removeStaleSocket(target.path);
    const server = this.#options.http2 === "builtin" ? this.#createBuiltinServer() : this.#createHttp2Server();
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once("error", onError);
      const done = () => {
        server.off("error", onError);
        resolve();
      };
      if ("path" in target) {
        const path = target.path;
        if (target.mode === undefined) server.listen(path, done);
        else bindWithMode(target.mode, () => server.listen(path, done));
      } else server.listen(target.port, target.host, done);
    }).catch((err: unknown) => {
      this.#forgetServer(server);
      throw err;
    });
    // Stays for the server's life: a late socket error must not become an uncaught exception.
    server.on("error", (err) => this.#log?.error({ err }, "listener error"));
    if ("path" in target) {
      this.#socketPaths.set(server, target.path);
      // Created with the mode already (bindWithMode); the chmod also covers a platform whose
      // bind ignores the umask.
      if (target.mode !== undefined) await chmod(target.path, target.mode);
      this.#log?.info({ path: target.path }, "listening on unix socket");
      return { path: target.path };
    }
    const { port } = server.address() as AddressInfo;
    this.#log?.info({ port, host: target.host, tls: this.#options.tls !== undefined }, "listening");
    return { port };
  }

  /** `deadlineMs` null: no deadline of its own, for a caller that ends what is left with destroy(). */
  close(deadlineMs: number | null = 30_000): Promise<void> {
    if (this.#closed) return this.#closed;
    if (this.#state === "destroyed") return (this.#closed = Promise.resolve());
    this.#state = "closing";
    this.#closed = new Promise<void>((resolve) => {
      const timer = deadlineMs === null ? undefined : setTimeout(() => {
        this.#log?.warn({ sessions: this.#sessions.size, calls: this.#calls.size }, "close deadline passed, destroying");
        this.destroy();
      }, deadlineMs);
      timer?.unref();
      this.#onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    // Node sends GOAWAY (NO_ERROR, last processed stream) and refuses newer streams; open
    // streams run to their end, then the session closes itself.
    for (const session of this.#sessions.keys()) session.close();
    for (const server of this.#servers) server.close(() => this.#forgetServer(server));
    this.#checkIdle();
    return this.#closed;
  }

  destroy(): void {
    if (this.#state === "destroyed") return;
    const wasClosing = this.#state === "closing";
    this.#state = "destroyed";
    const reason = new TunnelError("CLOSED", "grpc server destroyed");
    for (const call of this.#calls) call.abort(reason);
    // Http2Session.destroy() ends with a GOAWAY before the socket goes.
    for (const session of this.#sessions.keys()) session.destroy();
    if (!wasClosing) for (const server of this.#servers) server.close(() => this.#forgetServer(server));
    this.#checkIdle();
  }

  #createHttp2Server(): Http2AnyServer {
    const o = this.#options;
    const common: http2.ServerOptions = {
      settings: { initialWindowSize: o.streamWindowBytes, maxFrameSize: maxFrameBytes, enablePush: false },
      maxSessionMemory: maxSessionMemoryMiB(o),
    };
    const server: Http2AnyServer = o.tls
      ? http2.createSecureServer({ ...common, ...tlsServerOptions(o.tls, o.tlsHandshakeTimeoutMs), allowHTTP1: false })
      : http2.createServer(common);
    // Both server kinds share the http2 event API; one type for registering is enough.
    const events = server as http2.Http2Server;
    const onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders?: string[]) => {
      const session = stream.session as http2.ServerHttp2Session;
      this.#countStream(session, stream);
      this.#onStream(stream, headers, rawHeaders, this.#sessions.get(session)?.peer ?? peerOf(session.socket as tls.TLSSocket, this.#socketPaths));
    };
    // Small packets (dials, closes, credit, 1-byte echoes) must not wait for Nagle's algorithm.
    // On a TLS server "connection" carries the TCP socket before the handshake.
    events.on("connection", (socket: net.Socket) => socket.setNoDelay?.(true));
    const onSession = (session: http2.ServerHttp2Session) => this.#onSession(session);
    // Node passes the raw header list as a fourth argument (@types/node omits it): it keeps
    // repeated metadata keys apart.
    const onSessionError = (err: Error) => this.#log?.debug({ err: err.message }, "session error");
    events.on("session", onSession);
    events.on("stream", onStream as (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => void);
    events.on("sessionError", onSessionError);
    const detachGuard = o.tls ? new HandshakeGuard(o.maxPendingTlsHandshakes, this.#log).attach(server as http2.Http2SecureServer) : undefined;
    this.#removeListeners.set(server, () => {
      events.off("session", onSession);
      events.off("stream", onStream as (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => void);
      events.off("sessionError", onSessionError);
      detachGuard?.();
    });
    this.#servers.add(server);
    return server;
  }

  // A plain net or tls server; every accepted connection becomes an Http2Session.
  #createBuiltinServer(): net.Server {
    const o = this.#options;
    const sessionOptions = {
      streamWindowBytes: o.streamWindowBytes,
      sessionWindowBytes: o.sessionWindowBytes,
      // RFC 9113's default, not node's 64 KiB. grpc-go, kube-apiserver's client, writes 16 KiB
      // frames whatever it is allowed; a client sending 64 KiB frames cost the server 6.5–7.5 ms
      // of CPU per MB against 4.6–4.9 with 16 KiB frames, measured while the session still joined
      // frames that span socket reads (docs/benchmarks.md).
      maxFrameBytes: minMaxFrameBytes,
      maxConcurrentStreams: o.maxConcurrentStreams,
      maxHeaderListBytes: 64 * 1024,
      socketBufferBytes: o.socketBufferBytes,
    };
    const serve = (socket: net.Socket) => {
      const session = new Http2Session(socket, sessionOptions);
      session.on("stream", this.#sessionListeners.stream);
      this.#onSession(session);
    };
    const server = o.tls
      ? tls.createServer(tlsServerOptions(o.tls, o.tlsHandshakeTimeoutMs), (socket) => {
        // gRPC runs on h2 only; a client that negotiated nothing (or HTTP/1.1) is not ours.
        if (socket.alpnProtocol !== "h2") {
          this.#log?.info({ peer: socket.remoteAddress, alpn: socket.alpnProtocol }, "TLS client did not negotiate ALPN h2, closing");
          socket.destroy();
          return;
        }
        serve(socket);
      })
      : net.createServer(serve);
    server.on("connection", (socket: net.Socket) => socket.setNoDelay?.(true));
    const detachGuard = server instanceof tls.Server ? new HandshakeGuard(o.maxPendingTlsHandshakes, this.#log).attach(server) : undefined;
    this.#removeListeners.set(server, () => detachGuard?.());
    this.#servers.add(server);
    return server;
  }

  #forgetServer(server: Http2AnyServer): void {
    if (!this.#servers.delete(server)) return;
    this.#removeListeners.get(server)?.();
    this.#removeListeners.delete(server);
    // Node unlinks a Unix socket it bound when the server closes; nothing more to remove here.
    this.#socketPaths.delete(server);
    this.#checkIdle();
  }

  #checkIdle(): void {
    if (this.#state !== "open" && this.#sessions.size === 0 && this.#servers.size === 0) {
      const onIdle = this.#onIdle;
      this.#onIdle = undefined;
      onIdle?.();
    }
  }

  #onSession(session: AnySession): void {
    if (this.#state === "destroyed") {
      session.destroy();
      return;
    }
    const record = new SessionRecord(peerOf(session.socket as tls.TLSSocket, this.#socketPaths));
    this.#sessions.set(session, record);
    if (!(session instanceof Http2Session)) {
      try {
        session.setLocalWindowSize(this.#options.sessionWindowBytes);
      } catch (err) {
        this.#log?.debug({ err }, "could not widen the session window");
      }
    }
    record.keepalive = startKeepalive(session, this.#keepaliveOptions);
    this.#armStreamlessTimer(session, record);
    if (this.#options.readWhileWriting && !(session instanceof Http2Session)) keepReading(session);
    const listeners = this.#sessionListeners;
    session.on("ping", listeners.ping);
    session.on("error", listeners.error);
    // "close" comes once; on() spares the wrapper once() allocates (it adds up per connection).
    session.on("close", listeners.close);
    if (this.#state === "closing") session.close();
  }

  // Only with streamlessSessionTimeoutMs (the agent port): a closure per stream is fine there, one
  // stream per agent; frontends, with a session per proxied connection, skip all of this.
  #countStream(session: AnySession, stream: { on(event: "close", listener: () => void): unknown }): void {
    const record = this.#sessions.get(session);
    if (record === undefined || this.#options.streamlessSessionTimeoutMs === 0) return;
    record.openStreams++;
    clearTimeout(record.streamlessTimer);
    record.streamlessTimer = undefined;
    // "close" comes once per stream.
    stream.on("close", () => {
      record.openStreams--;
      this.#armStreamlessTimer(session, record);
    });
  }

  #armStreamlessTimer(session: AnySession, record: SessionRecord): void {
    const timeoutMs = this.#options.streamlessSessionTimeoutMs;
    if (timeoutMs === 0 || record.openStreams > 0 || session.destroyed || session.closed) return;
    clearTimeout(record.streamlessTimer);
    record.streamlessTimer = setTimeout(() => {
      if (record.openStreams > 0 || session.destroyed) return;
      this.#log?.debug({ peer: record.peer.address, timeoutMs }, "session without a stream: closing it");
      session.close();
      // close() waits for streams; there are none, but a peer that never answers the GOAWAY is not waited for.
      setTimeout(() => session.destroy(), 1000).unref();
    }, timeoutMs);
    record.streamlessTimer.unref();
  }

  #onSessionClose(session: AnySession): void {
    const record = this.#sessions.get(session);
    clearTimeout(record?.streamlessTimer);
    record?.keepalive?.stop();
    session.off("ping", this.#sessionListeners.ping);
    // "error" stays attached: a late socket error on a dead session must not become uncaught.
    this.#sessions.delete(session);
    this.#checkIdle();
  }

  // Enforces the client ping rate as grpc-go's keepalive EnforcementPolicy.MinTime does
  // (konnectivity.md §1.7: MinTime 30 s upstream): too-early pings are strikes; past
  // maxPingStrikes the client gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and is cut off.
  // Unlike grpc-go, sending DATA or HEADERS does not forgive the strikes, so a grpc-go or C-core
  // client's BDP pings during a download would count: the servers leave it off (0, the default).
  #onPing(session: AnySession): void {
    const minIntervalMs = this.#options.minClientPingIntervalMs;
    const record = this.#sessions.get(session);
    if (minIntervalMs <= 0 || record === undefined) return;
    const now = Date.now();
    const isTooEarly = record.lastPingAt !== 0 && now - record.lastPingAt < minIntervalMs;
    record.lastPingAt = now;
    if (!isTooEarly || ++record.pingStrikes <= maxPingStrikes) return;
    this.#log?.warn({ peer: record.peer.address }, "client pings too often: GOAWAY too_many_pings");
    if (session.destroyed || session.closed) return;
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from("too_many_pings"));
    session.close();
    // close() waits for open streams; a client that misbehaves does not get that courtesy.
    setTimeout(() => session.destroy(), 1000).unref();
  }

  #onStream(stream: CallStream, headers: IncomingHeaders, rawHeaders: string[] | undefined, peer: GrpcPeer): void {
    stream.on("error", this.#logStreamError);
    const method = headers[":method"];
    const path = String(headers[":path"] ?? "");
    const contentType = String(headers["content-type"] ?? "");
    if (method !== "POST" || !contentType.startsWith("application/grpc")) {
      // gRPC over HTTP/2: "servers SHOULD respond with HTTP status of 415".
      respondAndClose(stream, { ":status": 415, "content-type": "text/plain" });
      return;
    }
    if (this.#state !== "open") {
      respondTrailersOnly(stream, GrpcStatus.UNAVAILABLE, "server is shutting down");
      return;
    }
    const handler = this.#routes.get(path);
    if (!handler) {
      respondTrailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`);
      return;
    }
    // Metadata is built when a handler first reads it, from the raw list alone (the frontend's
    // handler never does, and a Map per call adds up over 10,000 calls).
    const metadata = rawHeaders ?? metadataFromHeaders(headers as http2.IncomingHttpHeaders);
    const call = new ServerCall(stream, path, metadata, peer, this.#options.maxMessageBytes);
    this.#calls.add(call);
    call.on("close", this.#forgetCall);
    try {
      handler(call);
    } catch (err) {
      this.#log?.error({ err, path }, "handler threw");
      call.end(GrpcStatus.INTERNAL, "handler failed");
    }
  }
}

/** The TLS side of either server kind: gRPC's ALPN, and client certificates as upstream asks them. */
function tlsServerOptions(t: NonNullable<ResolvedGrpcServerOptions["tls"]>, handshakeTimeoutMs: number): tls.TlsOptions {
  return {
    handshakeTimeout: handshakeTimeoutMs,
    cert: t.cert,
    key: t.key,
    ca: t.ca,
    requestCert: t.requestCert === true,
    // With a CA to verify against, a client certificate is required (RequireAndVerifyClientCert
    // upstream, konnectivity.md §1.7); without one, a certificate is only recorded.
    rejectUnauthorized: t.requestCert === true && t.ca !== undefined,
    minVersion: t.minVersion ?? "TLSv1.2",
    ciphers: t.ciphers ?? tlsCipherOrder,
    ALPNProtocols: ["h2"],
  };
}

function respondTrailersOnly(stream: CallStream, status: number, message: string): void {
  respondAndClose(stream, {
    ":status": 200, "content-type": "application/grpc", "grpc-status": String(status), "grpc-message": percentEncodeGrpcMessage(message),
  });
}

// Whatever the client sends is of no use now: without the RST_STREAM it could fill a whole
// stream window (8 MiB) that nobody reads, on each of its streams, before it authenticated.
function respondAndClose(stream: CallStream, headers: http2.OutgoingHttpHeaders): void {
  stream.respond(headers, { endStream: true });
  setImmediate(() => {
    if (!stream.destroyed && !stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
}

function peerOf(socket: tls.TLSSocket | net.Socket, socketPaths: ReadonlyMap<Http2AnyServer, string>): GrpcPeer {
  if (socket.remoteAddress === undefined) {
    // Accepted sockets know their net.Server, which is the http2 server we listened with.
    const server = (socket as unknown as { server?: Http2AnyServer }).server;
    return { address: `unix:${(server && socketPaths.get(server)) ?? ""}`, authorized: false };
  }
  if (!(socket instanceof tls.TLSSocket) || !socket.encrypted) return { address: socket.remoteAddress, port: socket.remotePort, authorized: false };
  const cert = socket.getPeerCertificate();
  const hasCert = cert !== null && Object.keys(cert).length > 0;
  return {
    address: socket.remoteAddress,
    port: socket.remotePort,
    authorized: socket.authorized === true,
    ...(hasCert ? { certificate: cert } : {}),
  };
}

