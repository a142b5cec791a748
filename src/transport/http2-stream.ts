// One HTTP/2 stream of http2-session.ts, with the subset of node:http2's
// ServerHttp2Stream that a gRPC call uses (respond, write, end, sendTrailers, close, pause and
// resume, the same events), so ServerCall runs on either; on a client session, the subset of
// ClientHttp2Stream that ClientCall uses ("response" and "trailers" events, write, end, close).
// RFC 9113 §5.1, server side (a client's is the same with its request headers sent at the start,
// except that it closes only once the peer's END_STREAM has been read: see #finishClientStream):
//
//   open ──peer END_STREAM──▶ half-closed (remote) ──trailers / END_STREAM sent──▶ closed
//     └──trailers / END_STREAM sent──▶ half-closed (local) ──peer END_STREAM──────▶ closed
//   any state ──RST_STREAM either way / session gone──────────────────────────────▶ closed
//
// Receiving: DATA is delivered as "data" events while the stream flows; paused, it waits here
// and the stream's WINDOW_UPDATEs are held back, so the peer stops after one window.
// Sending: written chunks wait in a queue that the session drains by flow-control window,
// round-robin between streams; a write's callback runs once the socket has taken its bytes.
import { TunnelError } from "../protocol/tunnel-error.js";
import type { HeaderList } from "./hpack.js";
import { Http2ErrorCode, unpinned } from "./http2-frame.js";
import { SlotEmitter, type Listener } from "./slot-emitter.js";

export type OutgoingHeaders = Record<string, string | number | readonly string[] | undefined>;
type WriteCallback = (err?: Error | null) => void;
export type StreamEventName = "data" | "end" | "drain" | "wantTrailers" | "response" | "trailers" | "close" | "error";

/** What a stream needs from its session. */
export interface StreamOwner {
  readonly streamWindowBytes: number;
  sendHeaders(stream: Http2Stream, headers: HeaderList, endStream: boolean): void;
  sendReset(streamId: number, code: number): void;
  sendWindowUpdate(streamId: number, increment: number): void;
  /** An empty DATA frame with END_STREAM. */
  sendEndStream(stream: Http2Stream): void;
  /** The stream has queued data (or a queued end) to send. */
  wantsToSend(stream: Http2Stream): void;
  streamClosed(stream: Http2Stream): void;
}

const highWaterBytes = 64 * 1024;

export class Http2Stream extends SlotEmitter<StreamEventName> {
  readonly id: number;
  readonly #owner: StreamOwner;
  readonly #isClientSide: boolean;
  /** How much more the peer may send us on this stream, and what we consumed but did not credit back. */
  #receiveWindow: number;
  #unackedBytes = 0;
  /** How much more we may send: the peer's SETTINGS_INITIAL_WINDOW_SIZE plus its WINDOW_UPDATEs. */
  sendWindow: number;
  readonly #outQueue: Array<{ chunk: Uint8Array; offset: number; done: WriteCallback | undefined }> = [];
  #outHead = 0;
  #outBytes = 0;
  #needsDrain = false;
  #inbox: Uint8Array[] = [];
  #isFlowing = false;
  #isExplicitlyPaused = false;
  #isDeliveryScheduled = false;
  #hasResponded = false;
  #isEndQueued = false;
  #wantsTrailers = false;
  #isLocalEnded = false;
  #isRemoteEnded = false;
  /** A request's content-length less the DATA received so far; -1 without one (the session checks it). */
  contentLeft = -1;
  #hasEmittedEnd = false;
  #isClosed = false;
  rstCode: number | undefined;
  /** Set by the session while the stream waits in its send queue. */
  isQueuedToSend = false;
  /** Client: set by the session once the response's final headers arrived. */
  hasResponse = false;

