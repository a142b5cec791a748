// The builtin HTTP/2 server session at the frame level: a raw client writes frames byte by byte
// (RFC 9113) and reads what the session answers. The gRPC suite (grpc-server.test.ts) and the
// interop tests run real clients (node:http2, grpc-js, python grpcio) against it as well.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeHeaderBlock, type HeaderList } from "./hpack.js";
import { clientPreface, encodeFrame, Flag, FrameType, Http2ErrorCode, Setting, settingsPayload, windowUpdatePayload } from "./http2-frame.js";
import { Http2Session, type Http2SessionOptions, type IncomingHeaders } from "./http2-session.js";
import type { Http2Stream } from "./http2-stream.js";
import { StreamTable } from "./stream-table.js";
import { RawHttp2Peer, type Frame } from "../../test/helpers/raw-http2-peer.js";

const defaults: Http2SessionOptions = {
  streamWindowBytes: 1024 * 1024,
  sessionWindowBytes: 4 * 1024 * 1024,
  maxFrameBytes: 64 * 1024,
  maxConcurrentStreams: 100,
  maxHeaderListBytes: 16 * 1024,
};

interface StreamEvent { stream: Http2Stream; headers: IncomingHeaders; raw: string[] }

async function startServer(t: TestContext, options: Partial<Http2SessionOptions> = {}) {
  const sessions: Http2Session[] = [];
  const streams: StreamEvent[] = [];
  const waiters: Array<() => void> = [];
  const server = net.createServer((socket) => {
    const session = new Http2Session(socket, { ...defaults, ...options });
    session.on("error", () => {});
    session.on("stream", (stream: Http2Stream, headers: IncomingHeaders, _flags: number, raw: string[]) => {
      stream.on("error", () => {});
      streams.push({ stream, headers, raw });
      waiters.splice(0).forEach((w) => w());
    });
    sessions.push(session);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  const nextStream = async (): Promise<StreamEvent> => {
    const deadline = Date.now() + 2000;
    const seen = streams.length;
    while (streams.length === seen) {
      if (Date.now() > deadline) throw new Error("no stream event within 2 s");
      await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 50); });
    }
    return streams[seen]!;
  };
  return { port: (server.address() as AddressInfo).port, sessions, streams, nextStream };
}

/** A client that writes raw frames and collects the server's. */
class RawClient extends RawHttp2Peer {
  static async connect(t: TestContext, port: number, settings: Array<[number, number]> = []): Promise<RawClient> {
    const socket = net.connect(port, "127.0.0.1");
    t.after(() => socket.destroy());
    await once(socket, "connect");
    const client = new RawClient(socket);
    client.send(Buffer.concat([clientPreface, encodeFrame(FrameType.SETTINGS, 0, 0, settingsPayload(settings))]));
    return client;
  }

  request(streamId: number, extra: HeaderList = [], flags: number = Flag.END_HEADERS): void {
    this.frame(FrameType.HEADERS, flags, streamId, encodeHeaderBlock([
      [":method", "POST"], [":scheme", "http"], [":path", "/S/M"], [":authority", "localhost"], ["content-type", "application/grpc"], ...extra,
    ]));
  }
}

const dataBytes = (frames: Frame[], streamId: number) =>
  frames.filter((f) => f.type === FrameType.DATA && f.streamId === streamId).reduce((n, f) => n + f.payload.length, 0);

test("the session sends its SETTINGS and opens the connection window at once, and acknowledges the client's", async (t) => {
  const { port } = await startServer(t);
  const client = await RawClient.connect(t, port);
  const settings = await client.expect((f) => f.type === FrameType.SETTINGS && f.flags === 0, "SETTINGS");
  const values = new Map<number, number>();
  for (let i = 0; i < settings.payload.length; i += 6) values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
  assert.equal(values.get(Setting.INITIAL_WINDOW_SIZE), defaults.streamWindowBytes);
  assert.equal(values.get(Setting.MAX_FRAME_SIZE), defaults.maxFrameBytes);
  assert.equal(values.get(Setting.MAX_CONCURRENT_STREAMS), defaults.maxConcurrentStreams);
  assert.equal(values.has(Setting.ENABLE_PUSH), false, "a server may not announce ENABLE_PUSH 1, and need not send 0");
  const update = await client.expect((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0, "connection WINDOW_UPDATE");
  assert.equal(update.payload.readUInt32BE(0), defaults.sessionWindowBytes - 65_535);
  await client.expect((f) => f.type === FrameType.SETTINGS && f.flags === Flag.ACK, "SETTINGS ACK");
});

test("PING is answered with the same payload; unknown frame types and PRIORITY are ignored", async (t) => {
  const { port } = await startServer(t);
  const client = await RawClient.connect(t, port);
  client.frame(0xfa, 0, 0, Buffer.from("whatever"));
  client.frame(FrameType.PRIORITY, 0, 3, Buffer.alloc(5));
  client.frame(FrameType.PING, 0, 0, Buffer.from("12345678"));
  const ack = await client.expect((f) => f.type === FrameType.PING, "PING ACK");
  assert.equal(ack.flags, Flag.ACK);
  assert.equal(ack.payload.toString(), "12345678");
});

test("a request split over HEADERS (padded, with priority) and CONTINUATION arrives whole, Huffman and dynamic table included", async (t) => {
  const { port, nextStream } = await startServer(t);
  const client = await RawClient.connect(t, port);
  const block = encodeHeaderBlock([[":method", "POST"], [":scheme", "http"], [":path", "/S/M"], ["content-type", "application/grpc"], ["agentid", "a".repeat(100)]]);
  const first = Buffer.concat([Buffer.from([3]), Buffer.alloc(5), block.subarray(0, 10), Buffer.alloc(3)]); // pad length 3, priority fields
  client.frame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, first);
  client.frame(FrameType.CONTINUATION, 0, 1, block.subarray(10, 20));
  client.frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(20));
  const { headers, raw } = await nextStream();
  assert.equal(headers[":path"], "/S/M");
  assert.equal(headers.agentid, "a".repeat(100));
  assert.deepEqual(raw.slice(-2), ["agentid", "a".repeat(100)]);
  // A literal with incremental indexing, then the same field by index on the next request.
  client.frame(FrameType.HEADERS, Flag.END_HEADERS, 3, Buffer.concat([
    Buffer.from("838684", "hex"), Buffer.from([0x40, 4]), Buffer.from("x-id"), Buffer.from([3]), Buffer.from("one"),
  ]));
  assert.equal((await nextStream()).headers["x-id"], "one");
  client.frame(FrameType.HEADERS, Flag.END_HEADERS, 5, Buffer.from("838684be", "hex"));
  assert.equal((await nextStream()).headers["x-id"], "one");
});

