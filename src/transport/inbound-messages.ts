// The receive side shared by server and client calls: gRPC messages out of an HTTP/2 stream's
// DATA chunks, with pause/resume that really pushes back. node:http2 returns stream-level
// WINDOW_UPDATEs only while the stream is read (it consumes the connection window at once), so
// pausing the readable stops the peer after one stream window, without holding up the session.
// Messages already decoded from a chunk when pause() is called wait in a small queue, so a
// paused call never sees another "message".
//
// Reading starts lazily, at start(): a handler that first awaits something (a token review,
// konnectivity.md §1.3) loses no message that arrived meanwhile. Until then node:http2 holds what
// the peer sends, up to a whole stream window per stream; a handler that waits on behalf of a peer
// it does not trust yet calls readAhead(limit) instead, which reads at once and holds at most
// `limit` bytes until start().
import { TunnelError } from "../protocol/tunnel-error.js";
import { GrpcMessageReader, grpcFrameHeaderBytes } from "./grpc-frame.js";
import { unpinned } from "./http2-frame.js";

/** What is read from: a node:http2 stream or an Http2Stream. */
export type ReadableSource = {
  pause(): unknown;
  resume(): unknown;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  off(event: "data", listener: (chunk: Buffer) => void): unknown;
  off(event: "end", listener: () => void): unknown;
};

export interface InboundHandlers {
  message(message: Uint8Array): void;
  /** The peer half-closed and every message was delivered. */
  end(): void;
  /** Framing error (MESSAGE_TOO_LARGE or PROTOCOL); nothing more is delivered. */
  error(err: TunnelError): void;
}

// What readAhead() counts for each message it holds besides its bytes: the gRPC prefix, and about
// what the queue entry and its buffer object cost. Zero-length messages (5 bytes on the wire)
// counted nothing, and a peer sent millions of them within a 64 KiB limit.
const heldMessageOverheadBytes = grpcFrameHeaderBytes + 64;

// The reader of each stream, for two listeners that every stream shares (a frontend holds a call
// per proxied connection; two closures each added up).
const readerOfStream = new WeakMap<ReadableSource, InboundMessages>();

function onStreamData(this: ReadableSource, chunk: Buffer): void {
  readerOfStream.get(this)?.receive(chunk);
}

function onStreamEnd(this: ReadableSource): void {
  readerOfStream.get(this)?.streamEnded();
}

export class InboundMessages {
  readonly #stream: ReadableSource;
  readonly #reader: GrpcMessageReader;
  readonly #handlers: InboundHandlers;
  #queue: Uint8Array[] = [];
  #queueHead = 0;
  #isStarted = false;
  /** Reading before start(): messages are held, up to limitBytes (with a partial one). */
  #readAhead: { readonly limitBytes: number; heldBytes: number } | undefined;
  #isPaused = false;
  #isStopped = false;
  #hasStreamEnded = false;

  constructor(stream: ReadableSource, maxMessageBytes: number, handlers: InboundHandlers) {
    this.#stream = stream;
    this.#reader = new GrpcMessageReader(maxMessageBytes);
    this.#handlers = handlers;
  }

  get isPaused(): boolean {
    return this.#isPaused;
  }

  start(): void {
    if (this.#isStarted || this.#isStopped) return;
    this.#isStarted = true;
    if (this.#readAhead) {
      // Already reading: hand over what was held, unless paused meanwhile.
      this.#readAhead = undefined;
      if (this.#isPaused) this.#stream.pause();
      else this.resume();
      return;
    }
    this.#listen();
    if (this.#isPaused) this.#stream.pause();
  }

  /**
   * Reads now and holds the messages until start(), at most `limitBytes` of them (a message still
   * arriving included, each held one with its prefix and heldMessageOverheadBytes); more fails
   * the stream with LIMIT. For a peer not trusted yet: node:http2
   * would otherwise hold a whole stream window (8 MiB) for each of its streams.
   */
  readAhead(limitBytes: number): void {
    if (this.#isStarted || this.#isStopped || this.#readAhead) return;
    this.#readAhead = { limitBytes, heldBytes: 0 };
    this.#listen();
  }

  #listen(): void {
    readerOfStream.set(this.#stream, this);
    this.#stream.on("data", onStreamData);
    this.#stream.on("end", onStreamEnd);
  }

  pause(): void {
    this.#isPaused = true;
    if (this.#isStarted) this.#stream.pause();
  }

  resume(): void {
    this.#isPaused = false;
    this.start();
    while (!this.#isPaused && !this.#isStopped && this.#queueHead < this.#queue.length) {
      const message = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead++] = undefined as unknown as Uint8Array;
      this.#handlers.message(message);
    }
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
    }
    if (this.#isPaused || this.#isStopped) return;
    this.#stream.resume();
    this.#maybeEnd();
  }

  /** Delivers nothing more and lets the stream's data flow to nowhere. */
  stop(): void {
    if (this.#isStopped) return;
    this.#isStopped = true;
    this.#queue = [];
    this.#queueHead = 0;
    this.#stream.off("data", onStreamData);
    this.#stream.off("end", onStreamEnd);
    if (readerOfStream.get(this.#stream) === this) readerOfStream.delete(this.#stream);
  }

  /** For the stream's "end" listener. */
  streamEnded(): void {
    this.#hasStreamEnded = true;
    this.#maybeEnd();
  }

  /** For the stream's "data" listener. */
  receive(chunk: Buffer): void {
    let messages: Uint8Array[];
    try {
      messages = this.#reader.push(chunk);
    } catch (err) {
      this.stop();
      this.#handlers.error(err as TunnelError);
      return;
    }
    const ahead = this.#readAhead;
    if (ahead) {
      for (const message of messages) ahead.heldBytes += heldMessageOverheadBytes + message.length;
      if (ahead.heldBytes + this.#reader.bufferedBytes > ahead.limitBytes) {
        this.stop();
        this.#handlers.error(new TunnelError("LIMIT", `grpc: more than ${ahead.limitBytes} bytes sent before the call was accepted`));
        return;
      }
    }
    for (const message of messages) {
      if (this.#isStopped) return;
      // A held message is a view of the chunk it came in (grpc-frame.ts): kept, it keeps that.
      if (this.#isPaused || ahead) this.#queue.push(unpinned(message));
      else this.#handlers.message(message);
    }
    const failure = this.#reader.failure;
    if (failure && !this.#isStopped) {
      // Messages before the bad frame were delivered (or queued: a paused call loses them,
      // the call is over anyway).
      this.stop();
      this.#handlers.error(failure);
    }
  }

  #maybeEnd(): void {
    if (!this.#hasStreamEnded || this.#isStopped || this.#isPaused || this.#readAhead || this.#queueHead < this.#queue.length) return;
    const truncated = this.#reader.bufferedBytes;
    this.stop();
    if (truncated > 0) {
      this.#handlers.error(new TunnelError("PROTOCOL", `grpc: stream ended inside a message (${truncated} bytes of it received)`));
      return;
    }
    this.#handlers.end();
  }
}
