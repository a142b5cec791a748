// The local end of a tunnelled connection: the destination socket on the agent, the frontend
// socket or frontend gRPC stream on the server. The tunnel moves bytes between an Endpoint and
// a shared packet channel.
import type { Socket } from "node:net";

export interface EndpointHandlers {
  data(chunk: Uint8Array): void;
  /** The local side is finished (EOF, error or close). Called once. Konnectivity has no half-close. */
  end(err?: Error): void;
  /** The endpoint's write buffer drained after write() returned false. */
  drain(): void;
}

export interface Endpoint {
  start(handlers: EndpointHandlers): void;
  /** Writes bytes to the local side; false when its buffer is above the high-water mark. */
  write(chunk: Uint8Array): boolean;
  readonly writableLength: number;
  pause(): void;
  resume(): void;
  /** Closes after flushing what was written (the peer closed). */
  end(): void;
  /** Closes now, dropping buffered bytes. */
  destroy(err?: Error): void;
}

/** How long end() waits for a socket to flush before destroying it. */
const END_FLUSH_DEADLINE_MS = 30_000;

export class SocketEndpoint implements Endpoint {
  private ended = false;
  private corked = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly uncork = () => {
    this.corked = false;
    this.socket.uncork();
  };

  constructor(private readonly socket: Socket) {}

  start(handlers: EndpointHandlers): void {
    const s = this.socket;
    let finished = false;
    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(this.flushTimer);
      handlers.end(err);
    };
    s.on("data", (chunk: Buffer) => handlers.data(chunk));
    s.on("drain", () => handlers.drain());
    s.on("end", () => finish());
    s.on("error", (err) => finish(err));
    s.on("close", () => finish());
    // Already over before we listened: an HTTP CONNECT client that sent its request and EOF in
    // one go has had its "end" read by the HTTP parser (allowHalfOpen keeps the socket open).
    if (s.destroyed || s.readableEnded) finish();
    // A frontend socket is held paused while its dial is pending; start the flow now.
    s.resume();
  }

  write(chunk: Uint8Array): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    // Several DATA packets often arrive in one read of the shared stream: cork until the end of
    // this tick so they leave in one writev instead of a syscall each.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
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
    this.flushTimer = setTimeout(() => this.socket.destroy(), END_FLUSH_DEADLINE_MS);
    this.flushTimer.unref();
  }

  destroy(err?: Error): void {
    clearTimeout(this.flushTimer);
    this.socket.destroy(err);
  }
}
