// One HTTP/2 connection (RFC 9113), written for gRPC, either side of it.
//
// Server side: the frontend's kube-apiserver opens one connection per proxied TCP connection
// (konnectivity.md §1.5), and node:http2 spends ~22 KiB of native memory on each (nghttp2
// allocates a 16 KiB frame buffer per session); this one holds a few hundred bytes of JavaScript
// objects besides the socket. The agent port runs on it too.
//
// Client side (role "client"): the agent's link to its servers, one long stream carrying every
// tunnelled byte, where node:http2 costs CPU per MB on top of TLS (docs/benchmarks.md).
//
//   server: preface ──client preface──▶ settings ──peer SETTINGS──▶ open ──close()/GOAWAY──▶ closing ──no streams──▶ closed
//   client:              (preface sent) settings ──peer SETTINGS──▶ open ──close()/GOAWAY──▶ closing ──no streams──▶ closed
//                                                                     └──destroy() / connection error / socket gone──▶ closed
//
// What it does: SETTINGS both ways (ours sent at once), HPACK in both directions (hpack.ts),
// streams opened by HEADERS (+ CONTINUATION) from the client (request()), responses and
// trailers read by the client, DATA with connection and stream flow control, WINDOW_UPDATE,
// PING (answered; ping() for keepalive), RST_STREAM, GOAWAY both ways, PRIORITY and unknown
// frames ignored. Connection errors send GOAWAY with the code and close; stream errors send
// RST_STREAM. No server push (a client announces SETTINGS_ENABLE_PUSH 0), no HTTP/1.1 upgrade.
import type * as net from "node:net";
import { TunnelError } from "../protocol/tunnel-error.js";
import { encodeHeaderBlock, HpackDecoder, type HeaderList } from "./hpack.js";
import {
  clientPreface, defaultWindowBytes, encodeFrame, Flag, FrameType, frameHeader, frameHeaderBytes, goawayPayload, Http2ErrorCode,
  maxMaxFrameBytes, maxWindowBytes, minMaxFrameBytes, rstStreamPayload, Setting, settingsPayload, windowUpdatePayload,
} from "./http2-frame.js";
import { Http2Stream, toHeaderList, type OutgoingHeaders, type StreamOwner } from "./http2-stream.js";
import { SlotEmitter } from "./slot-emitter.js";
import { StreamTable } from "./stream-table.js";

export interface Http2SessionOptions {
  /** Which side of the connection this is; default "server". A client writes the preface. */
  readonly role?: "server" | "client";
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: how much a peer may send on one stream before we credit it. */
  readonly streamWindowBytes: number;
  /** The connection's receive window, opened with a WINDOW_UPDATE right after our SETTINGS. */
  readonly sessionWindowBytes: number;
  /** Our SETTINGS_MAX_FRAME_SIZE. */
  readonly maxFrameBytes: number;
  /** Server: streams a client may have open at once. Client: not announced (no pushes). */
  readonly maxConcurrentStreams: number;
  readonly maxHeaderListBytes: number;
  /**
   * DATA is written while the socket holds less than this (default 16 KiB, the socket's own
   * high-water mark). A connection that carries many tunnels (the agent link) wants more: at 16
   * KiB every frame or two was a TLS write and a syscall, ~20 writes per MB against ~9 for
   * node:http2, and 3.7 against 2.3 ms of the agent's CPU per MB sent (2026-11-26); 128 KiB there.
   * A connection per tunnel (the gRPC frontend) keeps the default, so 10,000 slow readers do not
   * hold 128 KiB each; a small packet queued behind waits for at most this much to leave. A
   * chunk whose first frame went out below the limit is finished past it (#sendOne).
   */
  readonly socketBufferBytes?: number;
}

type State = "preface" | "settings" | "open" | "closing" | "closed";

/** A received header block, as node:http2 passes it: an object for lookups and the raw list. */
export type IncomingHeaders = Record<string, string>;

const headerTableBytes = 4096;
// Our DATA waits in its stream while the socket holds socketBufferBytes (and a chunk's tail): more
// unsent than this beyond those is answers to the peer's frames (acks, responses, RST_STREAMs)
// that it does not read while it sends more (#checkPeerReads).
const maxUnsentAnswerBytes = 1024 * 1024;
// As nghttp2 (node:http2): more settings in one frame is a peer making us work (ENHANCE_YOUR_CALM).
const maxSettingsPerFrame = 32;
// CVE-2023-44487, rapid reset: streams a client may reset, at once and then per second, as nghttp2
// allows; each one ran a handler that the reset threw away.
const peerResetBurst = 1000;
const peerResetsPerSecond = 33;
// Streams we reset, remembered so that frames the peer sent before it saw the RST_STREAM are
// ignored (RFC 9113 §5.1) rather than taken for frames on a stream closed long ago.
const rememberedResetStreams = 100;
/** The most of a begun chunk that is still sent past the socket limit (#sendOne): a tunnel DATA packet. */
const maxChunkTailBytes = 65 * 1024;
// RFC 9113 §8.2.2: connection-specific fields make a request malformed.
const connectionSpecific = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

const sessionOfSocket = Symbol("http2ServerSession");
type SessionSocket = net.Socket & { [sessionOfSocket]?: Http2Session };

class ConnectionError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

class StreamError extends Error {
  constructor(readonly streamId: number, readonly code: number, message: string) {
    super(message);
  }
}

/**
 * Events: "stream" (server: stream, headers, flags, raw header list), "goaway" (error code, last
 * stream id, debug data of a peer's GOAWAY), "ping" (payload of a peer's PING), "error" (a
 * connection error, before "close"), "close" (reason).
 */
export type SessionEventName = "stream" | "goaway" | "ping" | "error" | "close";

