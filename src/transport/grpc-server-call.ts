// One gRPC call on the server side: an HTTP/2 stream with gRPC framing, response headers,
// trailers and a single "close" at the end (gRPC over HTTP/2, "Responses").
//
//   open ──sendHeaders()/write()──▶ headers sent ──end()──▶ trailers sent ──┐
//     └──────────────end() (trailers-only response)─────────────────────────┤
//   any state ──peer RST_STREAM / session gone / abort()────────────────────┴─▶ closed ("close" once)
import { constants, type OutgoingHttpHeaders } from "node:http2";
import type * as tls from "node:tls";
import { TunnelError } from "../protocol/tunnel-error.js";
import { encodeGrpcMessage, fillGrpcFrameHeader, grpcFrameHeaderBytes } from "./grpc-frame.js";
import { GrpcStatus, percentEncodeGrpcMessage } from "./grpc-status.js";
import { InboundMessages, type InboundHandlers, type ReadableSource } from "./inbound-messages.js";
import { metadataFromHeaders, metadataToHeaders, type Metadata } from "./metadata.js";
import { SlotEmitter, type Listener } from "./slot-emitter.js";

export interface GrpcPeer {
  /** Remote IP, or "unix:<socket path>" on a Unix socket. */
  readonly address: string;
  readonly port?: number;
  /** The client certificate, when one was presented (verified when `authorized`). */
  readonly certificate?: tls.PeerCertificate;
  readonly authorized: boolean;
}

/**
 * Events: "message" (each request message, once reading started: see on()), "end" (the client
 * half-closed), "drain" (below the write high-water mark again), "close" (once, at the very end,
 * with the reason when it was not a clean end).
 */
export type ServerCallEvent = "message" | "end" | "drain" | "close";

export interface GrpcServerCall {
  /** A "message" listener starts reading (until then, messages wait in HTTP/2 flow control). */
  on(event: "message", listener: (message: Uint8Array) => void): this;
  /**
   * Starts reading before any "message" listener, holding at most `limitBytes` of messages until
   * one comes; more ends the call with RESOURCE_EXHAUSTED. For a handler that first checks who the
   * peer is: unread, node:http2 would hold a whole stream window for each of the peer's streams.
   */
  readAhead(limitBytes: number): void;
  on(event: "end" | "drain", listener: () => void): this;
  on(event: "close", listener: (err?: Error) => void): this;
  once(event: ServerCallEvent, listener: Listener): this;
  off(event: ServerCallEvent, listener: Listener): this;
  readonly path: string;
  readonly metadata: Metadata;
  readonly peer: GrpcPeer;
  sendHeaders(md?: Record<string, string>): void;
  write(message: Uint8Array): boolean;
  /** Writes a message encoded with 5 bytes of headroom for the gRPC prefix (no second copy). */
  /** `done` runs once the transport no longer needs `frame` (written, or the call is over). */
  writeFramed(frame: Buffer, done?: (err?: Error | null) => void): boolean;
  readonly writableLength: number;
  end(status?: number, message?: string): void;
  pause(): void;
  resume(): void;
  readonly signal: AbortSignal;
}

/** The part of a server stream a call uses: node:http2's ServerHttp2Stream or our Http2Stream. */
export interface CallStream extends ReadableSource {
  readonly destroyed: boolean;
  readonly closed: boolean;
  readonly readableEnded: boolean;
  readonly writableLength: number;
  readonly rstCode?: number | undefined;
  respond(headers: OutgoingHttpHeaders, options?: { endStream?: boolean; waitForTrailers?: boolean }): void;
  write(chunk: Uint8Array, done?: (err?: Error | null) => void): boolean;
  end(): void;
  sendTrailers(headers: OutgoingHttpHeaders): void;
  close(code?: number): void;
  on(event: "error", listener: (err: Error) => void): unknown;
  on(event: "drain" | "wantTrailers", listener: () => void): unknown;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  on(event: "close", listener: () => void): unknown;
}

const grpcContentType = "application/grpc";

// The call of each stream, for the stream listeners below: one set of functions serves every call
// (a frontend holds a call per proxied connection; five closures each added up).
const callOfStream = new WeakMap<CallStream, ServerCall>();

