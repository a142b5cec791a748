// The HTTP CONNECT frontend (--mode=http-connect): one socket per proxied connection, over a
// Unix socket or TLS/mTLS TCP. The bytes written on the socket follow upstream's tunnel.go
// (shared/spec/konnectivity.md §1.6): "200 Connection Established" only after the agent's
// successful DIAL_RSP, upstream's status codes for failures, and then the raw stream.
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { SecureContextOptions } from "node:tls";
import type { Logger } from "pino";
import { splitHostPort } from "../protocol/index.js";
import { defaultTlsPolicy, type TlsPolicy } from "../transport/index.js";
import { SocketEndpoint } from "../tunnel/index.js";
import { withExplanation } from "./explain-dial-failure.js";
import type { DialFailure, DialHandle, ProxyServer } from "./proxy-server.js";
import type { ServerMetrics } from "./server-metrics.js";
import type { TlsFiles } from "./server-options.js";

const ESTABLISHED = Buffer.from("HTTP/1.1 200 Connection Established\r\n\r\n", "latin1");
const statusText: Record<number, string> = {
  400: "Bad Request", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};

/** The status upstream (v0.34+) gives an agent's dial error, from its text. */
export function statusForAgentError(error: string): number {
  const e = error.toLowerCase();
  // "timed out": Go's "connect: connection timed out" (ETIMEDOUT), as upstream's mapDialErrorToHTTPStatus.
  if (e.includes("timeout") || e.includes("deadline exceeded") || e.includes("timed out")) return 504;
  if (e.includes("too many open files")) return 503;
  return 502;
}

/** The response bytes for a failed dial: status line, content type, blank line, body. */
export function failureResponse(f: DialFailure): string {
  const body = withExplanation(f.error, f.explanation);
  switch (f.reason) {
    case "no_agent":
      return `HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\ncurrently no tunnels available: ${body}`;
    case "error_response":
      return agentErrorResponse(statusForAgentError(f.error), body);
    case "backend_dial_timeout":
      return response(504, `Backend dial timeout: ${body}`);
    case "backend_close":
      return response(502, `Backend context error: ${body}`);
    case "limit":
      return response(503, `Failed to tunnel dial request: ${body}`);
    default:
      return response(502, `Failed to tunnel dial request: ${body}`);
  }
}

// Go's net/http answers a request it cannot read with these bytes (server.go, conn.serve).
const goClientError = (publicErr: string) =>
  `HTTP/1.1 ${publicErr}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${publicErr}`;

const response = (status: number, body: string) =>
  `HTTP/1.1 ${status} ${statusText[status] ?? "Error"}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`;

// Upstream writes an agent's dial error with Go's http.Response.Write: Content-Length first, then
// the headers, and the body without a line end.
const agentErrorResponse = (status: number, body: string) =>
  `HTTP/1.1 ${status} ${statusText[status] ?? "Error"}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`;

/** The parts of an HTTP CONNECT frontend's TLS that a rotation replaces (setSecureContext). */
export function connectFrontendSecureContext(tls: TlsFiles, tlsPolicy: TlsPolicy): SecureContextOptions {
  return { cert: tls.cert, key: tls.key, ca: tls.ca, minVersion: tlsPolicy.minVersion, ciphers: tlsPolicy.ciphers };
}

export function createHttpConnectFrontend(server: ProxyServer, metrics: ServerMetrics, log: Logger, tls?: TlsFiles, tlsPolicy: TlsPolicy = defaultTlsPolicy): http.Server {
  // Upstream's ReadHeaderTimeout is 60 s: a slow-loris client cannot hold a socket longer. Node
  // checks the timeout only every connectionsCheckingInterval (30 s by default, which would let a
  // stalled head live up to 90 s), so the check runs at a quarter of the timeout.
  const headerTimeoutMs = server.options.frontendHeaderTimeoutMs;
  const checking = { connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(headerTimeoutMs / 4))) };
  const httpServer: http.Server = tls
    ? https.createServer({
        ...checking,
        // Node waits 120 s for a TLS handshake by default; a client that says nothing gets the
        // same time as one that sends half a request head.
        handshakeTimeout: headerTimeoutMs,
        requestCert: tls.ca !== undefined,
        rejectUnauthorized: tls.ca !== undefined,
        ALPNProtocols: ["http/1.1"],
        ...connectFrontendSecureContext(tls, tlsPolicy),
      })
    : http.createServer(checking);
  httpServer.headersTimeout = headerTimeoutMs;
  httpServer.requestTimeout = headerTimeoutMs;
  httpServer.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) => {
    // As Go's http.Error: a fixed-length plain-text body.
    const body = "this proxy only supports CONNECT passthrough\n";
    res.writeHead(405, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  });
  // Listeners for a client socket's whole life, shared by all of them: a closure per socket would
  // also keep its dial's state (handle, request head) alive as long as the connection.
  const lifetime = {
    close: () => metrics.httpConnectionOpened(-1),
    error: (err: Error) => log.debug({ err: err.message }, "CONNECT client socket error"),
  };
  httpServer.on("connect", (req: http.IncomingMessage, socket: Socket, head: Buffer) => handleConnect(req, socket, head, server, metrics, lifetime));
  httpServer.on("clientError", (err: Error, socket: Socket) => {
    // A head not received in time (slow loris) is a timeout, not a malformed request: say so.
    const isTimeout = (err as NodeJS.ErrnoException).code === "ERR_HTTP_REQUEST_TIMEOUT";
    log.debug({ err: err.message }, isTimeout ? "CONNECT request head not received in time" : "bad HTTP request on the CONNECT frontend");
    if (!socket.writable) socket.destroy();
    else if (isTimeout) socket.end(`HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nrequest head not received within ${headerTimeoutMs} ms\r\n`);
    else socket.end(goClientError((err as NodeJS.ErrnoException).code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request"));
  });
  return httpServer;
}

interface LifetimeListeners {
  close(): void;
  error(err: Error): void;
}

function handleConnect(req: http.IncomingMessage, socket: Socket, head: Buffer, server: ProxyServer, metrics: ServerMetrics, lifetime: LifetimeListeners): void {
  metrics.httpConnectionOpened(1);
  socket.once("close", lifetime.close);
  socket.on("error", lifetime.error);
  const address = req.url ?? "";
  if (!splitHostPort(address)) {
    socket.end(response(400, `CONNECT target "${address}" is not host:port`));
    return;
  }
  socket.setNoDelay(true);
  socket.pause(); // the client must not send before "200"; hold what it does send
  let settled = false;
  let handle: DialHandle | null = null;
  // A client that closes, or sends EOF (Konnectivity has no half-close), before "200" gave up:
  // cancel the dial (DIAL_CLS). Its EOF may already have been read with the request head.
  const onEarlyClose = () => {
    if (settled) return;
    settled = true;
    socket.off("close", onEarlyClose);
    socket.off("end", onEarlyClose);
    handle?.cancel();
    socket.destroy();
  };
  socket.once("close", onEarlyClose);
  socket.once("end", onEarlyClose);
  if (socket.readableEnded) return onEarlyClose();
  handle = server.dial(address, {
    established: () => {
      if (settled || socket.destroyed) return null;
      settled = true;
      socket.off("close", onEarlyClose);
      socket.off("end", onEarlyClose);
      socket.write(ESTABLISHED);
      if (head.length > 0) socket.unshift(head);
      return new SocketEndpoint(socket);
    },
    failed: (f) => {
      if (settled) return;
      settled = true;
      socket.off("close", onEarlyClose);
      socket.off("end", onEarlyClose);
      socket.end(failureResponse(f));
    },
  });
}
