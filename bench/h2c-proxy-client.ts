// The benchmark's client of the gRPC frontend: kube-apiserver's way (one HTTP/2 connection and
// one /ProxyService/Proxy stream per dial, DIAL_REQ → DIAL_RSP, DATA both ways, CLOSE_REQ →
// CLOSE_RSP), with HTTP/2 framed by hand over the Unix socket instead of through node:http2.
//
// Why: the client shares the machine's cores with the server and agent it measures. Through
// node:http2 (src/tunnel/proxy-client.ts) it took 2.8–3.5 ms of CPU per MB and 1.2 ms per request,
// as much as the server; kube-apiserver's grpc-go client, the one the row stands for, costs a
// fraction of that. This one keeps to what a konnectivity stream needs: cleartext HTTP/2 with
// prior knowledge, one stream, both flow-control windows, SETTINGS / PING / WINDOW_UPDATE /
// RST_STREAM / GOAWAY, and HPACK decoding of the answers (src/transport/hpack.ts).
import net from "node:net";
import { randomBytes } from "node:crypto";
import { Duplex } from "node:stream";
import {
  closeDial, closeRequest, dataPacket, decodePacket, dialRequest, encodePacket, type Packet,
} from "../src/protocol/index.js";
import { fillGrpcFrameHeader, GrpcMessageReader, grpcFrameHeaderBytes } from "../src/transport/grpc-frame.js";
import { encodeHeaderBlock, HpackDecoder } from "../src/transport/hpack.js";
import { FramePool } from "../src/tunnel/frame-pool.js";
import type { Sink } from "./paths.js";
import { readInto } from "./sink-read.js";
import {
  clientPreface, defaultWindowBytes, encodeFrame, Flag, frameHeader, frameHeaderBytes, FrameType, Setting,
  settingsPayload, windowUpdatePayload, rstStreamPayload, goawayPayload, Http2ErrorCode,
} from "../src/transport/http2-frame.js";

const streamId = 1;
/** What we advertise: the windows and frame size src/transport/grpc-client.ts uses. */
const ourStreamWindow = 8 * 1024 * 1024;
const ourSessionWindow = 32 * 1024 * 1024;
const ourMaxFrame = 64 * 1024;
const maxMessageBytes = 16 * 1024 * 1024;
/**
 * DATA frames we send are at most 16 KiB, as grpc-go's (http2MaxFrameLen) whatever the server
 * allows: kube-apiserver's frames. Measured against nodetunnel's server, which allows 64 KiB:
 * 64 KiB frames cost it 6.5–7.5 ms of CPU per MB in up1, 16 KiB frames 4.6–4.9.
 */
const sendFrameBytes = 16 * 1024;
/** Credit goes back once this much was consumed (half the stream window, as nghttp2 does). */
const creditThreshold = ourStreamWindow / 2;
/** _write calls back while no more than this is waiting for the peer's window or the socket. */
const writeHighWater = 256 * 1024;
/** How long a closed tunnel waits for CLOSE_RSP before it drops the connection: konnectivity-client's CloseTimeout. */
const closeTimeoutMs = 10_000;

/** Encoded DATA packets, reused once written (a fresh 64 KiB buffer per write made the client's GC run). */
const framePool = new FramePool(64 * 1024 + 256);

const requestHeaders = encodeHeaderBlock([
  [":method", "POST"], [":scheme", "http"], [":path", "/ProxyService/Proxy"], [":authority", "localhost"],
  ["content-type", "application/grpc"], ["te", "trailers"], ["user-agent", "nodetunnel-bench-h2c"],
]);

export class H2cProxyError extends Error {}

interface FrameState {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly length: number;
  /** Payload bytes still to come. */
  left: number;
  padding: number;
  padKnown: boolean;
  /** Payload pieces of a frame other than DATA. */
  readonly body: Buffer[];
}

/** One tunnelled connection: a Duplex of the destination's bytes. */
class H2cProxyStream extends Duplex {
  readonly #socket: net.Socket;
  readonly #hpack = new HpackDecoder({ maxTableBytes: 4096, maxHeaderListBytes: 64 * 1024 });
  readonly #messages: GrpcMessageReader;
  readonly #random = randomBytes(8).readBigUInt64BE() >> 1n;
  #connectID = 0n;
  #dialed: { resolve: () => void; reject: (err: Error) => void } | undefined;

