// Transport options, defaulted once and validated at the edge (STYLE.md). The windows are the
// reason we frame gRPC ourselves (DESIGN.md "Decisions already taken"): 8 MiB per stream and
// 32 MiB per session by default instead of grpc-js's 64 KiB, on both ends.
import type * as tls from "node:tls";
import type { Logger } from "pino";
import { TunnelError } from "../protocol/tunnel-error.js";

const MiB = 1024 * 1024;
// RFC 9113 §6.9.1: a flow-control window may not exceed 2^31-1; §6.5.2: initial window ≥ 0.
const maxWindowBytes = 2 ** 31 - 1;
const minWindowBytes = 65_535;

export const grpcTransportDefaults = {
  maxMessageBytes: 4 * MiB, // grpc-go's default receive limit (konnectivity.md §5)
  streamWindowBytes: 8 * MiB,
  sessionWindowBytes: 32 * MiB,
  keepaliveTimeMs: 0,
  keepaliveTimeoutMs: 20_000, // grpc-go's keepalive Timeout default
  minClientPingIntervalMs: 0,
  connectTimeoutMs: 10_000,
} as const;

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TunnelError("INVALID_OPTION", `${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

interface CommonInput {
  maxMessageBytes?: number;
  streamWindowBytes?: number;
  sessionWindowBytes?: number;
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  logger?: Logger;
}

export interface ResolvedCommonOptions {
  readonly maxMessageBytes: number;
  readonly streamWindowBytes: number;
  readonly sessionWindowBytes: number;
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly logger: Logger | undefined;
}

export function resolveCommonOptions(input: CommonInput): ResolvedCommonOptions {
  const d = grpcTransportDefaults;
  const streamWindowBytes = checkInteger("streamWindowBytes", input.streamWindowBytes ?? d.streamWindowBytes, minWindowBytes, maxWindowBytes);
  const sessionWindowBytes = checkInteger("sessionWindowBytes", input.sessionWindowBytes ?? d.sessionWindowBytes, minWindowBytes, maxWindowBytes);
  if (sessionWindowBytes < streamWindowBytes) {
    throw new TunnelError("INVALID_OPTION", `sessionWindowBytes (${sessionWindowBytes}) must be at least streamWindowBytes (${streamWindowBytes})`);
  }
  return {
    maxMessageBytes: checkInteger("maxMessageBytes", input.maxMessageBytes ?? d.maxMessageBytes, 1, 2 ** 32 - 1),
    streamWindowBytes,
    sessionWindowBytes,
    keepaliveTimeMs: checkInteger("keepaliveTimeMs", input.keepaliveTimeMs ?? d.keepaliveTimeMs, 0, 2 ** 31 - 1),
    keepaliveTimeoutMs: checkInteger("keepaliveTimeoutMs", input.keepaliveTimeoutMs ?? d.keepaliveTimeoutMs, 1, 2 ** 31 - 1),
    logger: input.logger,
  };
}

/**
 * SETTINGS_MAX_FRAME_SIZE we announce (RFC 9113 §6.5.2; default 16 KiB). It only permits the
 * peer to send larger DATA frames; node then sends 64 KiB frames and one stream's throughput on
 * loopback doubled in our measurement (370 → 760 MB/s raw node:http2, 256 KiB writes).
 * grpc-go keeps writing 16 KiB frames, which is still fine.
 */
export const maxFrameBytes = 64 * 1024;

/**
 * node:http2 refuses new streams once a session holds more than maxSessionMemory MiB (default
 * 10). With 32 MiB windows a busy session legitimately buffers more, so the cap follows them.
 */
export const maxSessionMemoryMiB = (o: ResolvedCommonOptions): number => Math.max(10, Math.ceil((2 * o.sessionWindowBytes) / MiB) + 8);

/** What a rotation replaces: a certificate (chain), its key and the CA that peers are checked against. */
export interface TlsMaterial {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly ca?: string | Buffer;
}

export interface GrpcServerTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  ca?: string | Buffer;
  requestCert?: boolean;
  minVersion?: tls.SecureVersion;
  /** Node's `ciphers` syntax (tls-suites.ts); default: tlsCipherOrder. */
  ciphers?: string;
}

export interface GrpcServerOptions extends CommonInput {
  /** No PING ack within keepaliveTimeoutMs → the session is destroyed. */
  keepaliveTimeMs?: number;
  /** Clients pinging more often get GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (0 = not enforced). */
  minClientPingIntervalMs?: number;
  tls?: GrpcServerTlsOptions;
  /**
   * Keep each session reading its socket while a write is pending (keep-reading.ts): for the
   * agent link, where both ends are node:http2. Off by default (a frontend's peer is Go).
   */
  readWhileWriting?: boolean;
  /**
   * Which HTTP/2 implementation serves the connections: "builtin" (http2-session.ts, a
   * few hundred bytes per connection) or "node" (node:http2, ~22 KiB of native memory per
   * connection in nghttp2). Default "node".
   */
  http2?: Http2Implementation;
  /** Streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS; builtin only). */
  maxConcurrentStreams?: number;
  /**
   * A session with no open stream for this long is closed (0 = never). For a port where every
   * legitimate peer keeps a stream open (agents): idle TLS sessions from peers that never
   * authenticate would otherwise hold a socket and its memory for good.
   */
  streamlessSessionTimeoutMs?: number;
  /**
   * A TLS connection whose handshake has not finished by then is dropped (Node's default is
   * 120 s): a peer that connects and says nothing would hold a socket that long. Default 20 s.
   */
  tlsHandshakeTimeoutMs?: number;
  /** Builtin only: DATA is written while a session's socket holds less than this (Http2SessionOptions). Default 16 KiB. */
  socketBufferBytes?: number;
  /**
   * TLS only: connections still in their handshake beyond this are closed at once
   * (handshake-guard.ts). Default 1024.
   */
  maxPendingTlsHandshakes?: number;
}

/** "builtin": http2-session.ts; "node": node:http2 (nghttp2). */
export const http2Implementations = ["builtin", "node"] as const;
export type Http2Implementation = (typeof http2Implementations)[number];

export interface ResolvedGrpcServerOptions extends ResolvedCommonOptions {
  readonly minClientPingIntervalMs: number;
  readonly tls: Readonly<GrpcServerTlsOptions> | undefined;
  readonly readWhileWriting: boolean;
  readonly http2: Http2Implementation;
  readonly maxConcurrentStreams: number;
  readonly streamlessSessionTimeoutMs: number;
  readonly tlsHandshakeTimeoutMs: number;
  readonly socketBufferBytes: number;
  readonly maxPendingTlsHandshakes: number;
}

export function resolveGrpcServerOptions(input: GrpcServerOptions = {}): ResolvedGrpcServerOptions {
  if (input.tls && (!input.tls.cert || !input.tls.key)) throw new TunnelError("INVALID_OPTION", "tls needs both cert and key");
  return Object.freeze({
    ...resolveCommonOptions(input),
    minClientPingIntervalMs: checkInteger("minClientPingIntervalMs", input.minClientPingIntervalMs ?? grpcTransportDefaults.minClientPingIntervalMs, 0, 2 ** 31 - 1),
    tls: input.tls ? Object.freeze({ ...input.tls }) : undefined,
    readWhileWriting: input.readWhileWriting ?? false,
    http2: checkHttp2(input.http2 ?? "node"),
    maxConcurrentStreams: checkInteger("maxConcurrentStreams", input.maxConcurrentStreams ?? 1000, 1, 2 ** 31 - 1),
    streamlessSessionTimeoutMs: checkInteger("streamlessSessionTimeoutMs", input.streamlessSessionTimeoutMs ?? 0, 0, 2 ** 31 - 1),
    tlsHandshakeTimeoutMs: checkInteger("tlsHandshakeTimeoutMs", input.tlsHandshakeTimeoutMs ?? 20_000, 1, 2 ** 31 - 1),
    socketBufferBytes: checkInteger("socketBufferBytes", input.socketBufferBytes ?? 16 * 1024, 1, 2 ** 31 - 1),
    maxPendingTlsHandshakes: checkInteger("maxPendingTlsHandshakes", input.maxPendingTlsHandshakes ?? 1024, 1, 2 ** 31 - 1),
  });
}

function checkHttp2(value: string): Http2Implementation {
  if (!(http2Implementations as readonly string[]).includes(value)) {
    throw new TunnelError("INVALID_OPTION", `http2 must be one of ${http2Implementations.join(", ")}, got ${JSON.stringify(value)}`);
  }
  return value as Http2Implementation;
}

export interface GrpcClientOptions extends CommonInput {
  connectTimeoutMs?: number;
  /** Aborts connecting (not an established client: close() or destroy() that). */
  signal?: AbortSignal;
  /**
   * Which HTTP/2 implementation the client runs on: "builtin" (the client side of
   * http2-session.ts, which reads while it writes and costs less CPU per MB) or "node"
   * (node:http2). Default "node".
   */
  http2?: Http2Implementation;
}

export interface ResolvedGrpcClientOptions extends ResolvedCommonOptions {
  readonly connectTimeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly http2: Http2Implementation;
}

export function resolveGrpcClientOptions(input: GrpcClientOptions = {}): ResolvedGrpcClientOptions {
  return Object.freeze({
    ...resolveCommonOptions(input),
    connectTimeoutMs: checkInteger("connectTimeoutMs", input.connectTimeoutMs ?? grpcTransportDefaults.connectTimeoutMs, 1, 2 ** 31 - 1),
    signal: input.signal,
    http2: checkHttp2(input.http2 ?? "node"),
  });
}
