// One error class for the tunnel, with a closed set of codes (docs/architecture.md lists them;
// tunnel-error.test.ts keeps the list and this union in step).

export const tunnelErrorCodes = [
  "NO_AGENT",            // no agent can serve the destination
  "DIAL_FAILED",         // the agent could not connect to the destination
  "DIAL_TIMEOUT",        // no DIAL_RSP within the dial timeout
  "AGENT_GONE",          // the agent's stream ended while the connection depended on it
  "FRONTEND_GONE",       // the caller went away
  "SLOW_CONSUMER",       // a reader fell behind past its hard cap and was closed
  "DESTINATION_DENIED",  // the agent's destination policy refused the address
  "DRAINING",            // the peer is draining and takes no new work
  "LIMIT",               // a configured bound (pending dials, connections, rate) was reached
  "PROTOCOL",            // malformed or unexpected bytes or packets from a peer
  "MESSAGE_TOO_LARGE",   // a gRPC message above the maximum size
  "UNAUTHENTICATED",     // missing or rejected credentials
  "PERMISSION_DENIED",   // credentials valid but not for what was claimed
  "INVALID_OPTION",      // an option or flag value is wrong
  "CLOSED",              // the object was closed or destroyed
  "CANCELLED",           // the caller aborted
] as const;
export type TunnelErrorCode = (typeof tunnelErrorCodes)[number];

export class TunnelError extends Error {
  override readonly name = "TunnelError";
  readonly code: TunnelErrorCode;

  constructor(code: TunnelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export const isTunnelError = (e: unknown, code?: TunnelErrorCode): e is TunnelError =>
  e instanceof TunnelError && (code === undefined || e.code === code);