export class Http2Session extends SlotEmitter<SessionEventName> implements StreamOwner {
  readonly socket: net.Socket;
  readonly streamWindowBytes: number;
  readonly #options: Http2SessionOptions;
  readonly #isClient: boolean;
  readonly #socketBufferBytes: number;
  readonly #decoder: HpackDecoder;
  readonly #streams = new StreamTable<Http2Stream>();
  #state: State = "preface";
  // Receive buffer: chunks not yet forming a whole frame.
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  // A DATA frame whose payload is still arriving: its pieces go to the stream as they come, so a
  // frame that spans socket reads is not joined into a new buffer first (that copy, and the
  // garbage it made, was ~10 % of the server's busy time in a gRPC upload).
  #inData: { readonly streamId: number; stream: Http2Stream | undefined; left: number; readonly isEnd: boolean } | undefined;
  #continuation: { streamId: number; flags: number; dependsOnItself: boolean; fragments: Buffer[]; bytes: number } | undefined;
  /** Server: the highest stream the peer opened. Client: the highest we opened. */
  #lastStreamId = 0;
  /** The lowest last stream ID our GOAWAYs named: the peer's streams above it were ignored. */
  #goawayLastStreamId = 2 ** 31;
  #peerMaxConcurrentStreams = Number.POSITIVE_INFINITY;
  #receiveWindow: number;
  #unackedBytes = 0;
  #sendWindow = defaultWindowBytes;
  #peerInitialWindow = defaultWindowBytes;
  #peerMaxFrameBytes = minMaxFrameBytes;
  #needsTableSizeUpdate = true;
  #sendQueue: Http2Stream[] = [];
  #isFlushing = false;
  #isCorked = false;
  #pings: Array<{ payload: Buffer; sentAt: bigint; callback: (err: Error | null, durationMs: number, payload: Buffer) => void }> = [];
  #closeReason: Error | undefined;
  /** Server: the client sent GOAWAY, so it is closing the connection itself. */
  #isPeerClosing = false;
  #destroyTimer: NodeJS.Timeout | undefined;
  /** Server: resets the client may still make (#countPeerReset), as of #peerResetsAt (performance.now()). */
  #peerResetsLeft = peerResetBurst;
  #peerResetsAt = 0;
  /** Server: the streams we reset last, oldest first; made at the first reset. */
  #resetStreamIds: number[] | undefined;

  constructor(socket: net.Socket, options: Http2SessionOptions) {
    super();
    this.socket = socket;
    this.#options = options;
    this.#isClient = options.role === "client";
    this.#socketBufferBytes = options.socketBufferBytes ?? 16 * 1024;
    this.streamWindowBytes = options.streamWindowBytes;
    this.#receiveWindow = defaultWindowBytes;
    this.#decoder = new HpackDecoder({ maxTableBytes: headerTableBytes, maxHeaderListBytes: options.maxHeaderListBytes });
    // Shared listeners that find the session through the socket: no closures per connection.
    (socket as SessionSocket)[sessionOfSocket] = this;
    socket.on("data", Http2Session.#onSocketData);
    socket.on("drain", Http2Session.#onSocketDrain);
    socket.on("end", Http2Session.#onSocketEnd);
    socket.on("error", Http2Session.#onSocketError);
    socket.on("close", Http2Session.#onSocketClosed);
    if (this.#isClient) {
      // The preface, then our SETTINGS; the server's SETTINGS must be its first frame.
      this.#state = "settings";
      this.#write(clientPreface);
    }
    this.#sendSettings();
  }

  static #onSocketData(this: SessionSocket, chunk: Buffer): void {
    this[sessionOfSocket]!.#onData(chunk);
  }

  static #onSocketDrain(this: SessionSocket): void {
    this[sessionOfSocket]!.#flush();
  }

  static #onSocketEnd(this: SessionSocket): void {
    this[sessionOfSocket]!.#onPeerEnd();
  }

  static #onSocketError(this: SessionSocket, err: Error): void {
    this[sessionOfSocket]!.destroy(err);
  }

  static #onSocketClosed(this: SessionSocket): void {
    this[sessionOfSocket]!.#onSocketClose();
  }

  get closed(): boolean {
    return this.#state === "closing" || this.#state === "closed";
  }

  get destroyed(): boolean {
    return this.#state === "closed";
  }

