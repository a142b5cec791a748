// A gRPC client session: TLS with ALPN (extra protocols offered before "h2", as the upstream
// agent's --alpn-proto does, konnectivity.md §1.7) and optional client certificate, or cleartext
// HTTP/2 with prior knowledge on a Unix socket. It runs on node:http2 or on the client side of
// our own HTTP/2 session (http2-session.ts, options.http2 "builtin"); calls are the same either way.
import { EventEmitter } from "node:events";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import type { Logger } from "pino";
import { TunnelError } from "../protocol/tunnel-error.js";
import { ClientCall, type ClientStream, type GrpcClientCall } from "./grpc-client-call.js";
import { connectThroughProxy } from "./http-proxy.js";
import { Http2Session } from "./http2-session.js";
import { keepReading } from "./keep-reading.js";
import { maxFrameBytes, maxSessionMemoryMiB, resolveGrpcClientOptions, type GrpcClientOptions, type ResolvedGrpcClientOptions } from "./grpc-options.js";
import { startKeepalive, type Keepalive } from "./keepalive.js";
import { tlsCipherOrder } from "./tls-suites.js";
import { metadataToHeaders, type MetadataInit } from "./metadata.js";

export type { GrpcClientOptions } from "./grpc-options.js";

export interface GrpcClientTlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  servername?: string;
  /** Offered before "h2", to share a port with other TLS services. */
  alpn?: string[];
}
/** `proxy`: reach host:port through this HTTP CONNECT proxy (http-proxy.ts), TLS end to end. */
export type GrpcClientTarget = { host: string; port: number; tls: GrpcClientTlsOptions; proxy?: URL } | { path: string };

const userAgent = "nodetunnel-grpc/0.1";

type AnyClientSession = http2.ClientHttp2Session | Http2Session;

// Response headers and trailers are a handful of fields; a server sending more is broken.
const maxResponseHeaderListBytes = 64 * 1024;

export class GrpcClient extends EventEmitter {
  readonly #session: AnyClientSession;
  readonly #options: ResolvedGrpcClientOptions;
  readonly #log: Logger | undefined;
  readonly #keepalive: Keepalive;
  readonly #target: RequestTarget;
  #isClosed = false;

  static async connect(target: GrpcClientTarget, options?: GrpcClientOptions): Promise<GrpcClient> {
    const o = resolveGrpcClientOptions(options);
    if (o.signal?.aborted) throw new TunnelError("CANCELLED", "grpc connect aborted", { cause: o.signal.reason });
    const startedAt = Date.now();
    const tunnel = "proxy" in target && target.proxy
      ? await connectThroughProxy(target.proxy, target.host, target.port, { timeoutMs: o.connectTimeoutMs, signal: o.signal, userAgent })
      : undefined;
    // One connect timeout for the proxy's tunnel and the TLS handshake together, as grpc-go's deadline.
    const ready = tunnel ? { ...o, connectTimeoutMs: Math.max(1, o.connectTimeoutMs - (Date.now() - startedAt)) } : o;
    if (o.http2 === "builtin") {
      const socket = openSocket(target, tunnel);
      await whenReady(socket, socket instanceof tls.TLSSocket ? "secureConnect" : "connect", ready, () => socket.destroy());
      if (socket instanceof tls.TLSSocket) checkAlpn(socket.alpnProtocol, () => socket.destroy());
      const session = new Http2Session(socket, {
        role: "client",
        streamWindowBytes: o.streamWindowBytes,
        sessionWindowBytes: o.sessionWindowBytes,
        maxFrameBytes,
        maxConcurrentStreams: 0, // a client announces none: it accepts no pushes
        maxHeaderListBytes: maxResponseHeaderListBytes,
        // A client connection carries a whole agent link (Http2SessionOptions.socketBufferBytes).
        socketBufferBytes: 128 * 1024,
      });
      return new GrpcClient(session, o, requestTarget(target));
    }
    const session = openNodeSession(target, o, tunnel);
    await whenReady(session, "connect", ready, () => session.destroy());
    if (!("path" in target)) checkAlpn(session.alpnProtocol, () => session.destroy());
    return new GrpcClient(session, o, requestTarget(target));
  }

