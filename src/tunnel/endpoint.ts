// The local end of a tunnelled connection: the destination socket on the agent, the frontend
// socket or frontend gRPC stream on the server. The tunnel moves bytes between an Endpoint and
// a shared packet channel.
import type { Socket } from "node:net";

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
  /** Closes now, dropping buffered bytes. */
  destroy(err?: Error): void;
}

/** How long end() waits for a socket to flush before destroying it. */
const END_FLUSH_DEADLINE_MS = 30_000;

/** The SocketEndpoint a socket belongs to, for the listeners shared by all sockets. */
const endpointOf = Symbol("nodetunnel.endpoint");
type EndpointSocket = Socket & { [endpointOf]?: SocketEndpoint };

export class SocketEndpoint implements Endpoint {
  private handlers: EndpointHandlers | undefined;
  private corked = false;
  private ended = false;
  private finished = false;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly socket: Socket) {}

  // Socket listeners and the uncork callback are shared by every endpoint (a listener's `this` is
  // its socket): a set of closures per connection cost memory for every idle tunnelled connection.
  private static onData(this: EndpointSocket, chunk: Buffer): void {
    this[endpointOf]?.handlers?.localData(chunk);
  }
  private static onDrain(this: EndpointSocket): void {
    this[endpointOf]?.handlers?.localDrain();
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
    return this.socket.writableLength;
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
    this.socket.end();
    if (this.socket.destroyed) return;
    this.flushTimer = setTimeout(() => this.socket.destroy(), END_FLUSH_DEADLINE_MS);
    this.flushTimer.unref();
  }

  destroy(err?: Error): void {
    clearTimeout(this.flushTimer);
    this.socket.destroy(err);
  }
}