test("a frame between HEADERS and its CONTINUATION is a connection error (GOAWAY PROTOCOL_ERROR)", async (t) => {
  const { port } = await startServer(t);
  const client = await RawClient.connect(t, port);
  client.frame(FrameType.HEADERS, 0, 1, encodeHeaderBlock([[":method", "POST"]]));
  client.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
  assert.match(await client.expectGoaway(Http2ErrorCode.PROTOCOL_ERROR), /expected CONTINUATION/);
  await within(() => client.isClosed, "the socket closes");
});

test("the first frame must be SETTINGS; a bad preface closes the socket", async (t) => {
  const { port } = await startServer(t);
  const socket = net.connect(port, "127.0.0.1");
  t.after(() => socket.destroy());
  const client = new RawClient(socket);
  client.send(Buffer.concat([clientPreface, encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8))]));
  assert.match(await client.expectGoaway(Http2ErrorCode.PROTOCOL_ERROR), /first frame after the preface must be SETTINGS/);

  const other = net.connect(port, "127.0.0.1");
  t.after(() => other.destroy());
  const http1 = new RawClient(other);
  http1.send(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  await within(() => http1.isClosed, "an HTTP/1.1 request is cut off");
});

test("frame size, stream-id and window violations are connection errors with the right code", async (t) => {
  const { port } = await startServer(t, { maxFrameBytes: 16_384 });
  const cases: Array<[string, (c: RawClient) => void, number]> = [
    ["oversized frame", (c) => c.frame(FrameType.DATA, 0, 1, Buffer.alloc(16_385)), Http2ErrorCode.FRAME_SIZE_ERROR],
    ["even stream id", (c) => c.request(2), Http2ErrorCode.PROTOCOL_ERROR],
    ["DATA on an idle stream", (c) => c.frame(FrameType.DATA, 0, 7, Buffer.alloc(1)), Http2ErrorCode.PROTOCOL_ERROR],
    ["PING of 7 bytes", (c) => c.frame(FrameType.PING, 0, 0, Buffer.alloc(7)), Http2ErrorCode.FRAME_SIZE_ERROR],
    ["SETTINGS of 5 bytes", (c) => c.frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5)), Http2ErrorCode.FRAME_SIZE_ERROR],
    ["connection WINDOW_UPDATE of 0", (c) => c.frame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdatePayload(0)), Http2ErrorCode.PROTOCOL_ERROR],
    ["connection window past 2^31-1", (c) => c.frame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdatePayload(2 ** 31 - 1)), Http2ErrorCode.FLOW_CONTROL_ERROR],
    ["PUSH_PROMISE", (c) => c.frame(FrameType.PUSH_PROMISE, 0, 1, Buffer.alloc(4)), Http2ErrorCode.PROTOCOL_ERROR],
    ["bad HPACK", (c) => c.frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x80])), Http2ErrorCode.COMPRESSION_ERROR],
    ["lower stream id after a higher one", (c) => { c.request(5); c.request(3); }, Http2ErrorCode.STREAM_CLOSED],
    ["a header block that never ends (CONTINUATION flood)", (c) => {
      c.frame(FrameType.HEADERS, 0, 1, encodeHeaderBlock([[":method", "POST"]]));
      for (let i = 0; i < 5; i++) c.frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(16_000, 0x82));
    }, Http2ErrorCode.ENHANCE_YOUR_CALM],
  ];
  for (const [name, act, code] of cases) {
    const client = await RawClient.connect(t, port);
    act(client);
    await client.expectGoaway(code).catch((err: Error) => assert.fail(`${name}: ${err.message}`));
  }
});

test("stream errors reset only their stream: a malformed request and a stream-window overrun leave the others working", async (t) => {
  const { port, nextStream } = await startServer(t, { streamWindowBytes: 65_535 });
  const client = await RawClient.connect(t, port);
  client.request(1, [["Upper", "x"]]);
  await client.expectReset(1, Http2ErrorCode.PROTOCOL_ERROR);
  client.request(3, [["connection", "keep-alive"]]);
  await client.expectReset(3, Http2ErrorCode.PROTOCOL_ERROR);
  client.request(5);
  const { stream } = await nextStream();
  stream.pause();
  stream.on("data", () => {});
  for (let i = 0; i < 4; i++) client.frame(FrameType.DATA, 0, 5, Buffer.alloc(16_000));
  client.frame(FrameType.DATA, 0, 5, Buffer.alloc(2000)); // 66,000 > 65,535
  await client.expectReset(5, Http2ErrorCode.FLOW_CONTROL_ERROR);
  client.request(7, [], Flag.END_HEADERS | Flag.END_STREAM);
  const next = await nextStream();
  next.stream.respond({ ":status": 200 }, { endStream: true });
  await client.expect((f) => f.type === FrameType.HEADERS && f.streamId === 7 && (f.flags & Flag.END_STREAM) !== 0, "the response on stream 7");
  assert.equal(client.frames.some((f) => f.type === FrameType.GOAWAY), false);
});

