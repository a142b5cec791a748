// What Node's own transports cost per MB on this machine, with no nodetunnel code in the path:
// the floor under the tunnel's agent link. One process is both ends (so the CPU figure is the sum
// of sender and receiver), 64 KiB writes, one connection on loopback:
//   tls     — a node:tls socket pair
//   h2c     — one node:http2 stream without TLS
//   h2-tls  — one node:http2 stream over TLS (what the agent link is)
// each with the writer keeping one 64 KiB chunk in flight (as the tunnel's scheduler does) and
// with 1 MiB in flight.
// Usage: npx tsx bench/transport-floor.ts [MiB per measurement, default 512]
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import type { Writable } from "node:stream";
import { createPki } from "../src/transport/index.js";

const totalBytes = Number(process.argv[2] ?? 512) * 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024, 7);
const pki = await createPki();

interface Result { readonly mbps: number; readonly cpuMsPerMB: number }

/** Writes totalBytes into `w`, keeping at most `inFlight` bytes buffered; resolves when `received` reports all. */
function pump(w: Writable, inFlight: number, onReceiver: (count: (n: number) => void) => void): Promise<Result> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    let sent = 0;
    let got = 0;
    onReceiver((n) => {
      got += n;
      if (got < totalBytes) return;
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      resolve({ mbps: totalBytes / 1e6 / seconds, cpuMsPerMB: (cpu.user + cpu.system) / 1000 / (totalBytes / 1e6) });
    });
    const write = (): void => {
      while (sent < totalBytes) {
        sent += chunk.length;
        if (!w.write(chunk) && w.writableLength >= inFlight) return void w.once("drain", write);
      }
    };
    write();
  });
}

async function overTls(inFlight: number): Promise<Result> {
  let receive: ((n: number) => void) | undefined;
  const server = tls.createServer({ cert: pki.server.cert, key: pki.server.key }, (s) => s.on("data", (d: Buffer) => receive?.(d.length)));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const client = tls.connect({ port: (server.address() as AddressInfo).port, host: "127.0.0.1", ca: pki.ca, servername: "localhost" });
  await new Promise((r) => client.once("secureConnect", r));
  const result = await pump(client, inFlight, (count) => (receive = count));
  client.destroy();
  server.close();
  return result;
}

async function overHttp2(secure: boolean, inFlight: number): Promise<Result> {
  const settings = { initialWindowSize: 8 * 1024 * 1024, maxFrameSize: 16 * 1024 * 1024 - 1 };
  let receive: ((n: number) => void) | undefined;
  const server = secure
    ? http2.createSecureServer({ cert: pki.server.cert, key: pki.server.key, settings })
    : http2.createServer({ settings });
  server.on("stream", (stream) => {
    stream.respond({ ":status": 200 });
    stream.on("data", (d: Buffer) => receive?.(d.length));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const session = http2.connect(secure ? `https://localhost:${port}` : `http://127.0.0.1:${port}`, { ca: pki.ca, settings });
  await new Promise((r) => session.once("connect", r));
  session.setLocalWindowSize(32 * 1024 * 1024);
  const stream = session.request({ ":method": "POST", ":path": "/" });
  const result = await pump(stream, inFlight, (count) => (receive = count));
  session.destroy();
  server.close();
  return result;
}

const rows: Array<[string, () => Promise<Result>]> = [
  ["tls, one chunk in flight", () => overTls(64 * 1024)],
  ["tls, 1 MiB in flight", () => overTls(1024 * 1024)],
  ["h2c, one chunk in flight", () => overHttp2(false, 64 * 1024)],
  ["h2c, 1 MiB in flight", () => overHttp2(false, 1024 * 1024)],
  ["h2-tls, one chunk in flight", () => overHttp2(true, 64 * 1024)],
  ["h2-tls, 1 MiB in flight", () => overHttp2(true, 1024 * 1024)],
];
console.log(`node ${process.version}, ${totalBytes / 1024 / 1024} MiB per row, sender and receiver in one process`);
for (const [name, run] of rows) {
  const r = await run();
  console.log(`${name.padEnd(28)} ${r.mbps.toFixed(0).padStart(5)} MB/s  ${r.cpuMsPerMB.toFixed(2)} ms CPU per MB (both ends)`);
}
