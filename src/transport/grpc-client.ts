// A gRPC client session on node:http2: TLS with ALPN (extra protocols offered before "h2",
// as the upstream agent's --alpn-proto does, konnectivity.md §1.7) and optional client
// certificate, or cleartext HTTP/2 with prior knowledge on a Unix socket.
import { EventEmitter } from "node:events";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import type { Logger } from "pino";
import { TunnelError } from "../protocol/tunnel-error.js";
import { ClientCall, type GrpcClientCall } from "./grpc-client-call.js";
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
export type GrpcClientTarget = { host: string; port: number; tls: GrpcClientTlsOptions } | { path: string };

const userAgent = "nodetunnel-grpc/0.1";

export class GrpcClient extends EventEmitter {
  readonly #session: http2.ClientHttp2Session;
  readonly #options: ResolvedGrpcClientOptions;
  readonly #log: Logger | undefined;
  readonly #keepalive: Keepalive;
  #isClosed = false;

  static async connect(target: GrpcClientTarget, options?: GrpcClientOptions): Promise<GrpcClient> {
    const o = resolveGrpcClientOptions(options);
    if (o.signal?.aborted) throw new TunnelError("CANCELLED", "grpc connect aborted", { cause: o.signal.reason });
    const session = openSession(target, o);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = Object.assign(new Error(`grpc connect timed out after ${o.connectTimeoutMs} ms`), { code: "ETIMEDOUT" });
        fail(err);
      }, o.connectTimeoutMs);
      const onAbort = () => fail(new TunnelError("CANCELLED", "grpc connect aborted", { cause: o.signal?.reason }));
      const cleanup = () => {
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        session.off("connect", onConnect);
        session.off("error", fail);
        session.off("close", onClose);
      };
      function fail(err: Error) {
        cleanup();
        session.destroy();
        reject(err);
      }
      function onClose() {
        fail(new TunnelError("CLOSED", "grpc session closed while connecting"));
      }
      function onConnect() {
        cleanup();
        const socket = session.socket as tls.TLSSocket;
        if (socket.encrypted && session.alpnProtocol !== "h2") {
          session.destroy();
          reject(new TunnelError("PROTOCOL", `server negotiated ALPN ${JSON.stringify(session.alpnProtocol)}, not "h2"`));
          return;
        }
        resolve();
      }
      o.signal?.addEventListener("abort", onAbort, { once: true });
      session.once("connect", onConnect);
      session.once("error", fail);
      session.once("close", onClose);
    });
    return new GrpcClient(session, o);
  }

  private constructor(session: http2.ClientHttp2Session, options: ResolvedGrpcClientOptions) {
    super();
    this.#session = session;
    this.#options = options;
    this.#log = options.logger?.child({ subsystem: "grpc-client" });
    try {
      session.setLocalWindowSize(options.sessionWindowBytes);
    } catch (err) {
      this.#log?.debug({ err }, "could not widen the session window");
    }
    // Clients are few (an agent's links to its servers): all of them keep reading while they
    // write, so a nodetunnel server and agent cannot deadlock (keep-reading.ts).
    keepReading(session);
    this.#keepalive = startKeepalive(session, {
      timeMs: options.keepaliveTimeMs,
      timeoutMs: options.keepaliveTimeoutMs,
      onDead: (silentForMs) => {
        this.#log?.warn({ silentForMs }, "keepalive: no PING ack, dropping session");
        this.destroy(new TunnelError("CLOSED", `keepalive: no PING ack within ${options.keepaliveTimeoutMs} ms`));
      },
    });
    // A GOAWAY with an error code (e.g. ENHANCE_YOUR_CALM "too_many_pings") makes node destroy
    // the session with an error; the "close" event carries it.
    let closeError: Error | undefined;
    const onError = (err: Error) => {
      closeError ??= err;
      this.#log?.debug({ err: err.message }, "session error");
    };
    const onGoaway = (errorCode: number, lastStreamID: number, opaqueData?: Buffer) => {
      this.#log?.info({ errorCode, lastStreamID, debug: opaqueData?.toString("latin1") }, "GOAWAY received");
      this.emit("goaway", errorCode, lastStreamID, opaqueData);
    };
    session.on("error", onError);
    session.on("goaway", onGoaway);
    session.once("close", () => {
      this.#isClosed = true;
      this.#keepalive.stop();
      session.off("goaway", onGoaway);
      // "error" stays attached: node may still report a late socket error on a closed session.
      this.emit("close", closeError);
    });
  }

  get alpnProtocol(): string | undefined {
    return this.#session.alpnProtocol;
  }

  /** True once the session is closing or gone: open a new client. */
  get isClosed(): boolean {
    return this.#isClosed || this.#session.closed || this.#session.destroyed;
  }

  openStream(path: string, metadata?: MetadataInit): GrpcClientCall {
    let stream: http2.ClientHttp2Stream | Error;
    try {
      stream = this.#session.request({
        ...metadataToHeaders(metadata),
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        "user-agent": userAgent,
      }, { endStream: false });
    } catch (err) {
      if (err instanceof TunnelError) throw err; // bad metadata is the caller's mistake
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

function openSession(target: GrpcClientTarget, o: ResolvedGrpcClientOptions): http2.ClientHttp2Session {
  const common: http2.ClientSessionOptions = {
    settings: { initialWindowSize: o.streamWindowBytes, maxFrameSize: maxFrameBytes, enablePush: false },
    maxSessionMemory: maxSessionMemoryMiB(o),
  };
  if ("path" in target) {
    // h2c with prior knowledge: the authority is only a name here, as grpc-go uses "localhost".
    return http2.connect("http://localhost", { ...common, createConnection: () => net.connect({ path: target.path }) });
  }
  const { host, port } = target;
  const authorityHost = net.isIPv6(host) ? `[${host}]` : host;
  // node's http2.connect forces ALPN ["h2"]; our own socket lets us offer more, h2 last.
  const createConnection = () => tls.connect({
    host,
    port,
    ca: target.tls.ca,
    cert: target.tls.cert,
    key: target.tls.key,
    // SNI carries names only (RFC 6066 §3); for an IP the certificate is checked against it anyway.
    servername: target.tls.servername ?? (net.isIP(host) ? undefined : host),
    ALPNProtocols: [...(target.tls.alpn ?? []), "h2"],
    minVersion: "TLSv1.2",
    ciphers: tlsCipherOrder,
  }).setNoDelay(true); // small packets (dials, closes, credit) must not wait for Nagle's algorithm
  return http2.connect(`https://${authorityHost}:${port}`, { ...common, createConnection });
}