  // Frame parsing: the 9-byte header (which may straddle chunks), then the payload.
  readonly #header = Buffer.alloc(frameHeaderBytes);
  #headerFill = 0;
  #frame: FrameState | undefined;
  #headerBlock: Buffer[] | undefined;

  // Sending: the peer's windows and frame size, and what waits for them.
  #peerStreamWindow = defaultWindowBytes;
  #peerSessionWindow = defaultWindowBytes;
  #peerInitialWindow = defaultWindowBytes;
  #peerMaxFrame = 16_384;
  readonly #sendQueue: Buffer[] = [];
  #queuedBytes = 0;
  #writeCallback: ((err?: Error | null) => void) | undefined;

  // Receiving: bytes consumed but not yet credited back; credit held while our reader is full.
  #uncredited = 0;
  #isReaderFull = false;
  #isRemoteDone = false;
  #isLocalDone = false;
  #isCloseRequested = false;

  /** Takes the tunnel's bytes instead of the stream's reader (connectSink), and the socket's reads are views of a shared buffer. */
  readonly #sink: Sink | undefined;

  constructor(socket: net.Socket, sink?: Sink) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#sink = sink;
    // A sink is done with each message at once: split ones are assembled in one reused buffer.
    this.#messages = new GrpcMessageReader(maxMessageBytes, { reuseBuffer: sink !== undefined });
    if (!sink) socket.on("data", (chunk: Buffer) => this.#onSocketData(chunk));
    socket.on("drain", () => this.#maybeCallBack());
    socket.on("error", (err) => this.#fail(err));
    socket.once("close", () => this.#fail(new H2cProxyError("the frontend closed the connection")));
  }

  /** Sends the preface, SETTINGS, the request and DIAL_REQ in one write; resolves on DIAL_RSP. */
  dial(address: string): Promise<void> {
    const dialed = new Promise<void>((resolve, reject) => (this.#dialed = { resolve, reject }));
    const s = this.#socket;
    s.cork();
    s.write(clientPreface);
    s.write(encodeFrame(FrameType.SETTINGS, 0, 0, settingsPayload([
      [Setting.ENABLE_PUSH, 0], [Setting.INITIAL_WINDOW_SIZE, ourStreamWindow], [Setting.MAX_FRAME_SIZE, ourMaxFrame],
    ])));
    s.write(encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdatePayload(ourSessionWindow - defaultWindowBytes)));
    s.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, streamId, requestHeaders));
    this.#sendMessage(encodePacket(dialRequest(address, this.#random), grpcFrameHeaderBytes));
    s.uncork();
    return dialed;
  }

  /** DIAL_CLS for a dial given up on, then the connection goes. */
  cancelDial(): void {
    this.#sendMessage(encodePacket(closeDial(this.#random), grpcFrameHeaderBytes));
    this.destroy();
  }

  override _read(): void {
    if (!this.#isReaderFull) return;
    this.#isReaderFull = false;
    this.#creditBack(0);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#sendMessage(encodePacket(dataPacket(this.#connectID, chunk), grpcFrameHeaderBytes, framePool.take));
    this.#writeCallback = cb;
    this.#maybeCallBack();
  }

  override _final(cb: (err?: Error | null) => void): void {
    // After CLOSE_RSP our half is already closed: nothing more may be sent on the stream.
    this.#requestClose();
    cb();
  }

  /**
   * Closing an established tunnel without an error is kube-apiserver's `conn.Close()`: CLOSE_REQ
   * (unless the agent's CLOSE_RSP came first), then the HTTP/2 connection stays until CLOSE_RSP
   * comes (#onClosed), at most `closeTimeoutMs`; nobody waits for that. An error, or a tunnel
   * never established, resets the stream and drops the connection.
   */
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const isEstablished = this.#connectID !== 0n && this.#dialed === undefined;
    if (err === null && isEstablished && !this.#socket.destroyed) {
      this.#requestClose();
      if (!this.#isLocalDone) setTimeout(() => this.#socket.destroy(), closeTimeoutMs).unref();
    } else {
      if (!this.#socket.destroyed && !(this.#isRemoteDone && this.#isLocalDone)) {
        this.#socket.end(encodeFrame(FrameType.RST_STREAM, 0, streamId, rstStreamPayload(Http2ErrorCode.CANCEL)));
      }
      this.#socket.destroy();
    }
    const cbw = this.#writeCallback;
    this.#writeCallback = undefined;
    cbw?.(err ?? new H2cProxyError("destroyed"));
    cb(err);
  }

  /** CLOSE_REQ once, unless CLOSE_RSP already closed our half. */
  #requestClose(): void {
    if (this.#isLocalDone || this.#isCloseRequested) return;
    this.#isCloseRequested = true;
    this.#sendMessage(encodePacket(closeRequest(this.#connectID), grpcFrameHeaderBytes));
  }

  #fail(err: Error): void {
    if (this.#dialed) {
      const d = this.#dialed;
      this.#dialed = undefined;
      this.#socket.destroy();
      d.reject(err);
      return;
    }
    if (this.#isRemoteDone || this.#isLocalDone) {
      // The stream is over (trailers, or CLOSE_RSP and our GOAWAY): the connection going is no error.
      this.#socket.destroy();
      if (!this.destroyed) this.destroy();
      return;
    }
    this.destroy(err);
  }

  // ---- sending ----

  /** Queues one gRPC message (its packet encoded with room for the prefix) and sends what the windows allow. */
  #sendMessage(frame: Buffer): void {
    if (this.#isLocalDone || this.#socket.destroyed) return;
    fillGrpcFrameHeader(frame);
    this.#sendQueue.push(frame);
    this.#queuedBytes += frame.length;
    this.#pump();
  }

  #pump(): void {
    const s = this.#socket;
    let corked = false;
    while (this.#sendQueue.length > 0) {
      const head = this.#sendQueue[0]!;
      const n = Math.min(head.length, this.#peerMaxFrame, sendFrameBytes, this.#peerStreamWindow, this.#peerSessionWindow);
      if (n <= 0) break;
      if (!corked) {
        s.cork();
        corked = true;
      }
      s.write(frameHeader(n, FrameType.DATA, 0, streamId));
      // The frame's last piece gives its buffer back to the pool once the socket has written it.
      if (n === head.length) s.write(head, () => framePool.give(head));
      else s.write(head.subarray(0, n));
      this.#peerStreamWindow -= n;
      this.#peerSessionWindow -= n;
      this.#queuedBytes -= n;
      if (n === head.length) this.#sendQueue.shift();
      else this.#sendQueue[0] = head.subarray(n);
    }
    if (corked) s.uncork();
  }

  #maybeCallBack(): void {
    if (!this.#writeCallback || this.#queuedBytes + this.#socket.writableLength > writeHighWater) return;
    const cb = this.#writeCallback;
    this.#writeCallback = undefined;
    cb();
  }

  // ---- receiving ----

  /** A read of the socket in sink mode: a view that is overwritten by the next read. */
  received(view: Buffer): void {
    this.#onSocketData(view);
  }

  #onSocketData(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.#socket.destroyed) {
      const f = this.#frame;
      if (f === undefined) {
        const n = Math.min(frameHeaderBytes - this.#headerFill, chunk.length - at);
        if (this.#headerFill === 0 && n === frameHeaderBytes) this.#startFrame(chunk, at);
        else {
          chunk.copy(this.#header, this.#headerFill, at, at + n);
          this.#headerFill += n;
          if (this.#headerFill === frameHeaderBytes) {
            this.#headerFill = 0;
            this.#startFrame(this.#header, 0);
          }
        }
        at += n;
        if (this.#frame?.left === 0) this.#endFrame();
        continue;
      }
      if (f.type === FrameType.DATA && (f.flags & Flag.PADDED) !== 0 && !f.padKnown) {
        f.padding = chunk[at]!;
        f.padKnown = true;
        at++;
        f.left--;
        if (f.padding > f.left) return this.#fail(new H2cProxyError("DATA frame padding longer than the frame"));
      } else {
        const n = Math.min(f.left, chunk.length - at);
        const piece = chunk.subarray(at, at + n);
        at += n;
        f.left -= n;
        if (f.type === FrameType.DATA) this.#onDataPiece(piece, f);
        // A sink's reads share one buffer: other frames' bodies (small) are copied, as parts of them may be kept.
        else f.body.push(this.#sink ? Buffer.from(piece) : piece);
      }
      if (f.left === 0) this.#endFrame();
    }
  }

  #startFrame(bytes: Buffer, at: number): void {
    const length = (bytes[at]! << 16) | (bytes[at + 1]! << 8) | bytes[at + 2]!;
    if (length > ourMaxFrame) return this.#fail(new H2cProxyError(`frame of ${length} bytes is over our MAX_FRAME_SIZE`));
    this.#frame = {
      type: bytes[at + 3]!, flags: bytes[at + 4]!, stream: bytes.readUInt32BE(at + 5) & 0x7fffffff,
      length, left: length, padding: 0, padKnown: false, body: [],
    };
  }

  /** A piece of a DATA frame's payload: the padding at its end is skipped, the rest is gRPC messages. */
  #onDataPiece(piece: Buffer, f: FrameState): void {
    const dataLeftBefore = f.left + piece.length - f.padding; // payload bytes (without padding) before this piece
    const useful = Math.max(0, Math.min(piece.length, dataLeftBefore));
    if (useful === 0 || f.stream !== streamId) return;
    let messages: Uint8Array[];
    try {
      messages = this.#messages.push(piece.subarray(0, useful));
    } catch (err) {
      return this.#fail(err as Error);
    }
    for (const m of messages) this.#onMessage(m);
  }

  #endFrame(): void {
    const f = this.#frame!;
    this.#frame = undefined;
    const body = f.body.length === 1 ? f.body[0]! : Buffer.concat(f.body);
    switch (f.type) {
      case FrameType.DATA:
        // The whole frame, padding included, counts against both windows.
        this.#creditBack(f.length);
        if ((f.flags & Flag.END_STREAM) !== 0) this.#remoteEnded();
        return;
      case FrameType.HEADERS:
      case FrameType.CONTINUATION: {
        let block = body;
        if (f.type === FrameType.HEADERS) {
          let start = 0;
          let end = body.length;
          if ((f.flags & Flag.PADDED) !== 0) {
            start = 1;
            end -= body[0]!;
          }
          if ((f.flags & Flag.PRIORITY) !== 0) start += 5;
          block = body.subarray(start, end);
          this.#headerBlock = [];
          if ((f.flags & Flag.END_STREAM) !== 0) this.#isRemoteDone = true;
        }
        this.#headerBlock?.push(block);
        if ((f.flags & Flag.END_HEADERS) !== 0) this.#onHeaderBlock(Buffer.concat(this.#headerBlock ?? []));
        return;
      }
      case FrameType.SETTINGS:
        if ((f.flags & Flag.ACK) !== 0) return;
        for (let i = 0; i + 6 <= body.length; i += 6) {
          const id = body.readUInt16BE(i);
          const value = body.readUInt32BE(i + 2);
          if (id === Setting.INITIAL_WINDOW_SIZE) {
            this.#peerStreamWindow += value - this.#peerInitialWindow;
            this.#peerInitialWindow = value;
          } else if (id === Setting.MAX_FRAME_SIZE) this.#peerMaxFrame = value;
        }
        this.#socket.write(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
        this.#pump();
        this.#maybeCallBack();
        return;
      case FrameType.PING:
        if ((f.flags & Flag.ACK) === 0) this.#socket.write(encodeFrame(FrameType.PING, Flag.ACK, 0, body));
        return;
      case FrameType.WINDOW_UPDATE: {
        const increment = body.readUInt32BE(0) & 0x7fffffff;
        if (f.stream === 0) this.#peerSessionWindow += increment;
        else if (f.stream === streamId) this.#peerStreamWindow += increment;
        this.#pump();
        this.#maybeCallBack();
        return;
      }
      case FrameType.RST_STREAM:
        if (f.stream === streamId) this.#fail(new H2cProxyError(`the frontend reset the stream (code ${body.readUInt32BE(0)})`));
        return;
      case FrameType.GOAWAY:
        if ((body.readUInt32BE(0) & 0x7fffffff) < streamId) this.#fail(new H2cProxyError("the frontend sent GOAWAY before our stream"));
        return;
      default:
        return; // PRIORITY and unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  #onHeaderBlock(block: Buffer): void {
    this.#headerBlock = undefined;
    let headers: Array<[string, string]>;
    try {
      headers = this.#hpack.decode(block).headers;
    } catch (err) {
      return this.#fail(err as Error);
    }
    const status = headers.find(([n]) => n === ":status")?.[1];
    const grpcStatus = headers.find(([n]) => n === "grpc-status")?.[1];
    if (status !== undefined && status !== "200") return this.#fail(new H2cProxyError(`HTTP status ${status}`));
    if (grpcStatus !== undefined && grpcStatus !== "0") {
      const message = headers.find(([n]) => n === "grpc-message")?.[1] ?? "";
      return this.#fail(new H2cProxyError(`grpc-status ${grpcStatus}: ${decodeURIComponent(message)}`));
    }
    if (this.#isRemoteDone) this.#remoteEnded();
  }

  #onMessage(message: Uint8Array): void {
    let packet: Packet;
    try {
      packet = decodePacket(message);
    } catch (err) {
      return this.#fail(err as Error);
    }
    if (this.#dialed) {
      if (packet.type !== "DIAL_RSP" || packet.random !== this.#random) return;
      const d = this.#dialed;
      this.#dialed = undefined;
      if (packet.error !== "") {
        this.#socket.destroy();
        return d.reject(new H2cProxyError(`dial failed: ${packet.error}`));
      }
      this.#connectID = packet.connectID;
      return d.resolve();
    }
    if (packet.type === "DATA") {
      // Closed by us and waiting for CLOSE_RSP: what still comes is dropped, and credited back.
      if (this.destroyed) return;
      if (this.#sink) this.#sink(packet.data);
      else if (!this.push(packet.data)) this.#isReaderFull = true;
    } else if (packet.type === "CLOSE_RSP") {
      // konnectivity-client's serve() returns on CLOSE_RSP and closes its grpc.ClientConn: grpc-go
      // sends GOAWAY (NO_ERROR, "client transport shutdown") and closes the connection, neither
      // ending nor resetting the stream.
      this.#isLocalDone = true;
      this.push(null);
      this.#socket.end(encodeFrame(FrameType.GOAWAY, 0, 0, goawayPayload(0, Http2ErrorCode.NO_ERROR, Buffer.from("client transport shutdown"))));
    }
  }

  /** Counts `bytes` as consumed, and gives credit back once enough is, unless our reader is full. */
  #creditBack(bytes: number): void {
    this.#uncredited += bytes;
    if (this.#isReaderFull || this.#uncredited < creditThreshold) return;
    const n = this.#uncredited;
    this.#uncredited = 0;
    this.#socket.cork();
    this.#socket.write(encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdatePayload(n)));
    if (!this.#isRemoteDone) this.#socket.write(encodeFrame(FrameType.WINDOW_UPDATE, 0, streamId, windowUpdatePayload(n)));
    this.#socket.uncork();
  }

  #remoteEnded(): void {
    this.#isRemoteDone = true;
    if (this.#dialed) return this.#fail(new H2cProxyError("the stream ended before DIAL_RSP"));
    this.push(null);
    if (this.#isLocalDone) this.#socket.end();
  }
}

/**
 * Dials `address` through the gRPC frontend on the Unix socket `path`; the stream starts paused.
 * With a sink, the tunnel's bytes go to it as they come, and the socket reads into a shared buffer.
 */
export async function dialH2c(path: string, address: string, timeoutMs: number, sink?: Sink): Promise<Duplex> {
  // The first read comes after the connect, by when `stream` is set.
  const socket = net.connect(sink ? { path, onread: readInto((view) => stream.received(view)) } : { path });
  const stream = new H2cProxyStream(socket, sink);
  stream.on("error", () => undefined); // until the caller attaches its own
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      stream.dial(address),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          stream.cancelDial();
          reject(new H2cProxyError(`no DIAL_RSP within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  stream.pause();
  return stream;
}