  /** GOAWAY NO_ERROR: open streams run to their end, newer ones are refused, then the socket closes. */
  close(): void {
    if (this.closed) return;
    this.#state = "closing";
    this.goaway(Http2ErrorCode.NO_ERROR, this.#lastPeerStreamId);
    this.#closeIfIdle();
  }

  /** Closes now: GOAWAY (INTERNAL_ERROR when `err` is given), every stream reset, the socket destroyed. */
  destroy(err?: Error, code: number = err ? Http2ErrorCode.INTERNAL_ERROR : Http2ErrorCode.NO_ERROR, debug?: string): void {
    if (this.#state === "closed") return;
    // No GOAWAY for a peer that never sent the preface: it does not speak HTTP/2. Nor, unless
    // there is an error to report, for a client that sent its own GOAWAY: grpc-go (kube-apiserver's
    // konnectivity client) closes the connection right after it, so ours would go into a closed
    // socket. On a Unix socket that write fails with EPIPE at once, and Node formats the stack
    // trace of every failed socket write: ~2.5 % of the server's samples in the gRPC GET row.
    if (this.#state !== "preface" && this.socket.writable && !(this.#isPeerClosing && err === undefined)) {
      this.goaway(code, this.#lastPeerStreamId, debug === undefined ? undefined : Buffer.from(debug.slice(0, 200)));
    }
    this.#state = "closed";
    this.#closeReason ??= err;
    this.#endStreams();
    this.#failPings();
    this.#uncork();
    this.socket.end();
    // Give the GOAWAY a moment to leave; a peer that does not close its side is cut.
    if (!this.socket.destroyed) this.#destroyTimer = setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  goaway(code: number, lastStreamId: number, debug?: Uint8Array): void {
    if (this.#state === "closed" || this.socket.destroyed) return;
    this.#goawayLastStreamId = Math.min(this.#goawayLastStreamId, lastStreamId);
    this.#write(encodeFrame(FrameType.GOAWAY, 0, 0, goawayPayload(lastStreamId, code, debug)));
  }

  /**
   * Client: opens a stream with a request's HEADERS (pseudo-headers first, as given). Its
   * response arrives as the stream's "response" event (headers, flags, raw list), trailers as
   * "trailers". Throws once the session is closing or the server's stream limit is reached.
   */
  request(headers: OutgoingHeaders): Http2Stream {
    if (!this.#isClient) throw new TunnelError("PROTOCOL", "http2: only a client opens streams");
    if (this.#state === "closing" || this.#state === "closed") throw new TunnelError("CLOSED", "http2: the session is closing; open a new one");
    if (this.#streams.size >= this.#peerMaxConcurrentStreams) {
      throw new TunnelError("LIMIT", `http2: the server allows ${this.#peerMaxConcurrentStreams} concurrent streams, all in use`);
    }
    const id = this.#lastStreamId === 0 ? 1 : this.#lastStreamId + 2;
    if (id > 0x7fffffff) throw new TunnelError("LIMIT", "http2: stream ids exhausted; open a new session");
    const stream = new Http2Stream(id, this, this.#peerInitialWindow, false, true);
    this.#lastStreamId = id;
    this.#streams.add(stream);
    this.sendHeaders(stream, toHeaderList(headers), false);
    return stream;
  }

  /** Sends a PING; `callback` gets the round trip once the ACK arrives. */
  ping(callback: (err: Error | null, durationMs: number, payload: Buffer) => void): boolean {
    if (this.#state === "closed") return false;
    const payload = Buffer.allocUnsafe(8);
    payload.writeBigUInt64BE(process.hrtime.bigint() & 0xffffffffffffffffn);
    this.#pings.push({ payload, sentAt: process.hrtime.bigint(), callback });
    this.#write(encodeFrame(FrameType.PING, 0, 0, payload));
    return true;
  }

  // ---- StreamOwner ----

  sendHeaders(stream: Http2Stream, headers: HeaderList, endStream: boolean): void {
    if (this.#state === "closed") return;
    let block = encodeHeaderBlock(headers);
    if (this.#needsTableSizeUpdate) {
      // We never index, so our table is empty at any size: announce 0 once, and again after the
      // peer changes SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §4.2), which some decoders insist on.
      this.#needsTableSizeUpdate = false;
      block = Buffer.concat([Buffer.from([0x20]), block]);
    }
    const endFlag = endStream ? Flag.END_STREAM : 0;
    if (block.length <= this.#peerMaxFrameBytes) {
      this.#write(encodeFrame(FrameType.HEADERS, endFlag | Flag.END_HEADERS, stream.id, block));
      return;
    }
    for (let offset = 0; offset < block.length; offset += this.#peerMaxFrameBytes) {
      const fragment = block.subarray(offset, offset + this.#peerMaxFrameBytes);
      const isLast = offset + this.#peerMaxFrameBytes >= block.length;
      const type = offset === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (offset === 0 ? endFlag : 0) | (isLast ? Flag.END_HEADERS : 0);
      this.#write(encodeFrame(type, flags, stream.id, fragment));
    }
  }

  sendReset(streamId: number, code: number): void {
    if (this.#state === "closed") return;
    if (!this.#isClient) {
      const ids = (this.#resetStreamIds ??= []);
      if (ids.length === rememberedResetStreams) ids.shift();
      ids.push(streamId);
    }
    this.#write(encodeFrame(FrameType.RST_STREAM, 0, streamId, rstStreamPayload(code)));
  }

  sendWindowUpdate(streamId: number, increment: number): void {
    if (this.#state === "closed") return;
    this.#write(encodeFrame(FrameType.WINDOW_UPDATE, 0, streamId, windowUpdatePayload(increment)));
  }

  sendEndStream(stream: Http2Stream): void {
    if (this.#state === "closed") return;
    this.#write(frameHeader(0, FrameType.DATA, Flag.END_STREAM, stream.id));
  }

  wantsToSend(stream: Http2Stream): void {
    this.#queueToSend(stream);
    this.#flush();
  }

  #queueToSend(stream: Http2Stream): void {
    if (stream.isQueuedToSend) return;
    stream.isQueuedToSend = true;
    this.#sendQueue.push(stream);
  }

  streamClosed(stream: Http2Stream): void {
    this.#streams.delete(stream.id);
    if (stream.isQueuedToSend) {
      stream.isQueuedToSend = false;
      this.#sendQueue = this.#sendQueue.filter((s) => s !== stream);
    }
    this.#closeIfIdle();
  }

  // ---- sending ----

  #write(frame: Buffer, done?: (err?: Error | null) => void): void {
    this.#cork();
    this.socket.write(frame, done);
  }

  // Frames written in one turn of the event loop leave in one writev.
  #cork(): void {
    if (this.#isCorked) return;
    this.#isCorked = true;
    this.socket.cork();
    process.nextTick(() => this.#uncork());
  }

  #uncork(): void {
    if (!this.#isCorked) return;
    this.#isCorked = false;
    this.socket.uncork();
  }

  get #lastPeerStreamId(): number {
    // A client allows no pushes, so the server opened no stream that a GOAWAY could name.
    return this.#isClient ? 0 : this.#lastStreamId;
  }

  #sendSettings(): void {
    const o = this.#options;
    const settings: Array<[number, number]> = [
      this.#isClient ? [Setting.ENABLE_PUSH, 0] : [Setting.MAX_CONCURRENT_STREAMS, o.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, o.streamWindowBytes],
      [Setting.MAX_FRAME_SIZE, o.maxFrameBytes],
      [Setting.MAX_HEADER_LIST_SIZE, o.maxHeaderListBytes],
    ];
    this.#write(encodeFrame(FrameType.SETTINGS, 0, 0, settingsPayload(settings)));
    if (o.sessionWindowBytes > defaultWindowBytes) {
      this.#write(encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdatePayload(o.sessionWindowBytes - defaultWindowBytes)));
      this.#receiveWindow = o.sessionWindowBytes;
    }
  }

  // Round-robin over streams with data, one frame each per turn, while both windows and the
  // socket allow: a bulk stream cannot starve the others. A stream blocked on a window leaves
  // the queue; the WINDOW_UPDATE that unblocks it puts it back.
  #flush(): void {
    if (this.#isFlushing || this.#state === "closed") return;
    this.#isFlushing = true;
    const hadQueued = this.#sendQueue.length > 0;
    try {
      while (this.#sendQueue.length > 0 && this.socket.writableLength < this.#socketBufferBytes) {
        const stream = this.#sendQueue.shift()!;
        stream.isQueuedToSend = false;
        // A "drain" listener that wrote during #sendOne has queued the stream again already;
        // a second entry would be a second turn per round, and a longer queue to shift.
        if (this.#sendOne(stream) && !stream.isQueuedToSend) {
          stream.isQueuedToSend = true;
          this.#sendQueue.push(stream);
        }
      }
      // Let the grown backing store go: an idle session keeps an empty array (10,000 connections).
      if (hadQueued && this.#sendQueue.length === 0) this.#sendQueue = [];
    } finally {
      this.#isFlushing = false;
    }
  }

  /**
   * One DATA frame for `stream`, or its end once nothing is queued; true when it can send more now.
   * A chunk begun under the socket limit is finished in the same writev when at most
   * maxChunkTailBytes of it is left, past the limit if need be: a 64 KiB DATA packet is five
   * frames to a peer with 16 KiB frames (kube-apiserver), or 64 KiB and ~20 bytes to one with
   * 64 KiB frames, and stopping at the limit sent each frame in a syscall of its own, the last of
   * ~20 bytes, waking the reader once more for it.
   */
  #sendOne(stream: Http2Stream): boolean {
    if (stream.closed) return false;
    let taken = stream.takeData(Math.min(stream.sendWindow, this.#sendWindow, this.#peerMaxFrameBytes));
    if (taken) {
      while (taken) {
        this.#sendWindow -= taken.piece.length;
        this.#cork();
        this.socket.write(frameHeader(taken.piece.length, FrameType.DATA, 0, stream.id));
        this.socket.write(taken.piece, taken.done);
        const left = stream.unsentOfBegunChunk;
        taken = left > 0 && left <= maxChunkTailBytes && this.socket.writableLength >= this.#socketBufferBytes
          ? stream.takeData(Math.min(stream.sendWindow, this.#sendWindow, this.#peerMaxFrameBytes))
          : undefined;
      }
      stream.afterSend();
    }
    if (stream.writableLength > 0) return stream.sendWindow > 0 && this.#sendWindow > 0;
    stream.finishIfEnded();
    return false;
  }

  // ---- receiving ----

  #onData(chunk: Buffer): void {
    if (this.#state === "closed") return;
    if (this.#inData) {
      const n = Math.min(this.#inData.left, chunk.length);
      try {
        this.#dataPiece(chunk.subarray(0, n));
      } catch (err) {
        this.#failOn(err);
        return;
      }
      if (this.destroyed || n === chunk.length) return;
      chunk = chunk.subarray(n);
    }
    let buffer = chunk;
    if (this.#pendingBytes > 0) {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
      if (this.#pendingBytes < this.#bytesNeeded(this.#pending[0]!)) return;
      buffer = Buffer.concat(this.#pending, this.#pendingBytes);
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    let offset = 0;
    try {
      if (this.#state === "preface") {
        if (buffer.length < clientPreface.length) {
          if (!clientPreface.subarray(0, buffer.length).equals(buffer)) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "not an HTTP/2 client preface");
          this.#keep(buffer);
          return;
        }
        if (!clientPreface.equals(buffer.subarray(0, clientPreface.length))) {
          throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "not an HTTP/2 client preface");
        }
        offset = clientPreface.length;
        this.#state = "settings";
      }
      while (offset + frameHeaderBytes <= buffer.length && !this.destroyed) {
        const length = (buffer[offset]! << 16) | (buffer[offset + 1]! << 8) | buffer[offset + 2]!;
        if (length > this.#options.maxFrameBytes) {
          throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${this.#options.maxFrameBytes}`);
        }
        const type = buffer[offset + 3]!;
        const flags = buffer[offset + 4]!;
        const streamId = buffer.readUInt32BE(offset + 5) & 0x7fffffff;
        if (offset + frameHeaderBytes + length > buffer.length) {
          // An unpadded DATA frame streams its payload; anything else waits until it is whole.
          if (type === FrameType.DATA && (flags & Flag.PADDED) === 0 && this.#state === "open" && !this.#continuation) {
            const piece = buffer.subarray(offset + frameHeaderBytes);
            offset = buffer.length;
            this.#startData(flags, streamId, length);
            this.#dataPiece(piece);
          }
          break;
        }
        const payload = buffer.subarray(offset + frameHeaderBytes, offset + frameHeaderBytes + length);
        offset += frameHeaderBytes + length;
        try {
          this.#onFrame(type, flags, streamId, payload);
        } catch (err) {
          if (!(err instanceof StreamError)) throw err;
          this.#resetStream(err);
        }
      }
    } catch (err) {
      this.#failOn(err);
      return;
    }
    if (offset < buffer.length && !this.destroyed) this.#keep(buffer.subarray(offset));
  }

  #failOn(err: unknown): void {
    if (err instanceof ConnectionError) return this.#connectionError(err.code, err.message);
    // hpack.ts reports a bad header block; RFC 9113 §4.3: COMPRESSION_ERROR.
    if (err instanceof TunnelError && err.message.startsWith("hpack:")) return this.#connectionError(Http2ErrorCode.COMPRESSION_ERROR, err.message);
    // A bug here or in a listener (a "data" handler runs inside the receive loop) costs this
    // connection, not the process and every other connection in it.
    this.#connectionError(Http2ErrorCode.INTERNAL_ERROR, `internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  }

  /** A stream error: RST_STREAM, and the stream ends; the connection goes on. */
  #resetStream(err: StreamError): void {
    this.sendReset(err.streamId, err.code);
    this.#streams.get(err.streamId)?.terminate(err.code, new TunnelError("PROTOCOL", `http2: ${err.message}`));
  }

  #keep(rest: Buffer): void {
    this.#pending = [rest];
    this.#pendingBytes = rest.length;
  }

  #bytesNeeded(first: Buffer): number {
    if (this.#state === "preface") return clientPreface.length;
    if (first.length < frameHeaderBytes) return frameHeaderBytes;
    return frameHeaderBytes + ((first[0]! << 16) | (first[1]! << 8) | first[2]!);
  }

  #connectionError(code: number, message: string): void {
    const err = new TunnelError("PROTOCOL", `http2: ${message}`);
    if (this.listenerCount("error") > 0) this.emit("error", err);
    this.destroy(err, code, message);
  }

  #onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    this.#checkPeerReads();
    if (this.#continuation && type !== FrameType.CONTINUATION) {
      throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `expected CONTINUATION for stream ${this.#continuation.streamId}, got frame type ${type}`);
    }
    if (this.#state === "settings" && type !== FrameType.SETTINGS) {
      throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "the first frame after the preface must be SETTINGS");
    }
    switch (type) {
      case FrameType.DATA: return this.#onDataFrame(flags, streamId, payload);
      case FrameType.HEADERS: return this.#onHeadersFrame(flags, streamId, payload);
      case FrameType.PRIORITY: return this.#onPriority(streamId, payload);
      case FrameType.RST_STREAM: return this.#onRstStream(streamId, payload);
      case FrameType.SETTINGS: return this.#onSettings(flags, streamId, payload);
      case FrameType.PUSH_PROMISE: throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, this.#isClient ? "PUSH_PROMISE after SETTINGS_ENABLE_PUSH 0" : "a client may not send PUSH_PROMISE");
      case FrameType.PING: return this.#onPing(flags, streamId, payload);
      case FrameType.GOAWAY: return this.#onGoaway(streamId, payload);
      case FrameType.WINDOW_UPDATE: return this.#onWindowUpdate(streamId, payload);
      case FrameType.CONTINUATION: return this.#onContinuation(flags, streamId, payload);
      default: return; // RFC 9113 §5.5: unknown frame types are ignored.
    }
  }

  #isIdle(streamId: number): boolean {
    // A client's peer can open no stream (no pushes): every even stream is idle to it.
    return streamId > this.#lastStreamId || (this.#isClient && streamId % 2 === 0);
  }

  /** Strips padding (RFC 9113 §6.1, §6.2); the pad length must leave room for the content. */
  #unpad(flags: number, payload: Buffer, fixedBytes = 0): Buffer {
    if ((flags & Flag.PADDED) === 0) return payload;
    if (payload.length < 1) throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "padded frame without a pad length");
    const padLength = payload[0]!;
    if (padLength + fixedBytes >= payload.length) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "padding longer than the frame");
    return payload.subarray(1, payload.length - padLength);
  }

  #onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    const stream = this.#acceptData(streamId, payload.length);
    const data = this.#unpad(flags, payload);
    const isEnd = (flags & Flag.END_STREAM) !== 0;
    if (stream) this.#countContent(stream, data.length, isEnd);
    stream?.receiveData(data, payload.length, isEnd);
  }

  /**
   * RFC 9113 §8.1.1: a request whose DATA (padding aside) does not add up to its content-length
   * is malformed, a stream error, found as soon as the DATA passes it or the stream ends short.
   */
  #countContent(stream: Http2Stream, dataBytes: number, isEnd: boolean): void {
    if (stream.contentLeft < 0) return;
    stream.contentLeft -= dataBytes;
    if (stream.contentLeft < 0 || (isEnd && stream.contentLeft > 0)) {
      const got = isEnd && stream.contentLeft > 0 ? "less" : "more";
      stream.contentLeft = -1;
      throw new StreamError(stream.id, Http2ErrorCode.PROTOCOL_ERROR, `malformed request: ${got} DATA than its content-length on stream ${stream.id}`);
    }
  }

  /**
   * The checks and the accounting of a DATA frame of `flowControlled` bytes (padding included),
   * from its header alone; the stream its payload goes to, or undefined: a stream we already
   * closed may still receive what the peer sent meanwhile, which the connection window counts and
   * which goes nowhere.
   */
  #acceptData(streamId: number, flowControlled: number): Http2Stream | undefined {
    if (streamId === 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    if (this.#isIdle(streamId)) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${streamId}`);
    if (flowControlled > this.#receiveWindow) {
      throw new ConnectionError(Http2ErrorCode.FLOW_CONTROL_ERROR, `DATA of ${flowControlled} bytes exceeds the connection window (${this.#receiveWindow})`);
    }
    this.#receiveWindow -= flowControlled;
    this.#consumed(flowControlled);
    const stream = this.#streams.get(streamId);
    if (!stream) return undefined;
    if (stream.isRemoteEnded) throw new StreamError(streamId, Http2ErrorCode.STREAM_CLOSED, `DATA after END_STREAM on stream ${streamId}`);
    if (this.#isClient && !stream.hasResponse) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, `DATA before the response headers on stream ${streamId}`);
    if (!stream.canReceive(flowControlled)) throw new StreamError(streamId, Http2ErrorCode.FLOW_CONTROL_ERROR, `DATA exceeds stream ${streamId}'s window`);
    return stream;
  }

  /** The header of an unpadded DATA frame whose payload arrives in pieces (#dataPiece). */
  #startData(flags: number, streamId: number, length: number): void {
    this.#inData = { streamId, stream: undefined, left: length, isEnd: (flags & Flag.END_STREAM) !== 0 };
    try {
      const stream = this.#acceptData(streamId, length);
      if (stream) this.#countContent(stream, length, this.#inData.isEnd);
      this.#inData.stream = stream;
    } catch (err) {
      // The frame's remaining bytes are read and dropped; a connection error ends everything.
      if (!(err instanceof StreamError)) throw err;
      this.#resetStream(err);
    }
  }

  #dataPiece(piece: Buffer): void {
    const d = this.#inData!;
    d.left -= piece.length;
    if (d.left === 0) this.#inData = undefined;
    // A stream closed meanwhile (by its handler, or a reset) takes no more of the frame.
    if (d.stream && this.#streams.get(d.streamId) === d.stream) d.stream.receiveData(piece, piece.length, d.left === 0 && d.isEnd);
  }

  // The connection window is credited as DATA arrives (each stream's own window is what holds a
  // slow reader back), in steps of half the window.
  #consumed(bytes: number): void {
    this.#unackedBytes += bytes;
    if (this.#unackedBytes * 2 < this.#options.sessionWindowBytes) return;
    this.#receiveWindow += this.#unackedBytes;
    this.sendWindowUpdate(0, this.#unackedBytes);
    this.#unackedBytes = 0;
  }

  #onHeadersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0 || streamId % 2 === 0) {
      throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `HEADERS on stream ${streamId}: ${this.#isClient ? "a server opens no streams without push" : "client streams are odd"}`);
    }
    let fragment = this.#unpad(flags, payload, (flags & Flag.PRIORITY) !== 0 ? 5 : 0);
    let dependsOnItself = false;
    if (flags & Flag.PRIORITY) {
      if (fragment.length < 5) throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for its priority fields");
      // A stream error, raised once the block is decoded (#onHeaderBlock): the HPACK table stays in step.
      dependsOnItself = isSelfDependent(streamId, fragment);
      fragment = fragment.subarray(5);
    }
    if (flags & Flag.END_HEADERS) {
      this.#onHeaderBlock(streamId, flags, fragment, dependsOnItself);
      return;
    }
    this.#continuation = { streamId, flags, dependsOnItself, fragments: [Buffer.from(fragment)], bytes: fragment.length };
  }

  #onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const c = this.#continuation;
    if (!c || c.streamId !== streamId) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `unexpected CONTINUATION on stream ${streamId}`);
    c.fragments.push(Buffer.from(payload));
    c.bytes += payload.length;
    // A header block may not grow without bound while we wait for its end.
    if (c.bytes > 4 * this.#options.maxHeaderListBytes) {
      throw new ConnectionError(Http2ErrorCode.ENHANCE_YOUR_CALM, `header block of stream ${streamId} exceeds ${4 * this.#options.maxHeaderListBytes} bytes`);
    }
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.#continuation = undefined;
    this.#onHeaderBlock(streamId, c.flags, Buffer.concat(c.fragments, c.bytes), c.dependsOnItself);
  }

  #onHeaderBlock(streamId: number, flags: number, block: Buffer, dependsOnItself: boolean): void {
    // Decoded whatever becomes of the stream: the HPACK table must stay in step with the peer's.
    const { headers, isTooLarge } = this.#decoder.decode(block);
    const isEnd = (flags & Flag.END_STREAM) !== 0;
    if (this.#isClient) {
      this.#onResponseBlock(streamId, flags, headers, isTooLarge);
      return;
    }
    if (dependsOnItself) {
      // RFC 9113 §5.3.1. The stream is closed from now on, as any other that we reset.
      if (this.#isIdle(streamId)) this.#lastStreamId = streamId;
      throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, `stream ${streamId} depends on itself`);
    }
    const existing = this.#streams.get(streamId);
    if (existing) {
      // Trailers (RFC 9113 §8.1): they must end the stream.
      if (existing.isRemoteEnded) throw new StreamError(streamId, Http2ErrorCode.STREAM_CLOSED, `HEADERS after END_STREAM on stream ${streamId}`);
      if (!isEnd) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, "a second HEADERS without END_STREAM");
      const malformed = validateTrailers(headers);
      if (malformed !== undefined) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, `malformed trailers: ${malformed}`);
      this.#countContent(existing, 0, true);
      existing.receiveEnd();
      return;
    }
    if (!this.#isIdle(streamId)) {
      // RFC 9113 §5.1: frames on a stream we reset are ignored; the peer may not have seen the RST_STREAM yet.
      if (this.#resetStreamIds?.includes(streamId)) return;
      // RFC 9113 §6.8: so are frames on streams above the last one our GOAWAY named.
      if (streamId > this.#goawayLastStreamId) return;
      throw new ConnectionError(Http2ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${streamId}`);
    }
    this.#lastStreamId = streamId;
    // After our GOAWAY new streams are ignored (RFC 9113 §6.8); the client retries elsewhere.
    if (this.#state !== "open" && this.#state !== "settings") return;
    if (this.#streams.size >= this.#options.maxConcurrentStreams) {
      this.sendReset(streamId, Http2ErrorCode.REFUSED_STREAM);
      return;
    }
    const stream = new Http2Stream(streamId, this, this.#peerInitialWindow, isEnd);
    this.#streams.add(stream);
    if (isTooLarge) {
      stream.respond({ ":status": 431 }, { endStream: true });
      stream.close(Http2ErrorCode.NO_ERROR);
      return;
    }
    const malformed = validateRequestHeaders(headers);
    if (malformed !== undefined) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, `malformed request: ${malformed}`);
    const contentLength = contentLengthOf(headers);
    if (contentLength === null) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, "malformed request: content-length is not one decimal number");
    if (contentLength !== undefined) {
      stream.contentLeft = contentLength;
      if (isEnd) this.#countContent(stream, 0, true);
    }
    const { object, raw } = asIncoming(headers);
    this.emit("stream", stream, object, flags, raw);
  }

  /** Client: a response's headers (1xx skipped), or its trailers. */
  #onResponseBlock(streamId: number, flags: number, headers: HeaderList, isTooLarge: boolean): void {
    if (this.#isIdle(streamId)) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `HEADERS on idle stream ${streamId}`);
    const stream = this.#streams.get(streamId);
    // A stream we reset or closed: frames the server sent meanwhile are dropped (RFC 9113 §5.1).
    if (!stream) return;
    const isEnd = (flags & Flag.END_STREAM) !== 0;
    if (stream.isRemoteEnded) throw new StreamError(streamId, Http2ErrorCode.STREAM_CLOSED, `HEADERS after END_STREAM on stream ${streamId}`);
    if (isTooLarge) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, `the server's header list on stream ${streamId} exceeds ${this.#options.maxHeaderListBytes} bytes`);
    const malformed = validateResponseHeaders(headers, stream.hasResponse);
    if (malformed !== undefined) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, `malformed response: ${malformed}`);
    const { object, raw } = asIncoming(headers);
    if (stream.hasResponse) {
      // Trailers (RFC 9113 §8.1): they must end the stream.
      if (!isEnd) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, "trailers without END_STREAM");
      stream.emit("trailers", object, flags, raw);
    } else {
      const status = Number(object[":status"]);
      if (status >= 100 && status < 200) {
        // Informational (RFC 9113 §8.1): the final response follows; it may not end the stream.
        if (isEnd) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, `END_STREAM on an informational ${status} response`);
        return;
      }
      stream.hasResponse = true;
      stream.emit("response", object, flags, raw);
    }
    if (isEnd) stream.receiveEnd();
  }

  #onPriority(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
    if (payload.length !== 5) throw new StreamError(streamId, Http2ErrorCode.FRAME_SIZE_ERROR, "PRIORITY must be 5 bytes");
    if (isSelfDependent(streamId, payload)) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, `stream ${streamId} depends on itself`);
  }

  #onRstStream(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (payload.length !== 4) throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM must be 4 bytes");
    if (this.#isIdle(streamId)) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
    const stream = this.#streams.get(streamId);
    if (!stream) return;
    if (!this.#isClient) this.#countPeerReset();
    stream.terminate(payload.readUInt32BE(0));
  }

  // A token bucket: peerResetBurst at once, then peerResetsPerSecond. Past it the client is
  // opening streams only to reset them, and each cost us a handler run (CVE-2023-44487).
  #countPeerReset(): void {
    const now = performance.now();
    this.#peerResetsLeft = Math.min(peerResetBurst, this.#peerResetsLeft + ((now - this.#peerResetsAt) * peerResetsPerSecond) / 1000);
    this.#peerResetsAt = now;
    if (this.#peerResetsLeft < 1) {
      throw new ConnectionError(Http2ErrorCode.ENHANCE_YOUR_CALM, `the client resets streams faster than ${peerResetsPerSecond} a second (after a burst of ${peerResetBurst})`);
    }
    this.#peerResetsLeft--;
  }

  #onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & Flag.ACK) {
      if (payload.length !== 0) throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length is not a multiple of 6");
    if (payload.length > 6 * maxSettingsPerFrame) {
      throw new ConnectionError(Http2ErrorCode.ENHANCE_YOUR_CALM, `SETTINGS with ${payload.length / 6} entries (at most ${maxSettingsPerFrame})`);
    }
    if (this.#state === "settings") this.#state = "open";
    // Applied to the streams once, after the loop: only the last value counts.
    let initialWindow: number | undefined;
    for (let i = 0; i < payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      switch (id) {
        case Setting.HEADER_TABLE_SIZE:
          this.#needsTableSizeUpdate = true;
          break;
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
          break;
        case Setting.INITIAL_WINDOW_SIZE:
          if (value > maxWindowBytes) throw new ConnectionError(Http2ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`);
          initialWindow = value;
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          if (this.#isClient) this.#peerMaxConcurrentStreams = value;
          break;
        case Setting.MAX_FRAME_SIZE:
          if (value < minMaxFrameBytes || value > maxMaxFrameBytes) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
          this.#peerMaxFrameBytes = value;
          break;
        default:
          // MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored (RFC 9113 §6.5.2).
          break;
      }
    }
    if (initialWindow !== undefined) this.#applyInitialWindow(initialWindow);
    this.#write(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    this.#flush();
  }

  // RFC 9113 §6.9.2: a new SETTINGS_INITIAL_WINDOW_SIZE changes every open stream's send window.
  #applyInitialWindow(value: number): void {
    const delta = value - this.#peerInitialWindow;
    this.#peerInitialWindow = value;
    this.#streams.forEach((stream) => {
      stream.sendWindow += delta;
      if (stream.sendWindow > maxWindowBytes) throw new ConnectionError(Http2ErrorCode.FLOW_CONTROL_ERROR, "a stream window grew past 2^31-1");
      if (delta > 0 && stream.writableLength > 0) this.#queueToSend(stream);
    });
  }

  #onPing(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "PING on a stream");
    if (payload.length !== 8) throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "PING must be 8 bytes");
    if ((flags & Flag.ACK) === 0) {
      this.#write(encodeFrame(FrameType.PING, Flag.ACK, 0, payload));
      this.emit("ping", Buffer.from(payload));
      return;
    }
    const index = this.#pings.findIndex((p) => p.payload.equals(payload));
    if (index < 0) return;
    const [ping] = this.#pings.splice(index, 1);
    ping!.callback(null, Number(process.hrtime.bigint() - ping!.sentAt) / 1e6, ping!.payload);
  }

  // A peer that sends frames we answer (PINGs and SETTINGS, requests, frames that earn an
  // RST_STREAM) and does not read the answers would have us buffer them without end (nghttp2 caps
  // its outbound queue the same way). Not by reading less: two peers that each wait for the other
  // to read would both stop (docs/benchmarks.md, Http2Session::MaybeStopReading).
  #checkPeerReads(): void {
    if (this.socket.writableLength > this.#socketBufferBytes + maxChunkTailBytes + maxUnsentAnswerBytes) {
      throw new ConnectionError(Http2ErrorCode.ENHANCE_YOUR_CALM, `the peer does not read: ${this.socket.writableLength} bytes unsent, and it keeps sending frames to answer`);
    }
  }

  #onGoaway(streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
    if (payload.length < 8) throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes");
    const lastStreamId = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    const debug = Buffer.from(payload.subarray(8));
    this.emit("goaway", code, lastStreamId, debug);
    if (this.#isClient) return this.#onServerGoaway(code, lastStreamId, debug);
    // The client opens no more streams; ours run to their end (a client closing its channel
    // sends GOAWAY NO_ERROR, grpc-go among them).
    this.#isPeerClosing = true;
    if (this.#state === "open" || this.#state === "settings") this.#state = "closing";
    this.#closeIfIdle();
  }

  /**
   * Client: streams above `lastStreamId` were never processed and end with REFUSED_STREAM (safe
   * to retry elsewhere); with NO_ERROR the others run to their end, with an error code the
   * session ends now, as node:http2 does.
   */
  #onServerGoaway(code: number, lastStreamId: number, debug: Buffer): void {
    if (this.#state === "closed") return;
    if (this.#state === "open" || this.#state === "settings") this.#state = "closing";
    const why = debug.length > 0 ? `: ${debug.toString("latin1").slice(0, 200)}` : "";
    for (const stream of this.#streams.list()) {
      if (stream.id > lastStreamId) stream.terminate(Http2ErrorCode.REFUSED_STREAM, new TunnelError("CLOSED", `http2: the server refused the stream (GOAWAY, last stream ${lastStreamId})${why}`));
    }
    if (code !== Http2ErrorCode.NO_ERROR) {
      this.destroy(new TunnelError("CLOSED", `http2: the server sent GOAWAY with error code ${code}${why}`), Http2ErrorCode.NO_ERROR);
      return;
    }
    this.#closeIfIdle();
  }

  #onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE must be 4 bytes");
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection");
      const wasBlocked = this.#sendWindow <= 0;
      this.#sendWindow += increment;
      if (this.#sendWindow > maxWindowBytes) throw new ConnectionError(Http2ErrorCode.FLOW_CONTROL_ERROR, "the connection window grew past 2^31-1");
      // A stream leaves the send queue only when a window stops it (#flush): while the
      // connection's was open, those out of the queue wait for their own.
      if (wasBlocked) this.#streams.forEach((stream) => (stream.writableLength > 0 || stream.hasQueuedOutput) && this.#queueToSend(stream));
      this.#flush();
      return;
    }
    if (this.#isIdle(streamId)) throw new ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
    const stream = this.#streams.get(streamId);
    if (!stream) return;
    if (increment === 0) throw new StreamError(streamId, Http2ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
    stream.sendWindow += increment;
    if (stream.sendWindow > maxWindowBytes) throw new StreamError(streamId, Http2ErrorCode.FLOW_CONTROL_ERROR, "the stream window grew past 2^31-1");
    if (stream.hasQueuedOutput) this.wantsToSend(stream);
  }

  #closeIfIdle(): void {
    if (this.#state !== "closing" || this.#streams.size > 0) return;
    this.destroy();
  }

  // A server's handler learns that its stream ended (CANCEL); a client's caller learns why its
  // call broke, which gRPC reports as UNAVAILABLE.
  #endStreams(): void {
    if (!this.#isClient) {
      if (this.#streams.size === 0) return;
      // Cancelled, as grpc-go's server reports it, but saying why: the connection went (a peer
      // killed, a reset), not the client ending its call with RST_STREAM.
      const why = new TunnelError("CANCELLED", `grpc: the connection closed under the call${this.#closeReason ? ` (${this.#closeReason.message})` : ""}`);
      for (const stream of this.#streams.list()) stream.terminate(Http2ErrorCode.CANCEL, why);
      return;
    }
    const why = this.#closeReason ?? new TunnelError("CLOSED", "http2: the connection closed");
    for (const stream of this.#streams.list()) stream.terminate(Http2ErrorCode.INTERNAL_ERROR, why);
  }

  #failPings(): void {
    const pings = this.#pings;
    this.#pings = [];
    for (const ping of pings) ping.callback(new TunnelError("CLOSED", "http2: the connection closed before the PING ack"), 0, ping.payload);
  }

  // The peer closed its side of the connection (HTTP/2 peers close both ways): nothing sent now
  // would be read. A GOAWAY and the frames corked this tick would only fail with EPIPE, and Node
  // formats the stack trace of every failed socket write (writable.js reads err.stack): that was
  // ~8 % of the server's time in the gRPC GET row, where each client closes after its response.
  #onPeerEnd(): void {
    if (this.#state === "closed") return;
    this.#isCorked = false;
    this.socket.destroy();
  }

  #onSocketClose(): void {
    clearTimeout(this.#destroyTimer);
    if (this.#state !== "closed") {
      this.#state = "closed";
      this.#endStreams();
      this.#failPings();
    }
    this.emit("close", this.#closeReason);
  }
}

/** A decoded header list as node:http2 passes it on: an object (repeated fields joined with ", ") and the raw list. */
function asIncoming(headers: HeaderList): { object: IncomingHeaders; raw: string[] } {
  const object: IncomingHeaders = {};
  const raw: string[] = [];
  for (const [name, value] of headers) {
    object[name] = object[name] === undefined ? value : `${object[name]}, ${value}`;
    raw.push(name, value);
  }
  return { object, raw };
}

/** RFC 9113 §5.3.1: a stream may not depend on itself (PRIORITY, or HEADERS' priority fields): a stream error. */
function isSelfDependent(streamId: number, priority: Buffer): boolean {
  return (priority.readUInt32BE(0) & 0x7fffffff) === streamId;
}

// RFC 9113 §8.2.1: a name is visible ASCII without upper case (a pseudo-header's leading ':'
// aside); a value holds no NUL, CR or LF. Its rule against white space at either end of a value
// is not enforced: a gRPC status message may end in a space (grpc-status.ts leaves spaces as they
// are), and such a value smuggles nothing.
const fieldName = /^:?[\x21-\x40\x5b-\x7e]+$/;
const badFieldValue = /[\0\r\n]/;

/** Why one field is malformed (RFC 9113 §8.2.1), or undefined. */
function checkField(name: string, value: string): string | undefined {
  if (name !== name.toLowerCase()) return `header name ${JSON.stringify(name)} is not lower-case`;
  if (!fieldName.test(name)) return `header name ${JSON.stringify(name)} is empty or has a character it may not`;
  if (badFieldValue.test(value)) return `the value of ${name} has NUL, CR or LF`;
  return undefined;
}

/** RFC 9113 §8.1: why a request's trailers are malformed, or undefined. */
function validateTrailers(headers: HeaderList): string | undefined {
  for (const [name, value] of headers) {
    if (name.startsWith(":")) return `pseudo-header ${name} in trailers`;
    const malformed = checkField(name, value);
    if (malformed !== undefined) return malformed;
    if (connectionSpecific.has(name)) return `connection-specific header ${name}`;
  }
  return undefined;
}

/** RFC 9113 §8.3.2 and §8.2: why a response's (or its trailers') header list is malformed, or undefined. */
function validateResponseHeaders(headers: HeaderList, isTrailers: boolean): string | undefined {
  let hasStatus = false;
  let hasRegular = false;
  for (const [name, value] of headers) {
    const malformed = checkField(name, value);
    if (malformed !== undefined) return malformed;
    if (name.startsWith(":")) {
      if (isTrailers) return `pseudo-header ${name} in trailers`;
      if (hasRegular) return `pseudo-header ${name} after a regular header`;
      if (name !== ":status") return `unknown pseudo-header ${name}`;
      if (hasStatus) return "repeated :status";
      if (!/^[1-9]\d\d$/.test(value)) return `:status ${JSON.stringify(value)}`;
      hasStatus = true;
      continue;
    }
    hasRegular = true;
    if (connectionSpecific.has(name)) return `connection-specific header ${name}`;
  }
  if (!isTrailers && !hasStatus) return "no :status";
  return undefined;
}

/** The request's content-length; undefined without one, null when it is not one decimal number (repeats must agree). */
function contentLengthOf(headers: HeaderList): number | undefined | null {
  let value: string | undefined;
  for (const [name, v] of headers) {
    if (name !== "content-length") continue;
    if (value !== undefined && v !== value) return null;
    value = v;
  }
  if (value === undefined) return undefined;
  return /^\d{1,15}$/.test(value) ? Number(value) : null;
}

/** RFC 9113 §8.3.1 and §8.2: why a request's header list is malformed, or undefined. */
function validateRequestHeaders(headers: HeaderList): string | undefined {
  let hasRegular = false;
  const seen = new Set<string>();
  for (const [name, value] of headers) {
    const malformed = checkField(name, value);
    if (malformed !== undefined) return malformed;
    if (name.startsWith(":")) {
      if (name === ":path" && value === "") return "empty :path";
      if (hasRegular) return `pseudo-header ${name} after a regular header`;
      if (name !== ":method" && name !== ":scheme" && name !== ":path" && name !== ":authority") return `unknown pseudo-header ${name}`;
      if (seen.has(name)) return `repeated ${name}`;
      seen.add(name);
      continue;
    }
    hasRegular = true;
    if (connectionSpecific.has(name)) return `connection-specific header ${name}`;
    if (name === "te" && value !== "trailers") return `te: ${value}`;
  }
  if (!seen.has(":method")) return "no :method";
  const method = headers.find(([n]) => n === ":method")![1];
  if (method !== "CONNECT" && (!seen.has(":scheme") || !seen.has(":path"))) return "no :scheme or :path";
  return undefined;
}