test("a DATA frame that arrives in pieces reaches its stream as it comes, ending on its last piece; a streamed frame's errors are those of a whole one", async (t) => {
  const { port, nextStream } = await startServer(t, { streamWindowBytes: 65_535 });
  const client = await RawClient.connect(t, port);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  client.request(1);
  const { stream } = await nextStream();
  const got: Buffer[] = [];
  let ended = 0;
  stream.on("data", (c: Buffer) => got.push(Buffer.from(c)));
  stream.on("end", () => ended++);
  const payload = Buffer.from(Array.from({ length: 40_000 }, (_, i) => i % 251));
  const frame = encodeFrame(FrameType.DATA, Flag.END_STREAM, 1, payload);
  client.send(frame.subarray(0, 9 + 15_000));
  await sleep(50);
  assert.equal(Buffer.concat(got).length, 15_000, "the first piece is delivered before the rest of the frame exists");
  assert.equal(ended, 0);
  client.send(frame.subarray(9 + 15_000, 9 + 30_000));
  await sleep(50);
  client.send(frame.subarray(9 + 30_000));
  await sleep(50);
  assert.deepEqual(Buffer.concat(got), payload);
  assert.equal(ended, 1, "END_STREAM applies once, with the last piece");

  // Over the stream's window, known from the header: RST_STREAM before any byte is delivered,
  // and the frame's remaining bytes are skipped, so the next frames still parse.
  client.request(3);
  const over = await nextStream();
  let overBytes = 0;
  over.stream.on("data", (c: Buffer) => (overBytes += c.length));
  const big = encodeFrame(FrameType.DATA, 0, 3, Buffer.alloc(65_536, 7));
  client.send(big.subarray(0, 9 + 1000));
  await client.expectReset(3, Http2ErrorCode.FLOW_CONTROL_ERROR);
  client.send(big.subarray(9 + 1000));
  client.request(5, [], Flag.END_HEADERS | Flag.END_STREAM);
  const next = await nextStream();
  next.stream.respond({ ":status": 200 }, { endStream: true });
  await client.expect((f) => f.type === FrameType.HEADERS && f.streamId === 5 && (f.flags & Flag.END_STREAM) !== 0, "the response on stream 5");
  assert.equal(overBytes, 0);
  assert.equal(client.frames.some((f) => f.type === FrameType.GOAWAY), false);

  // DATA on stream 0 is a connection error, streamed or not.
  const other = await RawClient.connect(t, port);
  other.send(encodeFrame(FrameType.DATA, 0, 0, Buffer.alloc(20_000)).subarray(0, 9 + 100));
  await other.expectGoaway(Http2ErrorCode.PROTOCOL_ERROR);
});

test("streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused with REFUSED_STREAM", async (t) => {
  const { port, streams } = await startServer(t, { maxConcurrentStreams: 2 });
  const client = await RawClient.connect(t, port);
  client.request(1);
  client.request(3);
  client.request(5);
  await client.expectReset(5, Http2ErrorCode.REFUSED_STREAM);
  assert.equal(streams.length, 2);
});

test("responses respect the client's stream window and frame size, and resume on WINDOW_UPDATE", async (t) => {
  const { port, nextStream } = await startServer(t);
  const client = await RawClient.connect(t, port, [[Setting.INITIAL_WINDOW_SIZE, 1000]]);
  client.request(1);
  const { stream } = await nextStream();
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  assert.equal(stream.write(Buffer.alloc(50_000, 1)), true);
  stream.end();
  await client.expect(() => dataBytes(client.frames, 1) === 1000, "1000 bytes of DATA");
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(dataBytes(client.frames, 1), 1000, "nothing beyond the stream window");
  client.frame(FrameType.WINDOW_UPDATE, 0, 1, windowUpdatePayload(100_000));
  const trailers = await client.expect((f) => f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM) !== 0, "trailers");
  assert.equal(dataBytes(client.frames, 1), 50_000);
  assert.ok(client.frames.filter((f) => f.type === FrameType.DATA).every((f) => f.payload.length <= 16_384), "DATA frames fit the default SETTINGS_MAX_FRAME_SIZE");
  assert.ok(client.frames.indexOf(trailers) > client.frames.findLastIndex((f) => f.type === FrameType.DATA), "trailers come after all DATA");
  const headerFrames = client.frames.filter((f) => f.type === FrameType.HEADERS);
  assert.deepEqual(client.decoder.decode(headerFrames[0]!.payload).headers, [[":status", "200"], ["content-type", "application/grpc"]]);
  assert.deepEqual(client.decoder.decode(headerFrames[1]!.payload).headers, [["grpc-status", "0"]]);
});