function onStreamError(this: CallStream, err: Error): void {
  callOfStream.get(this)?.noteStreamError(err);
}

function onStreamDrain(this: CallStream): void {
  callOfStream.get(this)?.emit("drain");
}

function onStreamWantTrailers(this: CallStream): void {
  callOfStream.get(this)?.sendTrailers();
}

function onStreamClose(this: CallStream): void {
  const call = callOfStream.get(this);
  callOfStream.delete(this);
  call?.streamClosed();
}

// A SlotEmitter, not an EventEmitter: EventEmitter's listener object is a dictionary of ~0.3 KiB,
// and a frontend holds a call per proxied connection.
export class ServerCall extends SlotEmitter<ServerCallEvent> implements GrpcServerCall {
  readonly path: string;
  readonly peer: GrpcPeer;
  #metadata: Metadata | readonly string[];
  readonly #stream: CallStream;
  readonly #maxMessageBytes: number;
  readonly #inbound: InboundMessages;
  // Created when someone asks for the signal (most calls never do: an AbortController per call
  // is ~0.5 KiB, and a frontend holds a call per proxied connection).
  #controller: AbortController | undefined;
  #hasSentHeaders = false;
  #hasEnded = false;
  #isClosed = false;
  #trailers: OutgoingHttpHeaders | undefined;
  #closeReason: Error | undefined;

  /**
   * `metadata` may be the raw header list (name, value, name, value…): it is then built on first
   * use (most frontend calls never look, and a Map per call adds up over 10,000 calls).
   */
  constructor(stream: CallStream, path: string, metadata: Metadata | readonly string[], peer: GrpcPeer, maxMessageBytes: number) {
    super();
    this.path = path;
    this.#metadata = metadata;
    this.peer = peer;
    this.#stream = stream;
    this.#maxMessageBytes = maxMessageBytes;
    this.#inbound = new InboundMessages(stream, maxMessageBytes, new ServerCall.#Inbound(this));
    callOfStream.set(stream, this);
    stream.on("error", onStreamError);
    stream.on("drain", onStreamDrain);
    stream.on("wantTrailers", onStreamWantTrailers);
    // "close" comes once; on() spares the wrapper that once() allocates per call.
    stream.on("close", onStreamClose);
  }

  // What InboundMessages delivers, as one object per call instead of three closures.
  static readonly #Inbound = class implements InboundHandlers {
    constructor(readonly call: ServerCall) {}

    message(m: Uint8Array): void {
      this.call.emit("message", m);
    }

    end(): void {
      this.call.emit("end");
    }

