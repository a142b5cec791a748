// The client side of the builtin HTTP/2 session (role "client") at the frame level: a raw server
// reads the client's preface and frames and writes frames byte by byte (RFC 9113). The gRPC
// suites (grpc-client.test.ts, grpc-server.test.ts) run it against node:http2 and our own server,
// and the interop tests against python grpcio's server.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { isTunnelError } from "../protocol/tunnel-error.js";
import { ClientCall } from "./grpc-client-call.js";
import { GrpcStatusError } from "./grpc-status.js";
import { encodeHeaderBlock, type HeaderList } from "./hpack.js";
import { clientPreface, Flag, FrameType, Http2ErrorCode, Setting, settingsPayload, goawayPayload } from "./http2-frame.js";
import { Http2Session, type Http2SessionOptions, type IncomingHeaders } from "./http2-session.js";
import type { Http2Stream } from "./http2-stream.js";
import { RawHttp2Peer } from "../../test/helpers/raw-http2-peer.js";

const options: Http2SessionOptions = {
  role: "client",
  streamWindowBytes: 1024 * 1024,
  sessionWindowBytes: 4 * 1024 * 1024,
  maxFrameBytes: 64 * 1024,
  maxConcurrentStreams: 0,
  maxHeaderListBytes: 16 * 1024,
};

/** A server that checks the client preface, then collects frames and lets the test write its own. */
class RawServer extends RawHttp2Peer {
  constructor(socket: net.Socket) {
    super(socket, true);
  }

  headers(streamId: number, fields: HeaderList, flags: number = Flag.END_HEADERS): void {
    this.frame(FrameType.HEADERS, flags, streamId, encodeHeaderBlock(fields));
  }
}

/** A listening socket, a client session connected to it, and the raw server's side. */
async function connect(t: TestContext, serverSettings: Array<[number, number]> = []) {
  const accepted: net.Socket[] = [];
  const listener = net.createServer((s) => accepted.push(s));
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  const socket = net.connect((listener.address() as AddressInfo).port, "127.0.0.1");
  await once(socket, "connect");
  const session = new Http2Session(socket, options);
  session.on("error", () => {});
  t.after(() => {
    session.destroy();
    for (const s of accepted) s.destroy();
    listener.close();
  });
  await within(() => accepted.length === 1, "the server accepts");
  const server = new RawServer(accepted[0]!);
  server.frame(FrameType.SETTINGS, 0, 0, settingsPayload(serverSettings));
  await server.expect((f) => f.type === FrameType.SETTINGS && f.flags === Flag.ACK, "the client's SETTINGS ACK");
  return { session, server };
}