test("round robin stays one frame per stream when a stream's drain listener refills it during the flush", async (t) => {
  // The tunnel's scheduler writes the next packet from the stream's "drain", which the session
  // emits while it is sending. That stream must not be queued twice: each duplicate is one more
  // turn per round (the other stream starves) and one more entry to walk per frame (the flush
  // went quadratic: 4 KiB packets, as upstream's agent sends them, took the agent's whole CPU).
  const { port, nextStream } = await startServer(t, { socketBufferBytes: 256 * 1024 });
  const client = await RawClient.connect(t, port, [[Setting.INITIAL_WINDOW_SIZE, 1 << 30]]);
  client.frame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdatePayload((1 << 30) - 65_535));
  client.request(1);
  const a = (await nextStream()).stream;
  client.request(3);
  const b = (await nextStream()).stream;
  const total = 2 * 1024 * 1024;
  // Stream 3: everything queued at once, 16 KiB pieces.
  for (let sent = 0; sent < total; sent += 16 * 1024) b.write(Buffer.alloc(16 * 1024, 3));
  // Stream 1: 4 KiB writes, refilled from "drain".
  let written = 0;
  const refill = () => {
    while (written < total) {
      written += 4096;
      if (!a.write(Buffer.alloc(4096, 1))) return;
    }
  };
  a.on("drain", refill);
  refill();
  await within(() => dataBytes(client.frames, 1) === total, "all of stream 1", 20_000);
  // While both had data, the frames alternated: count stream 1's frames between two of stream 3's.
  const order = client.frames.filter((f) => f.type === FrameType.DATA).map((f) => f.streamId);
  const lastOf3 = order.lastIndexOf(3);
  let longestRun = 0;
  let run = 0;
  for (const id of order.slice(0, lastOf3)) {
    run = id === 1 ? run + 1 : 0;
    longestRun = Math.max(longestRun, run);
  }
  assert.ok(longestRun <= 1, `stream 1 sent ${longestRun} frames in a row while stream 3 waited`);
});

test("a begun DATA chunk leaves in one write past the socket limit; a chunk too large for that waits at the limit", async (t) => {
  // A 64 KiB tunnel packet in a gRPC message is four 16 KiB frames and a ~20-byte tail to
  // kube-apiserver. Stopping at the 16 KiB socket limit wrote each frame in a syscall of its own.
  const { port, sessions, nextStream } = await startServer(t, { socketBufferBytes: 16 * 1024 });
  const client = await RawClient.connect(t, port, [[Setting.INITIAL_WINDOW_SIZE, 1 << 24]]);
  client.frame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdatePayload((1 << 24) - 65_535));
  client.request(1);
  const { stream } = await nextStream();
  stream.respond({ ":status": 200 });
  const socket = sessions[0]!.socket;
  await within(() => socket.writableLength === 0, "the HEADERS written");
  const packet = 64 * 1024 + 20;
  stream.write(Buffer.alloc(packet, 1));
  assert.equal(socket.writableLength, packet + 5 * 9, "all five frames handed to the socket at once");
  await within(() => dataBytes(client.frames, 1) === packet, "the packet");
  const sizes = client.frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload.length);
  assert.deepEqual(sizes, [16_384, 16_384, 16_384, 16_384, 20]);

  await within(() => socket.writableLength === 0, "the packet written");
  stream.write(Buffer.alloc(1024 * 1024, 2));
  assert.equal(socket.writableLength, 16_384 + 9, "a 1 MiB chunk stops at the limit, one frame");
  await within(() => dataBytes(client.frames, 1) === packet + 1024 * 1024, "the 1 MiB chunk", 5000);
});

