// The four ways the benchmark reaches a destination: direct TCP, the plain two-hop relay, and
// nodetunnel through each frontend. Each `connect` resolves once bytes can flow, with the stream
// paused (the caller attaches its listeners, then resumes); each `connectSink` with the bytes
// already flowing to its sink.
import net from "node:net";
import type { Duplex } from "node:stream";
import { dialThroughProxy } from "../src/tunnel/index.js";
import type { DestinationName } from "./destination-protocol.js";
import { dialH2c } from "./h2c-proxy-client.js";
import { readInto } from "./sink-read.js";
import type { Stack } from "./stack.js";

export type ModeName = "direct" | "relay" | "http-connect" | "grpc";
export const allModes: readonly ModeName[] = ["direct", "relay", "http-connect", "grpc"];
export const tunnelModes: readonly ModeName[] = ["http-connect", "grpc"];

/** The client the gRPC rows use: both open one HTTP/2 connection and one stream per dial, as kube-apiserver does. */
export type GrpcClientKind = "h2c" | "node-http2";
export const grpcClientKinds: readonly GrpcClientKind[] = ["h2c", "node-http2"];
export const grpcClientDescriptions: Record<GrpcClientKind, string> = {
  "h2c": "bench/h2c-proxy-client.ts: HTTP/2 framed by hand, one connection + one /ProxyService/Proxy stream per dial",
  "node-http2": "src/tunnel/proxy-client.ts dialThroughProxy on node:http2: one connection + one /ProxyService/Proxy stream per dial",
};

/** Gets a connection's bytes as views of a shared buffer, valid only during the call. */
export type Sink = (bytes: Uint8Array) => void;

export interface Path {
  readonly mode: ModeName;
  connect(dest: DestinationName): Promise<Duplex>;
  /**
   * A connection whose bytes from the destination go to `sink` as they are read, without a
   * buffer per read (a bulk download as a Go client reads it); the caller only destroys it.
   */
  connectSink(dest: DestinationName, sink: Sink): Promise<Duplex>;
}

const host = "127.0.0.1";
const connectTimeoutMs = 15_000;

/** Raised when a speak-first destination's bytes reached the client before the tunnel's "200". */
export class OrderingError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function connectTcp(options: net.NetConnectOpts, sink?: Sink): Promise<net.Socket> {
  const socket = net.connect(sink ? { ...options, onread: readInto(sink) } : options);
  if (!sink) socket.pause(); // a sink takes bytes as they come
  await withTimeout(new Promise<void>((resolve, reject) => {
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve();
    });
    socket.once("error", reject);
  }), connectTimeoutMs, "connect", () => socket.destroy());
  if ("port" in options) socket.setNoDelay(true);
  return socket;
}

/**
 * Gathers an HTTP CONNECT response head from the bytes as they come: undefined until it is
 * complete, then the bytes after it. Throws on a refusal, bytes before the response (the upstream
 * race) or a head over 16 KiB.
 */
function connectHeadReader(): { push(bytes: Uint8Array): Buffer | undefined; text(): string } {
  let buf: Buffer = Buffer.alloc(0);
  return {
    push(bytes) {
      buf = Buffer.concat([buf, bytes]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buf.length > 16 * 1024) throw new Error("CONNECT response head over 16 KiB");
        return undefined;
      }
      const status = buf.toString("latin1", 0, Math.min(end, 200));
      if (!status.startsWith("HTTP/")) throw new OrderingError(`bytes before the CONNECT response: ${JSON.stringify(status.slice(0, 40))}`);
      if (!status.startsWith("HTTP/1.1 200")) throw new Error(`CONNECT failed: ${status.split("\r\n")[0]}`);
      return buf.subarray(end + 4);
    },
    text: () => buf.toString("latin1").slice(0, 200),
  };
}

/**
 * HTTP CONNECT on the Unix socket, then the raw stream: paused, with anything after the head put
 * back, or with every byte after the head going to `sink`.
 */
async function connectViaHttpConnect(path: string, target: string, sink?: Sink): Promise<net.Socket> {
  const head = connectHeadReader();
  let answered: ((err: Error | null, rest?: Buffer) => void) | undefined;
  let onBytes: Sink = (bytes) => {
    let rest: Buffer | undefined;
    try {
      rest = head.push(bytes);
    } catch (err) {
      answered?.(err as Error);
      return;
    }
    if (rest === undefined) return;
    if (sink) onBytes = sink;
    answered?.(null, rest);
  };
  const socket = await connectTcp({ path }, sink && ((bytes) => onBytes(bytes)));
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  await withTimeout(new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => onBytes(chunk);
    const onEnd = () => answered?.(new Error(`connection closed during CONNECT: ${head.text()}`));
    const onError = (err: Error) => answered?.(err);
    answered = (err, rest) => {
      answered = undefined;
      socket.off("data", onData).off("end", onEnd).off("error", onError);
      if (err) return reject(err);
      // At once, before the next read: the bytes that came with the head go first.
      if (sink) {
        if (rest!.length > 0) sink(rest!);
      } else {
        socket.pause();
        if (rest!.length > 0) socket.unshift(rest!);
      }
      resolve();
    };
    if (!sink) socket.on("data", onData);
    socket.once("end", onEnd).once("error", onError);
    socket.resume();
  }), connectTimeoutMs, "CONNECT", () => socket.destroy()).catch((err: unknown) => {
    socket.destroy();
    throw err;
  });
  return socket;
}

export function makePath(mode: ModeName, stack: Stack, grpcClient: GrpcClientKind = "h2c"): Path {
  const target = (dest: DestinationName) => `${host}:${stack.destinations[dest]}`;
  switch (mode) {
    case "direct":
      return {
        mode,
        connect: (dest) => connectTcp({ host, port: stack.destinations[dest] }),
        connectSink: (dest, sink) => connectTcp({ host, port: stack.destinations[dest] }, sink),
      };
    case "relay":
      return {
        mode,
        connect: (dest) => connectTcp({ host, port: stack.relayPorts[stack.destinations[dest]]! }),
        connectSink: (dest, sink) => connectTcp({ host, port: stack.relayPorts[stack.destinations[dest]]! }, sink),
      };
    case "http-connect":
      return {
        mode,
        connect: (dest) => connectViaHttpConnect(stack.httpConnectPath, target(dest)),
        connectSink: (dest, sink) => connectViaHttpConnect(stack.httpConnectPath, target(dest), sink),
      };
    case "grpc":
      // kube-apiserver's way: one HTTP/2 connection and one /ProxyService/Proxy stream per dial.
      // By default with the lean client (a node:http2 client costs as much CPU as the server it
      // measures, on the same cores); --grpc-client=node-http2 uses the project's konnectivity
      // client (src/tunnel/proxy-client.ts) instead.
      if (grpcClient === "h2c") {
        return {
          mode,
          connect: (dest) => dialH2c(stack.grpcPath, target(dest), connectTimeoutMs),
          connectSink: (dest, sink) => dialH2c(stack.grpcPath, target(dest), connectTimeoutMs, sink),
        };
      }
      return {
        mode,
        connect: async (dest) => {
          const duplex = await dialThroughProxy({ path: stack.grpcPath }, target(dest), { timeoutMs: connectTimeoutMs });
          duplex.pause();
          return duplex;
        },
        // node:http2 reads into a buffer of its own per read in any case.
        connectSink: async (dest, sink) => {
          const duplex = await dialThroughProxy({ path: stack.grpcPath }, target(dest), { timeoutMs: connectTimeoutMs });
          return duplex.on("data", sink);
        },
      };
  }
}