async function within(condition: () => boolean, what: string, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const grpcRequest = { ":method": "POST", ":scheme": "http", ":authority": "localhost", ":path": "/S/M", "content-type": "application/grpc", te: "trailers" };
const okResponse: HeaderList = [[":status", "200"], ["content-type", "application/grpc"]];
const okTrailers: HeaderList = [["grpc-status", "0"]];

/** Records what a stream emits, in order. */
function record(stream: Http2Stream) {
  const events: string[] = [];
  const data: Buffer[] = [];
  const heads: Array<{ event: string; headers: IncomingHeaders }> = [];
  stream.on("response", (headers: IncomingHeaders) => (events.push("response"), heads.push({ event: "response", headers })));
  stream.on("trailers", (headers: IncomingHeaders) => (events.push("trailers"), heads.push({ event: "trailers", headers })));
  stream.on("data", (chunk: Buffer) => (events.push("data"), data.push(Buffer.from(chunk))));
  stream.on("end", () => events.push("end"));
  stream.on("error", (err: Error) => events.push(`error: ${err.message}`));
  stream.on("close", () => events.push("close"));
  return { events, data, heads };
}

test("the client sends the preface, SETTINGS with push disabled and its windows, then a request's HEADERS with every pseudo-header", async (t) => {
  const { session, server } = await connect(t);
  assert.ok(server.preface?.equals(clientPreface));
  const settings = await server.expect((f) => f.type === FrameType.SETTINGS && f.flags === 0, "SETTINGS");
  const values = new Map<number, number>();
  for (let i = 0; i < settings.payload.length; i += 6) values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
  assert.equal(values.get(Setting.ENABLE_PUSH), 0);
  assert.equal(values.get(Setting.INITIAL_WINDOW_SIZE), options.streamWindowBytes);
  assert.equal(values.get(Setting.MAX_FRAME_SIZE), options.maxFrameBytes);
  assert.equal(values.has(Setting.MAX_CONCURRENT_STREAMS), false);
  const update = await server.expect((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0, "connection WINDOW_UPDATE");
  assert.equal(update.payload.readUInt32BE(0), options.sessionWindowBytes - 65_535);

  const first = session.request(grpcRequest);
  const second = session.request(grpcRequest);
  assert.deepEqual([first.id, second.id], [1, 3], "client streams are odd and rising");
  const headers = await server.expect((f) => f.type === FrameType.HEADERS && f.streamId === 1, "HEADERS");
  assert.equal(headers.flags & Flag.END_STREAM, 0, "the request body follows");
  const { headers: fields } = server.decoder.decode(headers.payload);
  const names = fields.map(([n]) => n);
  assert.deepEqual(names.slice(0, 4).sort(), [":authority", ":method", ":path", ":scheme"], "pseudo-headers first");
  assert.deepEqual(Object.fromEntries(fields), grpcRequest);
});

test("a response: 1xx skipped, headers then DATA then trailers, the stream closing after its last byte is read; an open request side is reset with NO_ERROR", async (t) => {
  const { session, server } = await connect(t);
  const stream = session.request(grpcRequest);
  const seen = record(stream);
  server.headers(1, [[":status", "100"]]);
  server.headers(1, okResponse);
  server.frame(FrameType.DATA, 0, 1, Buffer.from("hello"));
  server.headers(1, okTrailers, Flag.END_HEADERS | Flag.END_STREAM);
  await within(() => seen.events.includes("close"), "the stream closes");
  assert.deepEqual(seen.events, ["response", "data", "trailers", "end", "close"]);
  assert.equal(seen.heads[0]!.headers[":status"], "200");
  assert.equal(seen.heads[1]!.headers["grpc-status"], "0");
  assert.equal(Buffer.concat(seen.data).toString(), "hello");
  assert.equal(stream.rstCode, Http2ErrorCode.NO_ERROR);
  await server.expectReset(1, Http2ErrorCode.NO_ERROR);
});

test("a paused reader loses nothing when the server ends the call: the messages before the trailers wait, then arrive, then the stream closes", async (t) => {
  const { session, server } = await connect(t);
  const stream = session.request(grpcRequest);
  stream.pause();
  const seen = record(stream);
  stream.end(); // our side half-closed first: no reset at the end
  await server.expect((f) => f.type === FrameType.DATA && (f.flags & Flag.END_STREAM) !== 0, "the client's END_STREAM");
  server.headers(1, okResponse);
  for (let i = 0; i < 3; i++) server.frame(FrameType.DATA, 0, 1, Buffer.from(`m${i}`));
  server.headers(1, okTrailers, Flag.END_HEADERS | Flag.END_STREAM);
  await within(() => seen.events.includes("trailers"), "the trailers arrive");
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen.events, ["response", "trailers"], "nothing delivered or closed while paused");
  stream.resume();
  await within(() => seen.events.includes("close"), "the stream closes");
  assert.deepEqual(seen.events, ["response", "trailers", "data", "data", "data", "end", "close"]);
  assert.equal(Buffer.concat(seen.data).toString(), "m0m1m2");
  assert.equal(server.frames.some((f) => f.type === FrameType.RST_STREAM), false, "both sides ended: no reset");
});

test("GOAWAY: streams above its last stream id end REFUSED_STREAM, the others run on, no new request is allowed; an error code ends the session", async (t) => {
  const { session, server } = await connect(t);
  const kept = session.request(grpcRequest);
  const refused = session.request(grpcRequest);
  const keptSeen = record(kept);
  const refusedSeen = record(refused);
  const goaways: unknown[][] = [];
  session.on("goaway", (...args: unknown[]) => goaways.push(args));
  server.frame(FrameType.GOAWAY, 0, 0, goawayPayload(1, Http2ErrorCode.NO_ERROR, Buffer.from("restarting")));
  await within(() => refusedSeen.events.includes("close"), "the refused stream closes");
  assert.equal(refused.rstCode, Http2ErrorCode.REFUSED_STREAM);
  assert.match(refusedSeen.events.find((e) => e.startsWith("error"))!, /refused the stream.*last stream 1.*restarting/);
  assert.deepEqual(goaways, [[Http2ErrorCode.NO_ERROR, 1, Buffer.from("restarting")]]);
  assert.equal(session.closed, true);
  assert.throws(() => session.request(grpcRequest), (e) => isTunnelError(e, "CLOSED"));
  // The kept stream finishes normally, then the session closes.
  server.headers(1, okResponse);
  server.frame(FrameType.DATA, 0, 1, Buffer.from("late"));
  server.headers(1, okTrailers, Flag.END_HEADERS | Flag.END_STREAM);
  await within(() => keptSeen.events.includes("close"), "the kept stream closes");
  assert.deepEqual(keptSeen.events, ["response", "data", "trailers", "end", "close"]);
  await within(() => session.destroyed, "the session closes once its last stream is done");

  const other = await connect(t);
  const closed = new Promise<unknown[]>((resolve) => other.session.once("close", (...args: unknown[]) => resolve(args)));
  const stream = other.session.request(grpcRequest);
  const seen = record(stream);
  other.server.frame(FrameType.GOAWAY, 0, 0, goawayPayload(1, Http2ErrorCode.ENHANCE_YOUR_CALM, Buffer.from("too_many_pings")));
  const [reason] = await closed;
  assert.match(String(reason), /GOAWAY with error code 11: too_many_pings/);
  await within(() => seen.events.includes("close"), "the stream closes");
  assert.match(seen.events.find((e) => e.startsWith("error"))!, /too_many_pings/);
});

test("frames a server may not send are errors: PUSH_PROMISE and HEADERS on an even stream end the connection, DATA before the response and a response without :status reset the stream", async (t) => {
  {
    const { session, server } = await connect(t);
    session.request(grpcRequest);
    server.frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.concat([Buffer.from([0, 0, 0, 2]), encodeHeaderBlock([[":method", "GET"]])]));
    assert.match(await server.expectGoaway(Http2ErrorCode.PROTOCOL_ERROR), /PUSH_PROMISE/);
    await within(() => session.destroyed, "the session closes");
  }
  {
    const { session, server } = await connect(t);
    server.headers(2, okResponse);
    assert.match(await server.expectGoaway(Http2ErrorCode.PROTOCOL_ERROR), /HEADERS on stream 2/);
    await within(() => session.destroyed, "the session closes");
  }
  {
    const { session, server } = await connect(t);
    const early = session.request(grpcRequest);
    const earlySeen = record(early);
    server.frame(FrameType.DATA, 0, 1, Buffer.from("too soon"));
    await server.expectReset(1, Http2ErrorCode.PROTOCOL_ERROR);
    await within(() => earlySeen.events.includes("close"), "the stream closes");
    assert.match(earlySeen.events.find((e) => e.startsWith("error"))!, /DATA before the response headers/);

    const statusless = session.request(grpcRequest);
    const statuslessSeen = record(statusless);
    server.headers(3, [["content-type", "application/grpc"]]);
    await server.expectReset(3, Http2ErrorCode.PROTOCOL_ERROR);
    await within(() => statuslessSeen.events.includes("close"), "the stream closes");
    assert.match(statuslessSeen.events.find((e) => e.startsWith("error"))!, /no :status/);
    assert.equal(session.destroyed, false, "stream errors leave the connection up");
    const next = session.request(grpcRequest);
    assert.equal(next.id, 5);
  }
});

