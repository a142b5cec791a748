// Bounds the connections of one TLS listener that have not finished their handshake, and keeps
// handshake failures from flooding the log. Anyone who reaches the agent port can open TCP
// connections and say nothing: each holds a file descriptor for the handshake timeout (20 s), and
// descriptors are shared with everything else the server serves (kube-apiserver's tunnels on the
// frontends). Past `max` connections in handshake, new ones are closed at once: a flood then costs
// new agents their connection for a while, not the frontends their descriptors.
//
// In handshake = TCP connections open minus TLS sessions open. Only public events are used: the
// server's "connection" (the TCP socket, before TLS) and "secureConnection" (the TLS socket),
// and each socket's "close". The two closes of one connection come a tick apart, so the count can
// be off by a few for a moment; it is a bound, not an accounting.
import type * as net from "node:net";
import type * as tls from "node:tls";
import type { Logger } from "pino";

/** One line per this at most, counting what happened in between. */
const reportEveryMs = 10_000;

export class HandshakeGuard {
  readonly #max: number;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  #open = 0;
  #secured = 0;
  #refused = 0;
  #failed = 0;
  #lastError = "";
  #lastReportAt = Number.NEGATIVE_INFINITY;

  constructor(max: number, log: Logger | undefined, now: () => number = Date.now) {
    this.#max = max;
    this.#log = log;
    this.#now = now;
  }

  /** Connections accepted whose TLS handshake has not finished. */
  get pending(): number {
    return Math.max(0, this.#open - this.#secured);
  }

  /** Registers on `server`; returns what removes the listeners again. */
  attach(server: tls.Server): () => void {
    const onConnection = (socket: net.Socket) => this.#onConnection(socket);
    const onSecure = (socket: tls.TLSSocket) => this.#onSecure(socket);
    const onClientError = (err: Error, socket: tls.TLSSocket) => this.#onClientError(err, socket);
    server.on("connection", onConnection);
    server.on("secureConnection", onSecure);
    server.on("tlsClientError", onClientError);
    return () => {
      server.off("connection", onConnection);
      server.off("secureConnection", onSecure);
      server.off("tlsClientError", onClientError);
    };
  }

  #onConnection(socket: net.Socket): void {
    if (this.pending >= this.#max) {
      socket.destroy();
      this.#refused++;
      this.#report();
      return;
    }
    this.#open++;
    socket.once("close", () => this.#open--);
  }

  #onSecure(socket: tls.TLSSocket): void {
    this.#secured++;
    socket.once("close", () => this.#secured--);
  }

  // A plain tls.Server leaves the socket open after a handshake timeout (only this event is
  // emitted), so it is destroyed here; node:http2's secure server does that itself.
  #onClientError(err: Error, socket: tls.TLSSocket): void {
    socket.destroy();
    this.#failed++;
    this.#lastError = err.message;
    this.#report();
  }

  #report(): void {
    const now = this.#now();
    if (now - this.#lastReportAt < reportEveryMs) return;
    this.#lastReportAt = now;
    this.#log?.info(
      { failed: this.#failed, refused: this.#refused, pending: this.pending, limit: this.#max, lastError: this.#lastError || undefined },
      "TLS handshakes failed or refused (counts since the last such line; at most one per 10 s)",
    );
    this.#failed = 0;
    this.#refused = 0;
  }
}
