// One end of an HTTP/2 connection written by hand, for frame-level tests of the builtin session
// (src/transport/http2-session.test.ts plays the client, http2-client-session.test.ts the server):
// it collects every frame the session sends and writes whatever frames a test gives it.
import assert from "node:assert/strict";
import type * as net from "node:net";
import { HpackDecoder } from "../../src/transport/hpack.js";
import { clientPreface, encodeFrame, FrameType } from "../../src/transport/http2-frame.js";

export interface Frame { type: number; flags: number; streamId: number; payload: Buffer }

export class RawHttp2Peer {
  readonly frames: Frame[] = [];
  readonly decoder = new HpackDecoder({ maxTableBytes: 4096, maxHeaderListBytes: 1 << 20 });
  /** A server's: the client preface it read before the frames. */
  preface: Buffer | undefined;
  isClosed = false;
  #buffer = Buffer.alloc(0);

  /** `readsPreface`: this end is the server, so the session's bytes start with the client preface. */
  constructor(readonly socket: net.Socket, readsPreface = false) {
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      if (readsPreface && !this.preface) {
        if (this.#buffer.length < clientPreface.length) return;
        this.preface = this.#buffer.subarray(0, clientPreface.length);
        this.#buffer = this.#buffer.subarray(clientPreface.length);
      }
      while (this.#buffer.length >= 9) {
        const length = this.#buffer.readUIntBE(0, 3);
        if (this.#buffer.length < 9 + length) break;
        this.frames.push({ type: this.#buffer[3]!, flags: this.#buffer[4]!, streamId: this.#buffer.readUInt32BE(5) & 0x7fffffff, payload: this.#buffer.subarray(9, 9 + length) });
        this.#buffer = this.#buffer.subarray(9 + length);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => (this.isClosed = true));
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  frame(type: number, flags: number, streamId: number, payload?: Buffer): void {
    this.send(encodeFrame(type, flags, streamId, payload));
  }

  /** The first frame that matches, waiting up to 2 s for it. */
  async expect(match: (f: Frame) => boolean, what: string): Promise<Frame> {
    const deadline = Date.now() + 2000;
    for (;;) {
      const found = this.frames.find(match);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`no ${what} within 2 s; got ${this.frames.map((f) => `type ${f.type} flags ${f.flags} stream ${f.streamId}`).join(", ")}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The GOAWAY's debug text, once one with `code` came. */
  async expectGoaway(code: number): Promise<string> {
    const goaway = await this.expect((f) => f.type === FrameType.GOAWAY, `GOAWAY ${code}`);
    assert.equal(goaway.payload.readUInt32BE(4), code, `GOAWAY code (debug: ${goaway.payload.subarray(8).toString()})`);
    return goaway.payload.subarray(8).toString();
  }

  async expectReset(streamId: number, code: number): Promise<void> {
    const rst = await this.expect((f) => f.type === FrameType.RST_STREAM && f.streamId === streamId, `RST_STREAM on ${streamId}`);
    assert.equal(rst.payload.readUInt32BE(0), code, "RST_STREAM code");
  }
}