test("the server's SETTINGS_MAX_CONCURRENT_STREAMS is honoured: one more request throws LIMIT until a stream closes", async (t) => {
  const { session, server } = await connect(t, [[Setting.MAX_CONCURRENT_STREAMS, 1]]);
  const first = session.request(grpcRequest);
  const seen = record(first);
  assert.throws(() => session.request(grpcRequest), (e) => isTunnelError(e, "LIMIT") && /1 concurrent streams/.test(e.message));
  server.headers(1, [[":status", "200"], ["grpc-status", "0"]], Flag.END_HEADERS | Flag.END_STREAM);
  await within(() => seen.events.includes("close"), "the first stream closes");
  assert.equal(session.request(grpcRequest).id, 3);
});

test("a lost connection ends open streams with an error naming it, and PING gets its ACK timed", async (t) => {
  const { session, server } = await connect(t);
  const rtt = new Promise<number>((resolve, reject) => session.ping((err, ms) => (err ? reject(err) : resolve(ms))));
  const ping = await server.expect((f) => f.type === FrameType.PING && f.flags === 0, "PING");
  server.frame(FrameType.PING, Flag.ACK, 0, ping.payload);
  assert.ok((await rtt) >= 0);
  const stream = session.request(grpcRequest);
  const seen = record(stream);
  server.headers(1, okResponse);
  await within(() => seen.events.includes("response"), "the response");
  server.socket.destroy();
  await within(() => seen.events.includes("close"), "the stream closes");
  assert.notEqual(stream.rstCode, Http2ErrorCode.NO_ERROR);
  assert.match(seen.events.find((e) => e.startsWith("error"))!, /connection closed/);
});

