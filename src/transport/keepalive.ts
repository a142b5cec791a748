// HTTP/2 PING keepalive for one session, both ends (konnectivity.md §1.7: grpc-go keepalive
// Time/Timeout). A ping every `timeMs`; no ack within `timeoutMs` means the peer or the path is
// dead (a silently dropped NAT mapping, a black-holed link) and `onDead` tears the session down.
// Timers are unref'ed: keepalive alone never keeps a process alive.

/** node:http2's Http2Session or our Http2ServerSession. */
interface PingingSession {
  readonly destroyed: boolean;
  readonly closed: boolean;
  ping(callback: (err: Error | null, durationMs: number, payload: Buffer) => void): boolean;
}

export interface KeepaliveOptions {
  readonly timeMs: number;
  readonly timeoutMs: number;
  readonly onDead: (silentForMs: number) => void;
}

/** Starts pinging; returns the function that stops it (idempotent). timeMs 0 disables. */
export function startKeepalive(session: PingingSession, options: KeepaliveOptions): () => void {
  if (options.timeMs <= 0) return () => {};
  let deadline: NodeJS.Timeout | undefined;
  let isStopped = false;
  const tick = () => {
    if (deadline !== undefined || session.destroyed || session.closed) return;
    const sentAt = Date.now();
    deadline = setTimeout(() => {
      deadline = undefined;
      if (!isStopped) options.onDead(Date.now() - sentAt);
    }, options.timeoutMs);
    deadline.unref();
    try {
      session.ping((err) => {
        clearTimeout(deadline);
        deadline = undefined;
        // An error here means the session is going away; its own close handling reports that.
        void err;
      });
    } catch {
      clearTimeout(deadline);
      deadline = undefined;
    }
  };
  const interval = setInterval(tick, options.timeMs);
  interval.unref();
  return () => {
    isStopped = true;
    clearInterval(interval);
    clearTimeout(deadline);
  };
}