test("a paused stream holds back its WINDOW_UPDATEs; the connection window is credited as data arrives", async (t) => {
  // Credit is returned in steps of half a window: 75,000 bytes for the connection here.
  const { port, nextStream } = await startServer(t, { streamWindowBytes: 100_000, sessionWindowBytes: 150_000 });
  const client = await RawClient.connect(t, port);
  client.request(1);
  const { stream } = await nextStream();
  const received: number[] = [];
  stream.pause();
  stream.on("data", (chunk: Buffer) => received.push(chunk.length));
  for (let i = 0; i < 6; i++) client.frame(FrameType.DATA, 0, 1, Buffer.alloc(16_000));
  await client.expect((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0 && f.payload.readUInt32BE(0) === 80_000, "connection credit");
  assert.equal(client.frames.some((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 1), false);
  assert.deepEqual(received, []);
  stream.resume();
  await client.expect((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 1, "stream credit after resume()");
  assert.equal(received.reduce((a, b) => a + b, 0), 96_000);
});

test("DATA held for a paused stream is copied out of the socket read it came in; DATA read at once is not", async (t) => {
  const { port, nextStream } = await startServer(t);
  const client = await RawClient.connect(t, port);
  client.request(1);
  const { stream } = await nextStream();
  const received: Buffer[] = [];
  stream.pause();
  stream.on("data", (chunk: Buffer) => received.push(chunk));
  // One write: a 1-byte DATA frame and 16 KiB of an unknown frame type, read in one chunk.
  const filler = encodeFrame(0xfa, 0, 0, Buffer.alloc(16_000));
  client.send(Buffer.concat([encodeFrame(FrameType.DATA, 0, 1, Buffer.from("x")), filler]));
  client.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
  await client.expect((f) => f.type === FrameType.PING, "PING ACK");
  stream.resume();
  await within(() => received.length === 1, "the held byte");
  assert.equal(received[0]!.toString(), "x");
  assert.equal(received[0]!.buffer.byteLength, 1, "the held byte does not keep its 16 KiB read");
  client.send(Buffer.concat([encodeFrame(FrameType.DATA, 0, 1, Buffer.alloc(16_000, 1)), filler]));
  await within(() => received.length === 2, "the flowing DATA");
  assert.ok(received[1]!.buffer.byteLength > 16_000, "delivered at once: a view of the read, not a copy");
});

test("a server stream that sent its whole response drops what the peer still sends when nobody reads it", async (t) => {
  const { port, nextStream } = await startServer(t, { streamWindowBytes: 65_535 });
  const client = await RawClient.connect(t, port);
  client.request(1);
  const { stream } = await nextStream();
  stream.respond({ ":status": 415 }, { endStream: true });
  for (let i = 0; i < 3; i++) client.frame(FrameType.DATA, 0, 1, Buffer.alloc(16_000));
  client.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
  await client.expect((f) => f.type === FrameType.PING, "PING ACK");
  let late = 0;
  stream.on("data", (chunk: Buffer) => (late += chunk.length));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(late, 0, "nothing was kept for a reader");
  assert.equal(client.frames.some((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 1), false, "nor credited to the stream");
});

test("a client's GOAWAY lets open streams finish, then the session closes", async (t) => {
  const { port, nextStream, sessions } = await startServer(t);
  const client = await RawClient.connect(t, port);
  client.request(1, [], Flag.END_HEADERS | Flag.END_STREAM);
  const { stream } = await nextStream();
  client.frame(FrameType.GOAWAY, 0, 0, Buffer.from("0000000100000000", "hex"));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sessions[0]!.destroyed, false, "the open stream keeps the session");
  stream.respond({ ":status": 200 }, { endStream: true });
  await within(() => client.isClosed, "the session closes once its last stream ends");
});

test("a client that closes right after its GOAWAY (grpc-go) gets no GOAWAY back: nothing is written into its closed socket", async (t) => {
  // On a Unix socket a write into a closed peer fails at once with EPIPE (on TCP only the second
  // write would), and Node formats the stack trace of every failed socket write.
  const dir = mkdtempSync(join(tmpdir(), "h2-goaway-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "s.sock");
  const serverErrors: Error[] = [];
  let serverSocket: net.Socket | undefined;
  const server = net.createServer((socket) => {
    serverSocket = socket;
    socket.on("error", (err) => serverErrors.push(err));
    new Http2Session(socket, defaults).on("error", () => {});
  }).listen(path);
  await once(server, "listening");
  t.after(() => server.close());
  for (let i = 0; i < 5; i++) {
    serverSocket = undefined;
    const socket = net.connect(path);
    await once(socket, "connect");
    const client = new RawHttp2Peer(socket);
    client.send(Buffer.concat([clientPreface, encodeFrame(FrameType.SETTINGS, 0, 0, settingsPayload([]))]));
    await client.expect((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0, "the server's SETTINGS ack");
    // grpc-go's ClientConn.Close(): GOAWAY NO_ERROR, then the connection goes.
    client.frame(FrameType.GOAWAY, 0, 0, Buffer.from("0000000000000000", "hex"));
    socket.destroy();
    await within(() => serverSocket?.destroyed === true, `round ${i}: the server's socket closes`);
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(serverErrors.map((e) => e.message), []);
});

test("after a client's GOAWAY, a connection error is still reported with a GOAWAY of ours", async (t) => {
  const { port } = await startServer(t);
  const client = await RawClient.connect(t, port);
  client.request(1); // no END_STREAM: the stream keeps the session open
  client.frame(FrameType.GOAWAY, 0, 0, Buffer.from("0000000000000000", "hex"));
  client.frame(FrameType.PING, 0, 0, Buffer.alloc(7)); // a PING of 7 bytes: FRAME_SIZE_ERROR
  const goaway = await client.expect((f) => f.type === FrameType.GOAWAY, "the server's GOAWAY");
  assert.equal(goaway.payload.readUInt32BE(4), Http2ErrorCode.FRAME_SIZE_ERROR);
});

test("a node:http2 client's headers survive the round trip: repeated keys, long values, many requests on one session", async (t) => {
  const { port, nextStream } = await startServer(t);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.destroy());
  for (let i = 0; i < 20; i++) {
    const req = session.request({
      ":method": "POST", ":path": `/S/M${i}`, "content-type": "application/grpc", "x-rep": ["a", "b"], "x-long": "z".repeat(3000 + i), "x-same": "unchanging",
    });
    req.on("response", () => {});
    req.end();
    const { stream, headers, raw } = await nextStream();
    assert.equal(headers[":path"], `/S/M${i}`);
    assert.equal(headers["x-long"], "z".repeat(3000 + i));
    assert.equal(headers["x-same"], "unchanging");
    assert.deepEqual(raw.filter((_, j) => raw[j - 1] === "x-rep"), ["a", "b"]);
    stream.respond({ ":status": 200, "x-answer": String(i) }, { endStream: true });
    const [response] = await once(req, "response") as [http2.IncomingHttpHeaders];
    assert.equal(response["x-answer"], String(i));
  }
});

async function within(condition: () => boolean, what: string, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("an exception in a listener costs its connection (GOAWAY INTERNAL_ERROR), not the process", async (t) => {
  const { port, nextStream } = await startServer(t);
  const client = await RawClient.connect(t, port);
  client.request(1);
  const { stream } = await nextStream();
  stream.on("data", () => {
    throw new Error("a bug in a handler");
  });
  client.frame(FrameType.DATA, 0, 1, Buffer.from("x"));
  assert.match(await client.expectGoaway(Http2ErrorCode.INTERNAL_ERROR), /a bug in a handler/);
  const other = await RawClient.connect(t, port);
  other.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
  await other.expect((f) => f.type === FrameType.PING && f.flags === Flag.ACK, "PING ACK on another connection");
});

test("a peer that floods PINGs without reading the acks is cut off with ENHANCE_YOUR_CALM", async (t) => {
  const { port, sessions } = await startServer(t);
  const client = await RawClient.connect(t, port);
  await client.expect((f) => f.type === FrameType.SETTINGS && f.flags === 0, "SETTINGS");
  client.socket.pause();
  const pings = Buffer.concat(Array.from({ length: 10_000 }, () => encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8))));
  const deadline = Date.now() + 15_000;
  let sent = 0;
  // Bounded: at most 3 million PINGs (51 MB of acks) or 15 s; the kernel's buffers absorb ~10 MB first.
  while (!sessions[0]!.destroyed && sent < 3_000_000 && Date.now() < deadline) {
    if (!client.socket.write(pings)) await Promise.race([once(client.socket, "drain"), new Promise((r) => setTimeout(r, 50))]);
    sent += 10_000;
  }
  assert.equal(sessions[0]!.destroyed, true, `the session is destroyed (after ${sent} PINGs)`);
});

test("random frames never throw out of the session, and the server keeps serving (seeded fuzz)", async (t) => {
  const { port, nextStream, sessions } = await startServer(t, { maxFrameBytes: 16_384 });
  let seed = 0x2545f491;
  const random = (n: number) => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  for (let round = 0; round < 60; round++) {
    const client = await RawClient.connect(t, port);
    for (let i = 0; i < 40; i++) {
      const type = random(11);
      const payload = Buffer.from(Array.from({ length: random(24) }, () => random(256)));
      if (random(4) === 0) client.request(1 + 2 * random(4), [], random(2) ? Flag.END_HEADERS : Flag.END_HEADERS | Flag.END_STREAM);
      else client.frame(type, random(64), random(3) === 0 ? 0 : 1 + random(8), payload);
    }
    await new Promise((r) => setTimeout(r, 5));
    client.socket.destroy();
  }
  await within(() => sessions.every((s) => s.destroyed), "every fuzzed session ends once its client goes");
  const client = await RawClient.connect(t, port);
  client.request(1, [], Flag.END_HEADERS | Flag.END_STREAM);
  const { stream } = await nextStream();
  stream.respond({ ":status": 200 }, { endStream: true });
  await client.expect((f) => f.type === FrameType.HEADERS && f.streamId === 1, "a normal response after the fuzzing");
});

test("a peer that opens streams without reading the answers is cut off with ENHANCE_YOUR_CALM", async (t) => {
  // Each empty HEADERS (9 bytes) earns an RST_STREAM PROTOCOL_ERROR (13 bytes): no acks involved.
  const { port, sessions } = await startServer(t);
  const client = await RawClient.connect(t, port);
  await client.expect((f) => f.type === FrameType.SETTINGS && f.flags === 0, "SETTINGS");
  client.socket.pause();
  let id = 1;
  // Bounded: at most 2 million streams (26 MB of resets) or 30 s; the kernel's buffers absorb some
  // MB first (~800,000 resets on loopback), which on a loaded machine takes more than 10 s to send.
  const deadline = Date.now() + 30_000;
  while (!sessions[0]!.destroyed && id < 4_000_000 && Date.now() < deadline) {
    const batch = Buffer.concat(Array.from({ length: 10_000 }, (_, i) => encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id + 2 * i)));
    id += 20_000;
    if (!client.socket.write(batch)) await Promise.race([once(client.socket, "drain"), new Promise((r) => setTimeout(r, 50))]);
  }
  assert.equal(sessions[0]!.destroyed, true, `the session is destroyed (after ${(id - 1) / 2} streams)`);
  assert.ok(sessions[0]!.socket.writableLength < 4 * 1024 * 1024, `unsent: ${sessions[0]!.socket.writableLength} bytes`);
});

test("a session that may hold more of its own DATA unsent than the unread-answers limit does not take a reading peer for one that does not read", async (t) => {
  // Found by review: with socketBufferBytes at 4 MiB our own DATA filled the socket past 1 MiB, and
  // the peer's next frame (a PING, a WINDOW_UPDATE as it read) cut it off.
  const { port, sessions, nextStream } = await startServer(t, { socketBufferBytes: 4 * 1024 * 1024 });
  const client = await RawClient.connect(t, port, [[Setting.INITIAL_WINDOW_SIZE, 1 << 30]]);
  client.frame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdatePayload((1 << 30) - 65_535));
  client.request(1);
  const { stream } = await nextStream();
  const total = 24 * 1024 * 1024;
  for (let sent = 0; sent < total; sent += 64 * 1024) stream.write(Buffer.alloc(64 * 1024, 1));
  // A PING every millisecond while the data flows: each is a frame the session answers.
  const pinger = setInterval(() => client.frame(FrameType.PING, 0, 0, Buffer.alloc(8)), 1);
  t.after(() => clearInterval(pinger));
  await within(() => dataBytes(client.frames, 1) === total || sessions[0]!.destroyed, "all the data or the end of the session", 20_000);
  clearInterval(pinger);
  assert.equal(sessions[0]!.destroyed, false, "the session was not cut off");
  assert.equal(dataBytes(client.frames, 1), total);
});

test("a client that resets streams past a burst of 1000 and 33 a second gets GOAWAY ENHANCE_YOUR_CALM (rapid reset)", async (t) => {
  const { port, streams } = await startServer(t);
  const pairs = (client: RawClient, first: number, count: number) => {
    const frames: Buffer[] = [];
    for (let id = first; id < first + 2 * count; id += 2) {
      frames.push(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, encodeHeaderBlock([[":method", "POST"], [":scheme", "http"], [":path", "/S/M"]])));
      frames.push(encodeFrame(FrameType.RST_STREAM, 0, id, Buffer.from([0, 0, 0, Http2ErrorCode.CANCEL])));
    }
    client.send(Buffer.concat(frames));
  };
  const calm = await RawClient.connect(t, port);
  pairs(calm, 1, 900);
  calm.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
  await calm.expect((f) => f.type === FrameType.PING, "PING ACK after 900 resets");
  assert.equal(calm.frames.some((f) => f.type === FrameType.GOAWAY), false, "900 resets are within the burst");

  const rapid = await RawClient.connect(t, port);
  const before = streams.length;
  pairs(rapid, 1, 5000);
  assert.match(await rapid.expectGoaway(Http2ErrorCode.ENHANCE_YOUR_CALM), /resets streams faster/);
  assert.ok(streams.length - before < 1100, `${streams.length - before} streams reached a handler`);
});

test("a SETTINGS frame applies only the last value of a setting, walks the streams once, and may hold at most 32 entries", async (t) => {
  const { port, nextStream } = await startServer(t);
  const client = await RawClient.connect(t, port);
  client.request(1);
  await nextStream();
  client.request(3);
  await nextStream();
  // Stream 1's window a little under 2^31-1: a first value of 2^31-1 would overflow it, the last one does not.
  client.frame(FrameType.WINDOW_UPDATE, 0, 1, windowUpdatePayload(2 ** 31 - 1 - 2 * 65_535));
  const walks = countStreamWalks(t);
  const entries: Array<[number, number]> = [[Setting.INITIAL_WINDOW_SIZE, 2 ** 31 - 1]];
  for (let i = 1; i < 32; i++) entries.push([Setting.INITIAL_WINDOW_SIZE, 65_535 + (i % 2)]);
  client.frame(FrameType.SETTINGS, 0, 0, settingsPayload(entries));
  client.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
  await client.expect((f) => f.type === FrameType.PING, "PING ACK");
  assert.equal(client.frames.some((f) => f.type === FrameType.GOAWAY), false);
  assert.equal(walks(), 1, "one walk over the streams for 32 entries");

  client.frame(FrameType.SETTINGS, 0, 0, settingsPayload(Array.from({ length: 33 }, () => [Setting.INITIAL_WINDOW_SIZE, 65_535] as [number, number])));
  assert.match(await client.expectGoaway(Http2ErrorCode.ENHANCE_YOUR_CALM), /33 entries/);
});

test("a connection WINDOW_UPDATE walks the streams only when the connection window was used up", async (t) => {
  const { port, nextStream } = await startServer(t);
  const client = await RawClient.connect(t, port, [[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]);
  for (const id of [1, 3, 5]) {
    client.request(id);
    await nextStream();
  }
  const walks = countStreamWalks(t);
  const updates = Buffer.concat(Array.from({ length: 1000 }, () => encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdatePayload(1))));
  client.send(updates);
  client.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
  await client.expect((f) => f.type === FrameType.PING, "PING ACK");
  assert.equal(walks(), 0, "1000 WINDOW_UPDATEs while the window was open");

  // A stream blocked on the connection window resumes with the WINDOW_UPDATE that opens it.
  client.request(7);
  const { stream } = await nextStream();
  stream.respond({ ":status": 200 });
  stream.write(Buffer.alloc(70_000, 7));
  await client.expect(() => dataBytes(client.frames, 7) === 65_535 + 1000, "DATA up to the connection window");
  client.frame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdatePayload(10_000));
  await client.expect(() => dataBytes(client.frames, 7) === 70_000, "the rest once the window opens");
  assert.equal(walks(), 1);
});

test("RFC 9113 stream errors: forbidden characters, an empty :path, pseudo-headers in trailers, a stream that depends on itself", async (t) => {
  const { port, streams } = await startServer(t);
  const client = await RawClient.connect(t, port);
  const block = (extra: HeaderList, path = "/S/M") => encodeHeaderBlock([[":method", "POST"], [":scheme", "http"], [":path", path], ...extra]);
  const EH = Flag.END_HEADERS;
  const ES = Flag.END_STREAM;
  client.frame(FrameType.HEADERS, EH | ES, 1, block([["x y", "1"]]));
  client.frame(FrameType.HEADERS, EH | ES, 3, block([["x-crlf", "a\r\nb"]]));
  client.frame(FrameType.HEADERS, EH | ES, 5, block([["x-nul", "a\0b"]]));
  client.frame(FrameType.HEADERS, EH | ES, 7, block([["X-upper", "a"]]));
  client.frame(FrameType.HEADERS, EH | ES, 9, Buffer.concat([block([]), Buffer.from([0x00, 0x00, 0x01, 0x61])])); // an empty name
  client.frame(FrameType.HEADERS, EH | ES, 11, block([], ""));
  client.frame(FrameType.HEADERS, EH, 13, block([]));
  client.frame(FrameType.HEADERS, EH | ES, 13, encodeHeaderBlock([[":path", "/evil"]]));
  client.frame(FrameType.PRIORITY, 0, 15, Buffer.from([0, 0, 0, 15, 16]));
  client.frame(FrameType.HEADERS, EH | ES | Flag.PRIORITY, 17, Buffer.concat([Buffer.from([0, 0, 0, 17, 16]), block([["x-id", "17"]])]));
  for (const id of [1, 3, 5, 7, 9, 11, 13, 15, 17]) await client.expectReset(id, Http2ErrorCode.PROTOCOL_ERROR);
  // Stream 17's block was decoded all the same: the HPACK table stays in step for the next one.
  client.frame(FrameType.HEADERS, EH | ES, 19, block([]));
  await within(() => streams.some((s) => s.stream.id === 19), "stream 19");
  assert.deepEqual(streams.map((s) => s.stream.id), [13, 19]);
  assert.equal(client.frames.some((f) => f.type === FrameType.GOAWAY), false);
});

test("frames on a stream we refused with RST_STREAM are ignored: trailers do not cost the connection", async (t) => {
  const { port } = await startServer(t, { maxConcurrentStreams: 2 });
  const client = await RawClient.connect(t, port);
  client.request(1);
  client.request(3);
  client.request(5);
  await client.expectReset(5, Http2ErrorCode.REFUSED_STREAM);
  client.frame(FrameType.DATA, 0, 5, Buffer.from("x"));
  client.frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 5, Buffer.concat([Buffer.from([0x40, 4]), Buffer.from("x-tr"), Buffer.from([1]), Buffer.from("1")]));
  client.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
  await client.expect((f) => f.type === FrameType.PING, "PING ACK");
  assert.equal(client.frames.some((f) => f.type === FrameType.GOAWAY), false);
  // The ignored trailers were decoded: their indexed field is in the table (index 62).
  client.frame(FrameType.HEADERS, Flag.END_HEADERS, 7, Buffer.from("838684be", "hex"));
  await client.expectReset(7, Http2ErrorCode.REFUSED_STREAM);
  assert.equal(client.frames.some((f) => f.type === FrameType.GOAWAY), false);
});