test("a gRPC call given a trailers-only response ends with its status at once, unread, from a server that never resets the stream", async (t) => {
  const { session, server } = await connect(t);
  const call = new ClientCall(session.request(grpcRequest), 4 * 1024 * 1024);
  // END_STREAM on the headers and nothing after: grpc-go and nghttp2 would also reset the request
  // side (RST_STREAM NO_ERROR), a minimal server need not.
  server.headers(1, [[":status", "200"], ["content-type", "application/grpc"], ["grpc-status", "16"], ["grpc-message", "bad token"]], Flag.END_HEADERS | Flag.END_STREAM);
  const started = Date.now();
  await assert.rejects(call.headers, (e) => e instanceof GrpcStatusError && e.grpcStatus === 16 && e.grpcMessage === "bad token");
  assert.ok(Date.now() - started < 1000, `the status came after ${Date.now() - started} ms`);
  await server.expectReset(1, Http2ErrorCode.NO_ERROR);
});

test("a stream nobody reads closes as soon as the server ends it when nothing is left unread, as node:http2's does", async (t) => {
  const { session, server } = await connect(t);
  const stream = session.request(grpcRequest);
  const events: string[] = [];
  stream.on("response", () => events.push("response"));
  stream.on("trailers", () => events.push("trailers"));
  stream.on("close", () => events.push("close"));
  stream.end();
  server.headers(1, okResponse);
  server.headers(1, okTrailers, Flag.END_HEADERS | Flag.END_STREAM);
  await within(() => events.includes("close"), "the stream closes without a reader");
  assert.deepEqual(events, ["response", "trailers", "close"]);
  assert.equal(stream.rstCode, Http2ErrorCode.NO_ERROR);
});

test("random frames from a server never throw out of the client session, and every call ends with exactly one status (seeded fuzz)", async (t) => {
  let seed = 0x5bd1e995;
  const random = (n: number) => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const okBlock = (streamId: number, flags: number) => ({ streamId, flags, block: encodeHeaderBlock(okResponse) });
  // What the calls saw over all rounds, so that the fuzz is known to reach past the first frame.
  const codes = new Set<number>();
  let messages = 0;
  for (let round = 0; round < 40; round++) {
    const { session, server } = await connect(t);
    const statuses = new Map<number, number>();
    const calls = [0, 1, 2].map((i) => {
      const call = new ClientCall(session.request(grpcRequest), 1024);
      call.on("message", () => messages++);
      call.on("status", (status: { code: number }) => {
        codes.add(status.code);
        statuses.set(i, (statuses.get(i) ?? 0) + 1);
      });
      return call;
    });
    if (random(2) === 0) server.headers(1, okResponse);
    for (let i = 0; i < 30; i++) {
      const streamId = random(3) === 0 ? random(8) : 1 + 2 * random(3);
      const pick = random(8);
      if (pick === 0) {
        const { block } = okBlock(streamId, 0);
        server.frame(FrameType.HEADERS, Flag.END_HEADERS | (random(3) === 0 ? Flag.END_STREAM : 0), streamId, block);
      } else if (pick === 1) {
        server.headers(streamId, [["grpc-status", String(random(17))]], Flag.END_HEADERS | Flag.END_STREAM);
      } else if (pick <= 4) {
        // A gRPC message, sometimes with a length prefix that lies.
        const body = Buffer.from(Array.from({ length: random(40) }, () => random(256)));
        const isHonest = random(4) !== 0;
        const prefix = Buffer.from([isHonest ? 0 : random(2), 0, 0, isHonest ? 0 : random(16), isHonest ? body.length : random(256)]);
        server.frame(FrameType.DATA, random(4) === 0 ? Flag.END_STREAM : 0, streamId, Buffer.concat([prefix, body]));
      } else {
        server.frame(random(11), random(64), random(3) === 0 ? 0 : streamId, Buffer.from(Array.from({ length: random(24) }, () => random(256))));
      }
    }
    await new Promise((r) => setTimeout(r, 5));
    server.socket.destroy();
    await within(() => session.destroyed, "the session ends once its server goes");
    await within(() => statuses.size === calls.length, "every call ends");
    assert.deepEqual([...statuses.values()], [1, 1, 1], `round ${round}: one status per call`);
  }
  assert.ok(messages > 0, "some messages were delivered");
  assert.ok(codes.size >= 3, `statuses seen: ${[...codes].join(", ")}`);
});
