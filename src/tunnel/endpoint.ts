// The local end of a tunnelled connection: the destination socket on the agent, the frontend
// socket or frontend gRPC stream on the server. The tunnel moves bytes between an Endpoint and
// a shared packet channel.
import type { Socket } from "node:net";
import { Deque } from "./deque.js";

export interface EndpointHandlers {
  /** Bytes the local side sent. */
  localData(chunk: Uint8Array): void;
  /** The local side is finished (EOF, error or close). Called once. Konnectivity has no half-close. */
  localEnd(err?: Error): void;
  /** The endpoint's write buffer drained after write() returned false. */
  localDrain(): void;
}

export interface Endpoint {
  start(handlers: EndpointHandlers): void;
  /** Writes bytes to the local side; false when its buffer is above the high-water mark. */
  write(chunk: Uint8Array): boolean;
  readonly writableLength: number;
  pause(): void;
  resume(): void;
  /** Closes after flushing what was written (the peer closed; `peerError` is its close's error text, if any). */
  end(peerError?: string): void;
  /** Closes now, dropping buffered bytes; `err` (an abnormal end) is told to the local side where it can be. */
  destroy(err?: Error): void;
}

/** How long end() waits for a socket to flush before destroying it. */
const END_FLUSH_DEADLINE_MS = 30_000;

/**
 * Bytes handed to a socket at most; what comes while it holds this much waits in the endpoint's
 * backlog. A backed-up socket gives libuv everything it buffers as one writev, and counts all of
 * it in writableLength until the last byte is out: a 32 MiB batch to a reader at 20 MB/s showed
 * no progress for 1.6 s, and a reader that was merely slow looked stalled. In batches of at most
 * this much, the backlog shrinks as the reader reads.
 */
export const SOCKET_BATCH_BYTES = 1024 * 1024;

/** The SocketEndpoint a socket belongs to, for the listeners shared by all sockets. */
const endpointOf = Symbol("nodetunnel.endpoint");
type EndpointSocket = Socket & { [endpointOf]?: SocketEndpoint };

export class SocketEndpoint implements Endpoint {
  private handlers: EndpointHandlers | undefined;
  private corked = false;
  private ended = false;
  private finished = false;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Bytes waiting for the socket to take them (made on first use: most connections never need it). */
  private backlog: Deque<Uint8Array> | undefined;
  private backlogBytes = 0;

  constructor(private readonly socket: Socket) {}

  // Socket listeners and the uncork callback are shared by every endpoint (a listener's `this` is
  // its socket): a set of closures per connection cost memory for every idle tunnelled connection.
  private static onData(this: EndpointSocket, chunk: Buffer): void {
    this[endpointOf]?.handlers?.localData(chunk);
  }
  private static onDrain(this: EndpointSocket): void {
    const endpoint = this[endpointOf];
    if (endpoint && endpoint.refill()) endpoint.handlers?.localDrain();
  }
  private static onEnd(this: EndpointSocket): void {
    this[endpointOf]?.finish();
  }
  private static onError(this: EndpointSocket, err: Error): void {
    this[endpointOf]?.finish(err);
  }
  private static onClose(this: EndpointSocket): void {
    const endpoint = this[endpointOf];
    if (!endpoint) return;
    // The flush deadline guards a socket that end() could not close; a closed one needs none, and
    // its timer would keep the endpoint, socket and connection alive for the rest of the deadline.
    clearTimeout(endpoint.flushTimer);
    endpoint.flushTimer = undefined;
    endpoint.finish();
  }
  private static uncork(endpoint: SocketEndpoint): void {
    endpoint.corked = false;
    endpoint.socket.uncork();
  }

  start(handlers: EndpointHandlers): void {
    const s = this.socket as EndpointSocket;
    this.handlers = handlers;
    s[endpointOf] = this;
    s.on("data", SocketEndpoint.onData);
    s.on("drain", SocketEndpoint.onDrain);
    s.on("end", SocketEndpoint.onEnd);
    s.on("error", SocketEndpoint.onError);
    s.on("close", SocketEndpoint.onClose);
    // Already over before we listened: an HTTP CONNECT client that sent its request and EOF in
    // one go has had its "end" read by the HTTP parser (allowHalfOpen keeps the socket open).
    if (s.destroyed || s.readableEnded) this.finish();
    // A frontend socket is held paused while its dial is pending; start the flow now.
    s.resume();
  }

  /** The local side is over: tell the handlers, once. */
  private finish(err?: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.handlers?.localEnd(err);
  }

  write(chunk: Uint8Array): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    if (this.backlogBytes > 0 || this.socket.writableLength >= SOCKET_BATCH_BYTES) {
      (this.backlog ??= new Deque()).push(chunk);
      this.backlogBytes += chunk.length;
      return false;
    }
    // Several DATA packets often arrive in one read of the shared stream: cork until the end of
    // this tick so they leave in one writev instead of a syscall each.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(SocketEndpoint.uncork, this);
    }
    return this.socket.write(chunk);
  }

  get writableLength(): number {
    return this.socket.writableLength + this.backlogBytes;
  }

  /**
   * The socket drained: hands it the next batch from the backlog. True when nothing is left to
   * wait for (the backlog is empty and the socket took everything without asking for a drain).
   */
  private refill(): boolean {
    const backlog = this.backlog;
    if (!backlog || this.backlogBytes === 0) return true;
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    let ok = true;
    this.socket.cork();
    while (this.backlogBytes > 0 && this.socket.writableLength < SOCKET_BATCH_BYTES) {
      const chunk = backlog.shift()!;
      this.backlogBytes -= chunk.length;
      ok = this.socket.write(chunk);
    }
    this.socket.uncork();
    if (this.backlogBytes > 0) return false; // the socket is full again: its drain comes back here
    this.backlog = undefined;
    return ok; // a false write brings one more drain, which reports it
  }

  /** Hands the whole backlog to the socket (it is ending, or being written out before ending). */
  private flushBacklog(): void {
    const backlog = this.backlog;
    if (!backlog) return;
    this.backlog = undefined;
    this.backlogBytes = 0;
    this.socket.cork();
    for (let chunk = backlog.shift(); chunk !== undefined; chunk = backlog.shift()) this.socket.write(chunk);
    this.socket.uncork();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    // Read on (what arrives is dropped: the connection is finished) so the peer's FIN is seen and
    // the socket closes now. A reader paused for backpressure would otherwise hold the socket,
    // and the peer's unsent bytes, until the flush deadline.
    this.socket.resume();
    this.flushBacklog();
    this.socket.end();
    if (this.socket.destroyed) return;
    this.flushTimer = setTimeout(() => this.socket.destroy(), END_FLUSH_DEADLINE_MS);
    this.flushTimer.unref();
  }

  destroy(err?: Error): void {
    clearTimeout(this.flushTimer);
    this.backlog = undefined;
    this.backlogBytes = 0;
    if (err !== undefined && !this.socket.destroyed) {
      // An abnormal end (the agent went away, a slow consumer, a shutdown deadline): a TCP peer
      // gets a reset, so a download cut short reads as an error, not as a complete one. A TLS or
      // Unix socket cannot send one (Node throws for them): it closes (a TLS peer then sees the
      // end without close_notify).
      try {
        this.socket.resetAndDestroy();
        return;
      } catch {
        // not a plain TCP socket
      }
    }
    this.socket.destroy(err);
  }
}