  /** `hasSentHeaders`: a client's stream, opened with its request headers. */
  constructor(id: number, owner: StreamOwner, sendWindow: number, isRemoteEnded: boolean, hasSentHeaders = false) {
    super();
    this.id = id;
    this.#owner = owner;
    this.#receiveWindow = owner.streamWindowBytes;
    this.sendWindow = sendWindow;
    this.#isRemoteEnded = isRemoteEnded;
    this.#hasResponded = hasSentHeaders;
    this.#isClientSide = hasSentHeaders;
  }

  // As a Readable does: attaching a "data" listener starts the flow unless pause() came first.
  override on(event: StreamEventName, listener: Listener): this {
    super.on(event, listener);
    if (event === "data" && !this.#isExplicitlyPaused) this.resume();
    return this;
  }

  get closed(): boolean {
    return this.#isClosed;
  }

  get destroyed(): boolean {
    return this.#isClosed;
  }

  get readableEnded(): boolean {
    return this.#hasEmittedEnd;
  }

  get writableLength(): number {
    return this.#outBytes;
  }

  get isRemoteEnded(): boolean {
    return this.#isRemoteEnded;
  }

  // A server stream whose response is complete, with nobody reading (a 415, a trailers-only
  // status, a call whose reader stopped): what the peer still sends has nowhere to go.
  get #isReaderGone(): boolean {
    return this.#isLocalEnded && !this.#isClientSide && this.listenerCount("data") === 0;
  }

  get hasQueuedOutput(): boolean {
    return this.#outHead < this.#outQueue.length || (this.#isEndQueued && !this.#isLocalEnded);
  }

