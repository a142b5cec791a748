// A byte-exact HTTP CONNECT client (what kube-apiserver's egress dialer sends: CONNECT with
// Host 127.0.0.1, then nothing until the response; shared/spec/konnectivity.md §1.6). It keeps
// every byte it read, so a test can check that nothing came before or inside the status line.
import { once } from "node:events";
import net from "node:net";
import tls from "node:tls";

export type ConnectTarget =
  | { readonly path: string }
  | { readonly port: number; readonly host?: string }
  | { readonly port: number; readonly tls: tls.ConnectionOptions };

export interface ConnectResult {
  readonly socket: net.Socket;
  /** The response head, up to and including the blank line (or all bytes if the socket ended first). */
  readonly head: string;
  /** Bytes read after the head. */
  readonly rest: Buffer;
}

export async function openSocket(target: ConnectTarget): Promise<net.Socket> {
  if ("path" in target) {
    const s = net.connect(target.path);
    await once(s, "connect");
    return s;
  }
  if ("tls" in target) {
    const s = tls.connect({ host: "127.0.0.1", port: target.port, ...target.tls });
    await once(s, "secureConnect");
    return s;
  }
  const s = net.connect(target.port, target.host ?? "127.0.0.1");
  await once(s, "connect");
  return s;
}

/** Reads until `enough(buffered)` or the socket ends; bounded by timeoutMs. */
export async function readUntil(socket: net.Socket, initial: Buffer, enough: (b: Buffer) => boolean, timeoutMs = 5000): Promise<Buffer> {
  let buf = initial;
  // A socket that has already ended emits nothing more: return what there is, not a timeout.
  if (enough(buf) || socket.readableEnded || socket.destroyed) return buf;
  return await new Promise<Buffer>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("close", onEnd);
      socket.off("error", onError);
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (enough(buf)) {
        socket.pause();
        done();
      }
    };
    const onEnd = () => done();
    const onError = (err: Error) => done(err);
    const timer = setTimeout(() => done(new Error(`read timed out after ${timeoutMs} ms with ${JSON.stringify(buf.toString("latin1"))}`)), timeoutMs);
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("close", onEnd);
    socket.once("error", onError);
    socket.resume();
  });
}

export async function httpConnect(target: ConnectTarget, address: string, timeoutMs = 5000): Promise<ConnectResult> {
  const socket = await openSocket(target);
  socket.on("error", () => {});
  socket.write(`CONNECT ${address} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: conformance-test\r\n\r\n`);
  const buf = await readUntil(socket, Buffer.alloc(0), (b) => b.includes("\r\n\r\n"), timeoutMs);
  const i = buf.indexOf("\r\n\r\n");
  const end = i >= 0 ? i + 4 : buf.length;
  return { socket, head: buf.subarray(0, end).toString("latin1"), rest: buf.subarray(end) };
}

/** Everything the server sends until it closes the socket. */
export async function readToEnd(socket: net.Socket, rest: Buffer = Buffer.alloc(0), timeoutMs = 5000): Promise<string> {
  const all = await readUntil(socket, rest, () => false, timeoutMs);
  return all.toString("utf8");
}

/** Splits an HTTP/1.1 response into its head and its body, undoing chunked transfer coding. */
export function parseResponse(response: string): { head: string; body: string } {
  const i = response.indexOf("\r\n\r\n");
  if (i < 0) return { head: response, body: "" };
  const head = response.slice(0, i + 4);
  let body = response.slice(i + 4);
  if (/\r\ntransfer-encoding: chunked\r\n/i.test(head)) {
    let out = "";
    let rest = body;
    for (;;) {
      const eol = rest.indexOf("\r\n");
      const size = parseInt(rest.slice(0, eol), 16);
      if (!(size > 0)) break;
      out += rest.slice(eol + 2, eol + 2 + size);
      rest = rest.slice(eol + 2 + size + 2);
    }
    body = out;
  }
  return { head, body };
}

/**
 * Ping-pong rounds of `size` bytes over an echo connection until stopped: counts the rounds and
 * checks every byte that comes back.
 */
export function pingPong(socket: net.Socket, size = 16 * 1024): { readonly rounds: number; stop(): Promise<void> } {
  let rounds = 0;
  let stopped = false;
  const done = (async () => {
    let pending: Buffer = Buffer.alloc(0);
    while (!stopped) {
      const payload = Buffer.alloc(size, rounds & 0xff);
      socket.write(payload);
      const got = await readUntil(socket, pending, (b) => b.length >= size, 3000);
      if (got.length < size) throw new Error(`round ${rounds}: the connection ended after ${got.length} of ${size} bytes`);
      if (!got.subarray(0, size).equals(payload)) throw new Error(`round ${rounds} came back altered`);
      pending = got.subarray(size);
      rounds++;
    }
  })();
  // Reported by stop(); a test that fails before stopping must not also leave an unhandled rejection.
  done.catch(() => {});
  return {
    get rounds() {
      return rounds;
    },
    async stop() {
      stopped = true;
      await done;
    },
  };
}