  private constructor(session: AnyClientSession, options: ResolvedGrpcClientOptions, target: RequestTarget) {
    super();
    this.#session = session;
    this.#target = target;
    this.#options = options;
    this.#log = options.logger?.child({ subsystem: "grpc-client" });
    if (!(session instanceof Http2Session)) {
      try {
        session.setLocalWindowSize(options.sessionWindowBytes);
      } catch (err) {
        this.#log?.debug({ err }, "could not widen the session window");
      }
      // Clients are few (an agent's links to its servers): all of them keep reading while they
      // write, so a nodetunnel server and agent cannot deadlock (keep-reading.ts). The builtin
      // session always reads.
      keepReading(session);
    }
    this.#keepalive = startKeepalive(session, {
      timeMs: options.keepaliveTimeMs,
      timeoutMs: options.keepaliveTimeoutMs,
      onDead: (silentForMs) => {
        this.#log?.warn({ silentForMs }, "keepalive: no PING ack, dropping session");
        this.destroy(new TunnelError("CLOSED", `keepalive: no PING ack within ${options.keepaliveTimeoutMs} ms`));
      },
    });
    // A GOAWAY with an error code (e.g. ENHANCE_YOUR_CALM "too_many_pings") destroys the session
    // with an error (node:http2 and the builtin session alike); "close" carries it.
    let closeError: Error | undefined;
    const onError = (err: Error) => {
      closeError ??= err;
      this.#log?.debug({ err: err.message }, "session error");
    };
    const onGoaway = (errorCode: number, lastStreamID: number, opaqueData?: Buffer) => {
      this.#log?.info({ errorCode, lastStreamID, debug: opaqueData?.toString("latin1") }, "GOAWAY received");
      this.emit("goaway", errorCode, lastStreamID, opaqueData);
    };
    const onClose = (reason?: Error) => {
      this.#isClosed = true;
      this.#keepalive.stop();
      session.off("goaway", onGoaway);
      // "error" stays attached: node may still report a late socket error on a closed session.
      this.emit("close", closeError ?? reason);
    };
    session.on("error", onError);
    session.on("goaway", onGoaway);
    session.once("close", onClose);
  }

  get alpnProtocol(): string | undefined {
    if (!(this.#session instanceof Http2Session)) return this.#session.alpnProtocol;
    const socket = this.#session.socket;
    return socket instanceof tls.TLSSocket ? socket.alpnProtocol || undefined : "h2c";
  }

  /** True once the session is closing or gone: open a new client. */
  get isClosed(): boolean {
    return this.#isClosed || this.#session.closed || this.#session.destroyed;
  }

  openStream(path: string, metadata?: MetadataInit): GrpcClientCall {
    // Bad metadata is the caller's mistake and throws; a session that cannot open a stream gives
    // a call that ends UNAVAILABLE, as grpc-go does.
    const headers = {
      ...metadataToHeaders(metadata),
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "user-agent": userAgent,
    };
    let stream: ClientStream | Error;
    try {
      // node:http2 adds :scheme and :authority itself; RFC 9113 §8.3.1 requires them (nghttp2 resets a request without :scheme).
      stream = this.#session instanceof Http2Session
        ? this.#session.request({ ":scheme": this.#target.scheme, ":authority": this.#target.authority, ...headers })
        : this.#session.request(headers, { endStream: false });
    } catch (err) {
      stream = err as Error;
    }
    return new ClientCall(stream, this.#options.maxMessageBytes);
  }

  /** Graceful: no new streams, open ones run to their end (GOAWAY), then the session closes. */
  close(): void {
    if (this.#session.closed || this.#session.destroyed) return;
    this.#session.close();
  }

  destroy(err?: Error): void {
    if (this.#session.destroyed) return;
    this.#session.destroy(err);
  }
}

interface RequestTarget {
  readonly scheme: "http" | "https";
  readonly authority: string;
}

// As node:http2 derives them from the URL it connects to (openNodeSession).
function requestTarget(target: GrpcClientTarget): RequestTarget {
  if ("path" in target) return { scheme: "http", authority: "localhost" };
  return { scheme: "https", authority: `${net.isIPv6(target.host) ? `[${target.host}]` : target.host}:${target.port}` };
}

/**
 * The socket for a target: TLS with our ALPN list ("h2" last), over `tunnel` when a proxy opened
 * one, or a Unix socket for h2c.
 */
function openSocket(target: GrpcClientTarget, tunnel?: net.Socket): net.Socket {
  if ("path" in target) return net.connect({ path: target.path });
  const { host, port } = target;
  return tls.connect({
    // With a tunnel, `host` still names the server: Node checks the certificate against it, not
    // against the proxy the socket was opened to.
    ...(tunnel ? { socket: tunnel, host } : { host, port }),
    ca: target.tls.ca,
    cert: target.tls.cert,
    key: target.tls.key,
    // SNI carries names only (RFC 6066 §3); for an IP the certificate is checked against it anyway.
    servername: target.tls.servername ?? (net.isIP(host) ? undefined : host),
    ALPNProtocols: [...(target.tls.alpn ?? []), "h2"],
    minVersion: "TLSv1.2",
    ciphers: tlsCipherOrder,
  }).setNoDelay(true); // small packets (dials, closes, credit) must not wait for Nagle's algorithm
}

function openNodeSession(target: GrpcClientTarget, o: ResolvedGrpcClientOptions, tunnel?: net.Socket): http2.ClientHttp2Session {
  const common: http2.ClientSessionOptions = {
    settings: { initialWindowSize: o.streamWindowBytes, maxFrameSize: maxFrameBytes, enablePush: false },
    maxSessionMemory: maxSessionMemoryMiB(o),
  };
  // h2c with prior knowledge: the authority is only a name here, as grpc-go uses "localhost".
  if ("path" in target) return http2.connect("http://localhost", { ...common, createConnection: () => openSocket(target) });
  const authorityHost = net.isIPv6(target.host) ? `[${target.host}]` : target.host;
  // node's http2.connect forces ALPN ["h2"]; our own socket lets us offer more, h2 last.
  return http2.connect(`https://${authorityHost}:${target.port}`, { ...common, createConnection: () => openSocket(target, tunnel) });
}

/** Waits for `event` (connected), failing on error, close, the connect timeout or the abort signal. */
async function whenReady(emitter: EventEmitter, event: string, o: ResolvedGrpcClientOptions, destroy: () => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      fail(Object.assign(new Error(`grpc connect timed out after ${o.connectTimeoutMs} ms`), { code: "ETIMEDOUT" }));
    }, o.connectTimeoutMs);
    const onAbort = () => fail(new TunnelError("CANCELLED", "grpc connect aborted", { cause: o.signal?.reason }));
    const onClose = () => fail(new TunnelError("CLOSED", "grpc session closed while connecting"));
    const cleanup = () => {
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      emitter.off(event, onReady);
      emitter.off("error", fail);
      emitter.off("close", onClose);
    };
    function fail(err: Error) {
      cleanup();
      destroy();
      reject(err);
    }
    function onReady() {
      cleanup();
      resolve();
    }
    o.signal?.addEventListener("abort", onAbort, { once: true });
    emitter.once(event, onReady);
    emitter.once("error", fail);
    emitter.once("close", onClose);
  });
}

function checkAlpn(alpn: string | false | undefined | null, destroy: () => void): void {
  if (alpn === "h2") return;
  destroy();
  throw new TunnelError("PROTOCOL", `server negotiated ALPN ${JSON.stringify(alpn)}, not "h2"`);
}
