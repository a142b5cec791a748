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

/** HTTP CONNECT on the Unix socket, then the raw stream; anything after the head is put back. */
async function connectViaHttpConnect(path: string, target: string): Promise<net.Socket> {
  const socket = await connectTcp({ path });
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  const head = await withTimeout(new Promise<Buffer>((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buf.length > 16 * 1024) done(new Error("CONNECT response head over 16 KiB"));
        return;
      }
      socket.pause();
      const rest = buf.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      done(null, buf.subarray(0, end));
    };
    const onEnd = () => done(new Error(`connection closed during CONNECT: ${buf.toString("latin1").slice(0, 200)}`));
    const done = (err: Error | null, value?: Buffer) => {
      socket.off("data", onData).off("end", onEnd).off("error", done);
      if (err) reject(err);
      else resolve(value!);
    };
    socket.on("data", onData).once("end", onEnd).once("error", done);
    socket.resume();
  }), connectTimeoutMs, "CONNECT", () => socket.destroy()).catch((err: unknown) => {
    socket.destroy();
    throw err;
  });
  const status = head.toString("latin1", 0, Math.min(head.length, 200));
  if (!status.startsWith("HTTP/1.1 200")) {
    socket.destroy();
    if (!status.startsWith("HTTP/")) throw new OrderingError(`bytes before the CONNECT response: ${JSON.stringify(status.slice(0, 40))}`);
    throw new Error(`CONNECT failed: ${status.split("\r\n")[0]}`);
  }
  return socket;
}

/**
 * HTTP CONNECT on the Unix socket with the bytes going to `sink`: the response head is gathered
 * from the sink's first views, what follows it goes to `sink`.
 */
async function connectSinkViaHttpConnect(path: string, target: string, sink: Sink): Promise<net.Socket> {
  let head: Buffer = Buffer.alloc(0);
  let answered: ((err: Error | null) => void) | undefined;
  let deliver: Sink = (bytes) => {
    head = Buffer.concat([head, bytes]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) {
      if (head.length > 16 * 1024) answered?.(new Error("CONNECT response head over 16 KiB"));
      return;
    }
    const status = head.toString("latin1", 0, Math.min(end, 200));
    const rest = head.subarray(end + 4);
    head = head.subarray(0, end);
    if (!status.startsWith("HTTP/1.1 200")) {
      answered?.(status.startsWith("HTTP/") ? new Error(`CONNECT failed: ${status.split("\r\n")[0]}`) : new OrderingError(`bytes before the CONNECT response: ${JSON.stringify(status.slice(0, 40))}`));
      return;
    }
    deliver = sink;
    answered?.(null);
    if (rest.length > 0) sink(rest);
  };
  const socket = await connectTcp({ path }, (bytes) => deliver(bytes));
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  await withTimeout(new Promise<void>((resolve, reject) => {
    const onEnd = () => answered?.(new Error(`connection closed during CONNECT: ${head.toString("latin1").slice(0, 200)}`));
    answered = (err) => {
      answered = undefined;
      socket.off("end", onEnd).off("error", onEnd);
      if (err) reject(err);
      else resolve();
    };
    socket.once("end", onEnd).once("error", onEnd);
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
        connectSink: (dest, sink) => connectSinkViaHttpConnect(stack.httpConnectPath, target(dest), sink),
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
