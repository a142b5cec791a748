// One gRPC call on the client side. Its end is always exactly one "status" then one "close":
// from the trailers (or a trailers-only response), or made up from how the stream broke —
// CANCELLED for our own cancel() or the server's RST_STREAM CANCEL, UNAVAILABLE when the
// stream or session died without trailers (gRPC over HTTP/2, "Errors"; grpc-go does the same).
// "close" carries the status as a GrpcStatusError when the call failed for a reason other than
// our own cancel(), as a server call's "close" carries why it ended.
import { EventEmitter } from "node:events";
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import { TunnelError } from "../protocol/tunnel-error.js";
import type { Http2Stream } from "./http2-stream.js";
import { encodeGrpcMessage, fillGrpcFrameHeader, grpcFrameHeaderBytes } from "./grpc-frame.js";
import { GrpcStatus, GrpcStatusError, grpcStatusFromHttpStatus, percentDecodeGrpcMessage } from "./grpc-status.js";
import { InboundMessages } from "./inbound-messages.js";
import { metadataFromHeaders, type Metadata } from "./metadata.js";

export interface GrpcCallStatus {
  readonly code: number;
  readonly message: string;
  readonly metadata: Metadata;
}

export interface GrpcClientCall extends EventEmitter {
  readonly headers: Promise<Metadata>;
  write(message: Uint8Array): boolean;
  /** Writes a message encoded with 5 bytes of headroom for the gRPC prefix (no second copy). */
  /** `done` runs once the transport no longer needs `frame` (written, or the call is over). */
  writeFramed(frame: Buffer, done?: (err?: Error | null) => void): boolean;
  readonly writableLength: number;
  end(): void;
  cancel(): void;
  pause(): void;
  resume(): void;
}

const noMetadata: Metadata = new Map();

/** The stream under a call: node:http2's, or one of a client Http2Session (http2-session.ts). */
export type ClientStream = ClientHttp2Stream | Http2Stream;

export class ClientCall extends EventEmitter implements GrpcClientCall {
  readonly headers: Promise<Metadata>;
  readonly #stream: ClientStream | undefined;
  /** node:http2's stream (it knows its session), or an Http2Stream. */
  readonly #isNodeStream: boolean;
  readonly #maxMessageBytes: number;
  readonly #inbound: InboundMessages | undefined;
  #resolveHeaders!: (md: Metadata) => void;
  #rejectHeaders!: (err: Error) => void;
  #status: GrpcCallStatus | undefined;
  #streamError: Error | undefined;
  #isCancelled = false;
  #hasPeerEnded = false;
  #hasEnded = false;
  #isFinished = false;