/** Counts the walks over a session's streams (StreamTable.list and forEach) until the test ends. */
function countStreamWalks(t: TestContext): () => number {
  let walks = 0;
  const { list, forEach } = StreamTable.prototype;
  StreamTable.prototype.list = function (this: StreamTable<{ id: number }>) {
    walks++;
    return list.call(this);
  } as typeof list;
  StreamTable.prototype.forEach = function (this: StreamTable<{ id: number }>, visit: (stream: { id: number }) => void) {
    walks++;
    forEach.call(this, visit);
  } as typeof forEach;
  t.after(() => Object.assign(StreamTable.prototype, { list, forEach }));
  return () => walks;
}

test("after our GOAWAY, frames on the streams it ignored are ignored too: trailers do not cost the connection", async (t) => {
  const { port, nextStream, sessions, streams } = await startServer(t);
  const client = await RawClient.connect(t, port);
  client.request(1, [], Flag.END_HEADERS);
  const { stream } = await nextStream();
  sessions[0]!.close();
  const goaway = await client.expect((f) => f.type === FrameType.GOAWAY, "the server's GOAWAY");
  assert.equal(goaway.payload.readUInt32BE(0), 1, "last stream 1");
  // Sent before the client saw the GOAWAY: a stream it opened, its DATA and its trailers.
  client.request(3, [], Flag.END_HEADERS);
  client.frame(FrameType.DATA, 0, 3, Buffer.from("x"));
  client.frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, Buffer.concat([Buffer.from([0x40, 4]), Buffer.from("x-tr"), Buffer.from([1]), Buffer.from("1")]));
  client.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
  await client.expect((f) => f.type === FrameType.PING && (f.flags & Flag.ACK) !== 0, "PING ACK");
  assert.deepEqual(streams.map((s) => s.stream.id), [1], "stream 3 was never served");
  assert.equal(client.frames.filter((f) => f.type === FrameType.GOAWAY).length, 1, "no second GOAWAY (STREAM_CLOSED)");
  assert.equal(client.frames.some((f) => f.type === FrameType.RST_STREAM), false);
  // Stream 1 still runs to its end.
  stream.respond({ ":status": 200 }, { endStream: true });
  client.frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.alloc(0));
  await within(() => client.isClosed, "the session closes once its last stream ends");
});

