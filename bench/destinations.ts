// The benchmark's destinations, run as their own process so their CPU and file descriptors are
// not the client's: a sink that reports what it received, a speak-first source, an echo and an
// HTTP server, all on 127.0.0.1. Prints `{"sink":port,...}` on stdout once listening.
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { HTTP_BODY, SINK_REPORT_BYTES, SINK_REPORT_MS, SOURCE_GREETING } from "./destination-protocol.js";


const host = "127.0.0.1";
const bulk = Buffer.alloc(64 * 1024, 0x61);

function quiet(socket: net.Socket): void {
  socket.setNoDelay(true);
  socket.on("error", () => socket.destroy());
}

function sink(socket: net.Socket): void {
  quiet(socket);
  let received = 0;
  let reported = -1;
  socket.on("data", (chunk: Buffer) => {
    received += chunk.length;
  });
  const timer = setInterval(() => {
    if (received === reported || socket.destroyed) return;
    reported = received;
    const report = Buffer.allocUnsafe(SINK_REPORT_BYTES);
    report.writeBigUInt64BE(BigInt(received), 0);
    report.writeBigUInt64BE(process.hrtime.bigint(), 8);
    socket.write(report);
  }, SINK_REPORT_MS);
  socket.once("close", () => clearInterval(timer));
}

function source(socket: net.Socket): void {
  quiet(socket);
  socket.resume(); // ignore anything the client sends
  socket.write(SOURCE_GREETING);
  const pump = () => {
    while (!socket.destroyed && socket.write(bulk));
    if (!socket.destroyed) socket.once("drain", pump);
  };
  pump();
}

function echo(socket: net.Socket): void {
  quiet(socket);
  socket.pipe(socket);
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: 0, host, backlog: 4096 }, resolve);
  });
  return (server.address() as AddressInfo).port;
}

async function main(): Promise<void> {
  const httpServer = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "content-length": HTTP_BODY.length });
    res.end(HTTP_BODY);
  });
  httpServer.keepAliveTimeout = 1000;
  httpServer.on("connection", (s: net.Socket) => s.setNoDelay(true));
  httpServer.on("clientError", (_e, s: net.Socket) => s.destroy());
  const ports = {
    sink: await listen(net.createServer(sink)),
    source: await listen(net.createServer(source)),
    echo: await listen(net.createServer(echo)),
    http: await listen(httpServer),
  };
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  // The parent ends us by PID; also go when it goes (stdin closes).
  process.stdin.resume();
  process.stdin.once("end", () => process.exit(0));
}

void main();
