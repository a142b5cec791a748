// A node:http2 session stops reading its socket while one of its socket writes is pending
// (Http2Session::MaybeStopReading in node_http2.cc) and starts again when the write completes.
// Two such peers deadlock: once both kernels' send buffers are full, neither reads, so neither
// write ever completes (`ss` shows Recv-Q and Send-Q full at both ends; HTTP/2 windows open,
// nothing queued in nghttp2). The same pause hides a peer's death: an agent killed with -9 during
// a bulk download left the server's session waiting on a write that never finished, never reading
// the RST, until keepalive gave up. A Go peer reads while it writes, so both need nodetunnel on
// both ends of the agent link — which is where this is used.
//
// The remedy: restart reading every registered session's socket on a short period. readStart() on a socket
// that is reading is a no-op (~35 ns); on a stopped one it lets nghttp2 take in frames while the
// write waits — the windows still bound what the peer may send, and a dead peer's RST is seen.
// One timer serves every registered session.
import type http2 from "node:http2";

export const keepReadingPeriodMs = 100;

const sessions = new Set<http2.Http2Session>();
let timer: NodeJS.Timeout | undefined;

function kick(): void {
  for (const session of sessions) {
    if (session.destroyed) continue;
    const handle = (session.socket as unknown as { _handle?: { readStart?: () => number } | null })._handle;
    handle?.readStart?.();
  }
}

/** Keeps `session` reading its socket while it writes, until it closes. */
export function keepReading(session: http2.Http2Session): void {
  if (session.destroyed) return;
  sessions.add(session);
  if (timer === undefined) {
    timer = setInterval(kick, keepReadingPeriodMs);
    timer.unref();
  }
  session.once("close", () => {
    sessions.delete(session);
    if (sessions.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  });
}

/** Sessions kept reading now (for tests). */
export function keptReadingCount(): number {
  return sessions.size;
}