test("a request whose DATA does not add up to its content-length is reset PROTOCOL_ERROR (RFC 9113 §8.1.1); padding does not count", async (t) => {
  const { port, streams } = await startServer(t, { maxFrameBytes: 16384 });
  const client = await RawClient.connect(t, port);
  const EH = Flag.END_HEADERS;
  const ES = Flag.END_STREAM;
  client.request(1, [["content-length", "5"]]);
  client.frame(FrameType.DATA, ES, 1, Buffer.from("abc")); // less
  client.request(3, [["content-length", "2"]]);
  client.frame(FrameType.DATA, 0, 3, Buffer.from("abc")); // more, before the end
  client.request(5, [["content-length", "1"]], EH | ES); // none at all
  client.request(7, [["content-length", "x1"]]);
  client.request(9, [["content-length", "1"], ["content-length", "2"]]);
  client.request(11, [["content-length", "1"]]);
  client.frame(FrameType.HEADERS, EH | ES, 11, encodeHeaderBlock([["x-trailer", "1"]])); // trailers before the DATA
  for (const id of [1, 3, 5, 7, 9, 11]) await client.expectReset(id, Http2ErrorCode.PROTOCOL_ERROR);
  // Exact, in two frames, one padded (5 bytes of padding), and a repeated equal value: served.
  client.request(13, [["content-length", "6"], ["content-length", "6"]]);
  client.frame(FrameType.DATA, Flag.PADDED, 13, Buffer.concat([Buffer.from([5]), Buffer.from("abc"), Buffer.alloc(5)]));
  client.frame(FrameType.DATA, ES, 13, Buffer.from("def"));
  // Without content-length anything goes.
  client.request(15);
  client.frame(FrameType.DATA, ES, 15, Buffer.from("anything"));
  await within(() => streams.some((s) => s.stream.id === 15), "stream 15");
  const received = new Map<number, string>();
  for (const { stream } of streams) {
    let text = "";
    stream.on("data", (c: Buffer) => (text += c.toString()));
    stream.on("end", () => received.set(stream.id, text));
  }
  await within(() => received.size === 2, "both streams end");
  assert.deepEqual([...received.entries()].sort(), [[13, "abcdef"], [15, "anything"]]);
  // Streams 1 and 3 were served until their DATA broke the rule, then reset: their readers see an error, not an end.
  assert.deepEqual(streams.map((s) => s.stream.id).sort((a, b) => a - b), [1, 3, 11, 13, 15]);
  assert.equal(client.frames.some((f) => f.type === FrameType.GOAWAY), false);
});