  /** `stream` is what session.request() returned, or the error it threw. */
  constructor(stream: ClientStream | Error, maxMessageBytes: number) {
    super();
    this.#maxMessageBytes = maxMessageBytes;
    this.headers = new Promise<Metadata>((resolve, reject) => {
      this.#resolveHeaders = resolve;
      this.#rejectHeaders = reject;
    });
    // A caller that only listens for "status" must not crash the process with an unhandled rejection.
    this.headers.catch(() => {});
    if (stream instanceof Error) {
      this.#stream = undefined;
      this.#isNodeStream = false;
      this.#inbound = undefined;
      this.#status = { code: GrpcStatus.UNAVAILABLE, message: `grpc: cannot open stream: ${stream.message}`, metadata: noMetadata };
      process.nextTick(() => this.#finish());
      return;
    }
    this.#stream = stream;
    this.#isNodeStream = "session" in stream;
    // A stream forgets its session once destroyed. node also ends the readable of streams cut by
    // a dying session, so only an end seen while the session still lives is the peer's
    // END_STREAM; an Http2Stream emits "end" for the peer's END_STREAM alone.
    const session = "session" in stream ? stream.session : undefined;
    const isNodeStream = this.#isNodeStream;
    this.#inbound = new InboundMessages(stream, maxMessageBytes, {
      message: (m) => this.emit("message", m),
      end: () => {
        this.#hasPeerEnded = !isNodeStream || session?.destroyed === false;
      },
      error: (err) => {
        const code = err.code === "MESSAGE_TOO_LARGE" ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.INTERNAL;
        this.#status ??= { code, message: err.message, metadata: noMetadata };
        if (!stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
      },
    });
    this.on("newListener", (event: string) => {
      if (event === "message") this.#inbound!.start();
    });
    stream.on("response", (headers: IncomingHttpHeaders, flags: number, rawHeaders?: string[]) => this.#onResponse(headers, flags, rawHeaders));
    stream.on("trailers", (trailers: IncomingHttpHeaders, _flags: number, rawHeaders?: string[]) => {
      this.#status ??= statusFrom(trailers, rawHeaders);
    });
    stream.on("error", (err) => {
      this.#streamError ??= err;
    });
    stream.on("drain", () => this.emit("drain"));
    stream.once("close", () => this.#finish());
  }

  get writableLength(): number {
    return this.#stream?.writableLength ?? 0;
  }

  write(message: Uint8Array): boolean {
    if (message.length > this.#maxMessageBytes) {
      throw new TunnelError("MESSAGE_TOO_LARGE", `grpc: trying to send message larger than max (${message.length} vs. ${this.#maxMessageBytes})`);
    }
    const stream = this.#stream;
    // Once the call is over the message is dropped: "status" tells the writer why.
    if (!stream || this.#hasEnded || stream.destroyed || stream.closed) return false;
    return stream.write(encodeGrpcMessage(message));
  }

  /** Writes a message encoded with 5 bytes of headroom for the gRPC prefix (no second copy). */
  writeFramed(frame: Buffer, done?: (err?: Error | null) => void): boolean {
    if (frame.length - grpcFrameHeaderBytes > this.#maxMessageBytes) {
      throw new TunnelError("MESSAGE_TOO_LARGE", `grpc: trying to send message larger than max (${frame.length - grpcFrameHeaderBytes} vs. ${this.#maxMessageBytes})`);
    }
    const stream = this.#stream;
    if (!stream || this.#hasEnded || stream.destroyed || stream.closed) return false;
    return stream.write(fillGrpcFrameHeader(frame), done);
  }

  end(): void {
    if (this.#hasEnded) return;
    this.#hasEnded = true;
    const stream = this.#stream;
    if (stream && !stream.destroyed && !stream.closed) stream.end();
  }

  cancel(): void {
    const stream = this.#stream;
    if (this.#isFinished || !stream || stream.destroyed) return;
    this.#isCancelled = true;
    stream.close(constants.NGHTTP2_CANCEL);
  }

  pause(): void {
    this.#inbound?.pause();
  }

  resume(): void {
    this.#inbound?.resume();
  }

  #onResponse(headers: IncomingHttpHeaders, flags: number, rawHeaders: string[] | undefined): void {
    const httpStatus = Number(headers[":status"]);
    const contentType = headers["content-type"] ?? "";
    if (headers["grpc-status"] !== undefined) {
      // Trailers-only (gRPC over HTTP/2, "Responses"): the status came with the headers.
      this.#status ??= statusFrom(headers, rawHeaders);
      // The call is over: our request side goes too (RST_STREAM NO_ERROR, as grpc-go's client).
      // node:http2 closes a stream that the server ended by itself; an Http2Stream waits until
      // its END_STREAM has been read, and nothing reads a call that has had its status.
      if ((!this.#isNodeStream || (flags & constants.NGHTTP2_FLAG_END_STREAM) === 0) && this.#stream && !this.#stream.destroyed) {
        this.#stream.close(constants.NGHTTP2_NO_ERROR);
      }
      return;
    }
    if (httpStatus !== 200) {
      this.#status ??= { code: grpcStatusFromHttpStatus(httpStatus), message: `grpc: unexpected HTTP status ${httpStatus}`, metadata: noMetadata };
    } else if (!contentType.startsWith("application/grpc")) {
      this.#status ??= { code: GrpcStatus.UNKNOWN, message: `grpc: unexpected content-type ${JSON.stringify(contentType)}`, metadata: noMetadata };
    } else {
      this.#resolveHeaders(metadataFromHeaders(headers, rawHeaders));
      return;
    }
    if (this.#stream && !this.#stream.destroyed) this.#stream.close(constants.NGHTTP2_CANCEL);
  }

  #finish(): void {
    if (this.#isFinished) return;
    this.#isFinished = true;
    this.#inbound?.stop();
    const status = this.#status ?? this.#brokenStatus();
    const failure = status.code === GrpcStatus.OK ? undefined : new GrpcStatusError(status.code, status.message, status.metadata, { cause: this.#streamError });
    if (failure) this.#rejectHeaders(failure);
    else this.#resolveHeaders(status.metadata);
    this.emit("status", status);
    this.emit("close", this.#isCancelled ? undefined : failure);
  }

  #brokenStatus(): GrpcCallStatus {
    if (this.#isCancelled) return { code: GrpcStatus.CANCELLED, message: "grpc: cancelled by the client", metadata: noMetadata };
    const rstCode = this.#stream?.rstCode ?? constants.NGHTTP2_NO_ERROR;
    if (rstCode === constants.NGHTTP2_CANCEL) {
      return { code: GrpcStatus.CANCELLED, message: "grpc: the server cancelled the stream (RST_STREAM CANCEL)", metadata: noMetadata };
    }
    // Without END_STREAM from the peer the stream was cut (session destroyed, socket lost).
    if (rstCode !== constants.NGHTTP2_NO_ERROR || this.#streamError || !this.#hasPeerEnded) {
      const why = this.#streamError?.message ?? (rstCode !== constants.NGHTTP2_NO_ERROR ? `RST_STREAM code ${rstCode}` : "connection lost");
      return { code: GrpcStatus.UNAVAILABLE, message: `grpc: the stream broke without a status: ${why}`, metadata: noMetadata };
    }
    return { code: GrpcStatus.INTERNAL, message: "grpc: the server closed the stream without sending trailers", metadata: noMetadata };
  }
}

function statusFrom(headers: IncomingHttpHeaders, rawHeaders: string[] | undefined): GrpcCallStatus {
  const raw = headers["grpc-status"];
  const code = raw !== undefined && /^\d+$/.test(String(raw)) ? Number(raw) : GrpcStatus.UNKNOWN;
  const message = headers["grpc-message"];
  return {
    code,
    message: typeof message === "string" ? percentDecodeGrpcMessage(message) : "",
    metadata: metadataFromHeaders(headers, rawHeaders),
  };
}