  respond(headers: OutgoingHeaders, options: { endStream?: boolean; waitForTrailers?: boolean } = {}): void {
    if (this.#hasResponded || this.#isClosed) return;
    this.#hasResponded = true;
    this.#wantsTrailers = options.waitForTrailers === true;
    const endStream = options.endStream === true;
    if (endStream) this.#isEndQueued = true;
    this.#owner.sendHeaders(this, toHeaderList(headers), endStream);
    if (endStream) this.#localEnded();
  }

  write(chunk: Uint8Array, done?: WriteCallback): boolean {
    if (this.#isClosed || this.#isEndQueued) {
      if (done) process.nextTick(done, new TunnelError("CLOSED", "http2: write after the stream ended"));
      return false;
    }
    if (!this.#hasResponded) this.respond({ ":status": 200 });
    this.#outQueue.push({ chunk, offset: 0, done });
    this.#outBytes += chunk.length;
    this.#owner.wantsToSend(this);
    const isBelowHighWater = this.#outBytes < highWaterBytes;
    if (!isBelowHighWater) this.#needsDrain = true;
    return isBelowHighWater;
  }

  /** Ends our side after the queued data: "wantTrailers" then sendTrailers(), or an empty END_STREAM DATA frame. */
  end(): void {
    if (this.#isClosed || this.#isEndQueued) return;
    if (!this.#hasResponded) this.respond({ ":status": 200 }, { waitForTrailers: this.#wantsTrailers });
    this.#isEndQueued = true;
    this.#owner.wantsToSend(this);
  }

  sendTrailers(headers: OutgoingHeaders): void {
    if (this.#isClosed || this.#isLocalEnded) return;
    if (this.#outHead < this.#outQueue.length) {
      throw new TunnelError("PROTOCOL", "http2: trailers while data is still queued (send them from \"wantTrailers\")");
    }
    this.#owner.sendHeaders(this, toHeaderList(headers), true);
    this.#localEnded();
  }

  /** Resets the stream with `code` (RST_STREAM), unless it is already closed. */
  close(code: number = Http2ErrorCode.NO_ERROR): void {
    if (this.#isClosed) return;
    this.#owner.sendReset(this.id, code);
    this.terminate(code);
  }

  pause(): void {
    this.#isExplicitlyPaused = true;
    this.#isFlowing = false;
  }

  resume(): void {
    this.#isExplicitlyPaused = false;
    if (this.#isFlowing) return;
    this.#isFlowing = true;
    this.#scheduleDelivery();
  }

  // ---- called by the session ----

  /** Whether `flowControlledBytes` of DATA fit this stream's window. */
  canReceive(flowControlledBytes: number): boolean {
    return flowControlledBytes <= this.#receiveWindow;
  }

  /** DATA from the peer; false when it exceeds this stream's window (a FLOW_CONTROL_ERROR). */
  receiveData(payload: Uint8Array, flowControlledBytes: number, isEnd: boolean): boolean {
    if (flowControlledBytes > this.#receiveWindow) return false;
    this.#receiveWindow -= flowControlledBytes;
    // Padding counts against the window but is never delivered: credit it at once.
    this.#consumed(flowControlledBytes - payload.length);
    // Dropped when nobody will read it, and not credited: the peer stops after this window, and
    // the RST_STREAM that follows a final response ends the stream.
    if (payload.length > 0 && !this.#isReaderGone) {
      if (this.#isFlowing && this.#inbox.length === 0) this.#deliver(payload);
      else this.#inbox.push(unpinned(payload));
    }
    if (isEnd) this.receiveEnd();
    return true;
  }

  /** END_STREAM from the peer (on DATA or trailing HEADERS). */
  receiveEnd(): void {
    if (this.#isRemoteEnded) return;
    this.#isRemoteEnded = true;
    if (this.#isFlowing) this.#scheduleDelivery();
    else if (this.#isClientSide && this.#inbox.length === 0) {
      // Nothing left unread (a call whose messages nobody reads, or that had none): done now, as
      // node:http2 ends such a stream at once. Unread data keeps it open until it is read.
      this.#hasEmittedEnd = true;
      this.emit("end");
      this.#finishClientStream();
    }
    if (this.#isLocalEnded && !this.#isClientSide) this.terminate(Http2ErrorCode.NO_ERROR);
  }

  /**
   * Up to `maxBytes` of queued data for one DATA frame (the session passes the smaller of the two
   * windows and the peer's frame size), or undefined. `done` goes with the piece that finishes a
   * chunk; the session hands it to the socket write of that piece.
   */
  takeData(maxBytes: number): { piece: Uint8Array; done: WriteCallback | undefined } | undefined {
    if (this.#outHead >= this.#outQueue.length || maxBytes <= 0) return undefined;
    const entry = this.#outQueue[this.#outHead]!;
    const size = Math.min(maxBytes, entry.chunk.length - entry.offset);
    const piece = size === entry.chunk.length ? entry.chunk : entry.chunk.subarray(entry.offset, entry.offset + size);
    entry.offset += size;
    this.#outBytes -= size;
    this.sendWindow -= size;
    let done: WriteCallback | undefined;
    if (entry.offset === entry.chunk.length) {
      done = entry.done;
      this.#outQueue[this.#outHead++] = undefined as never;
      if (this.#outHead === this.#outQueue.length) {
        this.#outQueue.length = 0;
        this.#outHead = 0;
      }
    }
    return { piece, done };
  }

  /** What is left of a chunk whose first frames are sent already (0 when none is begun). */
  get unsentOfBegunChunk(): number {
    const entry = this.#outQueue[this.#outHead];
    return entry === undefined || entry.offset === 0 ? 0 : entry.chunk.length - entry.offset;
  }

  /** After the session took data: "drain" when the queue fell under the high-water mark. */
  afterSend(): void {
    if (this.#needsDrain && this.#outBytes < highWaterBytes && !this.#isClosed) {
      this.#needsDrain = false;
      this.emit("drain");
    }
  }

  /**
   * Once the queue is empty after end(): "wantTrailers" (the listener answers with
   * sendTrailers()), or an empty END_STREAM DATA frame when no trailers are wanted.
   */
  finishIfEnded(): void {
    if (!this.#isEndQueued || this.#isLocalEnded || this.#isClosed || this.#outHead < this.#outQueue.length) return;
    if (this.#wantsTrailers) {
      this.#wantsTrailers = false;
      if (this.emit("wantTrailers")) return;
    }
    this.#owner.sendEndStream(this);
    this.#localEnded();
  }

  /** The stream is over: RST_STREAM either way, both sides ended, or the session went. */
  terminate(code: number, err?: Error): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.rstCode = code;
    this.#inbox = [];
    // An Error (and its stack trace) only when a pending write needs to hear about it.
    let failure = err;
    for (let i = this.#outHead; i < this.#outQueue.length; i++) {
      const done = this.#outQueue[i]!.done;
      if (!done) continue;
      failure ??= new TunnelError("CLOSED", `http2: stream closed (code ${code})`);
      process.nextTick(done, failure);
    }
    this.#outQueue.length = 0;
    this.#outHead = 0;
    this.#outBytes = 0;
    this.#owner.streamClosed(this);
    if (err) process.nextTick(() => this.listenerCount("error") > 0 && this.emit("error", err));
    process.nextTick(() => this.emit("close"));
  }

  #localEnded(): void {
    this.#isLocalEnded = true;
    if (this.#isClientSide) {
      if (this.#hasEmittedEnd) this.#finishClientStream();
      return;
    }
    if (this.#isRemoteEnded && !this.#isClosed) {
      // Both sides are done; "end" still reaches a reader that has not seen it.
      this.#scheduleDelivery();
      this.terminate(Http2ErrorCode.NO_ERROR);
    }
  }

  #scheduleDelivery(): void {
    if (this.#isDeliveryScheduled) return;
    this.#isDeliveryScheduled = true;
    process.nextTick(() => {
      this.#isDeliveryScheduled = false;
      this.#deliverQueued();
    });
  }

  #deliverQueued(): void {
    while (this.#isFlowing && this.#inbox.length > 0) {
      this.#deliver(this.#inbox.shift()!);
    }
    if (this.#isFlowing && this.#isRemoteEnded && this.#inbox.length === 0 && !this.#hasEmittedEnd && this.listenerCount("data") > 0) {
      this.#hasEmittedEnd = true;
      this.emit("end");
      if (this.#isClientSide) this.#finishClientStream();
    }
  }

  // A client's stream ends once the server's END_STREAM (a gRPC call's trailers) and every byte
  // before it were read: the server's last messages must not be dropped because the reader was
  // paused. Our side, if still open, is cut with RST_STREAM NO_ERROR, as grpc-go's client does.
  #finishClientStream(): void {
    if (this.#isClosed) return;
    if (!this.#isLocalEnded) this.#owner.sendReset(this.id, Http2ErrorCode.NO_ERROR);
    this.terminate(Http2ErrorCode.NO_ERROR);
  }

  #deliver(payload: Uint8Array): void {
    this.emit("data", payload);
    this.#consumed(payload.length);
  }

  // Credit goes back once half the window is consumed, as nghttp2 and grpc-go do: fewer frames,
  // and a reader that stops stops the peer after one window.
  #consumed(bytes: number): void {
    if (bytes <= 0 || this.#isRemoteEnded || this.#isClosed) return;
    this.#unackedBytes += bytes;
    if (this.#unackedBytes * 2 < this.#owner.streamWindowBytes) return;
    this.#receiveWindow += this.#unackedBytes;
    this.#owner.sendWindowUpdate(this.id, this.#unackedBytes);
    this.#unackedBytes = 0;
  }
}

export function toHeaderList(headers: OutgoingHeaders): HeaderList {
  const pseudo: HeaderList = [];
  const regular: HeaderList = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    const target = key.startsWith(":") ? pseudo : regular;
    if (Array.isArray(value)) for (const v of value as readonly string[]) target.push([key, v]);
    else target.push([key, String(value)]);
  }
  // RFC 9113 §8.3: pseudo-header fields come first.
  return pseudo.concat(regular);
}