    error(err: TunnelError): void {
      this.call.#closeReason ??= err;
      const exhausted = err.code === "MESSAGE_TOO_LARGE" || err.code === "LIMIT";
      this.call.end(exhausted ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.INTERNAL, err.message);
    }
  };

  override on(event: ServerCallEvent, listener: Listener): this {
    super.on(event, listener);
    // Reading starts with the first "message" listener (or resume()), not before: see
    // inbound-messages.ts.
    if (event === "message") this.#inbound.start();
    return this;
  }

  readAhead(limitBytes: number): void {
    this.#inbound.readAhead(limitBytes);
  }

  get metadata(): Metadata {
    if (Array.isArray(this.#metadata)) this.#metadata = metadataFromHeaders({}, this.#metadata as readonly string[]);
    return this.#metadata as Metadata;
  }

  get signal(): AbortSignal {
    if (this.#controller) return this.#controller.signal;
    if (this.#isClosed) return AbortSignal.abort(this.#abortReason());
    this.#controller = new AbortController();
    return this.#controller.signal;
  }

  #abortReason(): Error {
    return this.#closeReason ?? (this.#hasEnded ? new TunnelError("CLOSED", "grpc: call ended") : this.#cancelled());
  }

  #cancelled(): Error {
    return new TunnelError("CANCELLED", `grpc: the client ended the call (RST_STREAM code ${this.#stream.rstCode ?? constants.NGHTTP2_NO_ERROR})`);
  }

  get writableLength(): number {
    return this.#stream.writableLength;
  }

  sendHeaders(md?: Record<string, string>): void {
    if (this.#hasSentHeaders || this.#hasEnded || !this.#isStreamUsable()) return;
    const headers = metadataToHeaders(md);
    this.#hasSentHeaders = true;
    this.#stream.respond({ ...headers, ":status": 200, "content-type": grpcContentType }, { waitForTrailers: true });
  }

  // After end() or once the call is over the message is dropped and false returned: the
  // "close" event, not an exception, is how a writer learns that its peer went away.
  write(message: Uint8Array): boolean {
    if (message.length > this.#maxMessageBytes) {
      throw new TunnelError("MESSAGE_TOO_LARGE", `grpc: trying to send message larger than max (${message.length} vs. ${this.#maxMessageBytes})`);
    }
    if (this.#hasEnded || !this.#isStreamUsable()) return false;
    this.sendHeaders();
    return this.#stream.write(encodeGrpcMessage(message));
  }

  /** Writes a message encoded with 5 bytes of headroom for the gRPC prefix (no second copy). */
  writeFramed(frame: Buffer, done?: (err?: Error | null) => void): boolean {
    if (frame.length - grpcFrameHeaderBytes > this.#maxMessageBytes) {
      throw new TunnelError("MESSAGE_TOO_LARGE", `grpc: trying to send message larger than max (${frame.length - grpcFrameHeaderBytes} vs. ${this.#maxMessageBytes})`);
    }
    if (this.#hasEnded || !this.#isStreamUsable()) return false;
    this.sendHeaders();
    return this.#stream.write(fillGrpcFrameHeader(frame), done);
  }

  end(status: number = GrpcStatus.OK, message = ""): void {
    // A stream the client already reset stays cancelled: ending it now is too late to count as ours.
    if (this.#hasEnded || !this.#isStreamUsable()) return;
    this.#hasEnded = true;
    const trailers: OutgoingHttpHeaders = { "grpc-status": String(status) };
    if (message !== "") trailers["grpc-message"] = percentEncodeGrpcMessage(message);
    if (!this.#hasSentHeaders) {
      // Trailers-only response: one HEADERS frame with END_STREAM.
      this.#hasSentHeaders = true;
      this.#stream.respond({ ":status": 200, "content-type": grpcContentType, ...trailers }, { endStream: true });
      this.#stopReadingIfUnfinished();
      return;
    }
    this.#trailers = trailers;
    this.#stream.end();
  }

  pause(): void {
    this.#inbound.pause();
  }

  resume(): void {
    this.#inbound.resume();
  }

  /** Ends the call now with RST_STREAM CANCEL; "close" carries `reason`. */
  abort(reason: Error): void {
    if (this.#isClosed) return;
    this.#closeReason ??= reason;
    this.#hasEnded = true;
    if (!this.#stream.destroyed) this.#stream.close(constants.NGHTTP2_CANCEL);
  }

  #isStreamUsable(): boolean {
    return !this.#isClosed && !this.#stream.destroyed && !this.#stream.closed;
  }

  /** For the stream's "error" listener: the first error is why the call closed. */
  noteStreamError(err: Error): void {
    this.#closeReason ??= err;
  }

  /** For the stream's "wantTrailers" listener. */
  sendTrailers(): void {
    if (this.#stream.destroyed) return;
    this.#stream.sendTrailers(this.#trailers ?? { "grpc-status": String(GrpcStatus.OK) });
    this.#stopReadingIfUnfinished();
  }

  // The status is final; a client that has not half-closed is told to stop sending with
  // RST_STREAM NO_ERROR after the trailers (gRPC over HTTP/2, as grpc-go does), or the stream
  // would stay half-open and "close" would never come.
  #stopReadingIfUnfinished(): void {
    if (this.#stream.readableEnded) return;
    this.#inbound.stop();
    setImmediate(() => {
      if (!this.#stream.destroyed && !this.#stream.closed) this.#stream.close(constants.NGHTTP2_NO_ERROR);
    });
  }

  /** For the stream's "close" listener. */
  streamClosed(): void {
    this.#isClosed = true;
    this.#inbound.stop();
    let err = this.#closeReason;
    if (err === undefined && !this.#hasEnded) err = this.#cancelled();
    // A signal asked for later carries the same reason.
    this.#closeReason = err;
    this.#controller?.abort(this.#abortReason());
    this.emit("close", err);
  }
}
