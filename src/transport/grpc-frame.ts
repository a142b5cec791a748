// gRPC's Length-Prefixed-Message framing (gRPC over HTTP/2, "Requests"): a 1-byte compressed
// flag, a 4-byte big-endian length, then the message. Pure: no sockets, timers or logs.
import { TunnelError } from "../protocol/tunnel-error.js";

export const grpcFrameHeaderBytes = 5;

/** One buffer, so a message goes to the stream in one write (one DATA frame when it fits). */
/**
 * Fills the 5-byte gRPC prefix at the start of `frame`, whose message follows it: for encoders
 * that leave headroom for the prefix, so a message is not copied a second time.
 */
export function fillGrpcFrameHeader(frame: Buffer): Buffer {
  frame[0] = 0;
  frame.writeUInt32BE(frame.length - grpcFrameHeaderBytes, 1);
  return frame;
}

export function encodeGrpcMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(grpcFrameHeaderBytes + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, grpcFrameHeaderBytes);
  return out;
}

/**
 * Reassembles messages from the chunks an HTTP/2 stream delivers. A message that lies inside one
 * chunk is returned as a subarray of that chunk (zero copy: a caller that keeps it keeps the
 * chunk, so one that queues messages copies the small ones, inbound-messages.ts); only messages
 * split across chunks are copied into a buffer of exactly their size, allocated once their
 * length is known.
 * A framing error throws, unless the same chunk already completed messages: those are returned
 * first (they were valid and a peer may rely on them arriving), `failure` is set, and the next
 * push() throws. After a failure the reader is spent.
 *
 * `reuseBuffer`: for a caller that is done with every message before its next push() (a bench
 * client that only counts bytes): split messages are assembled in one buffer kept for the next,
 * instead of a fresh one each.
 */
export class GrpcMessageReader {
  readonly #maxMessageBytes: number;
  // Only a prefix split across chunks needs it: allocated then (a reader per call adds up).
  #header: Buffer | undefined;
  #headerFill = 0;
  #body: Buffer | undefined;
  #bodyFill = 0;
  #failure: TunnelError | undefined;
  readonly #reuseBuffer: boolean;
  #spare: Buffer | undefined;

  constructor(maxMessageBytes: number, options: { reuseBuffer?: boolean } = {}) {
    this.#maxMessageBytes = maxMessageBytes;
    this.#reuseBuffer = options.reuseBuffer ?? false;
  }

  /** Bytes received that belong to a message not yet complete. */
  get bufferedBytes(): number {
    return this.#body === undefined ? this.#headerFill : grpcFrameHeaderBytes + this.#bodyFill;
  }

  /** Set once the stream is known to be malformed. */
  get failure(): TunnelError | undefined {
    return this.#failure;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failure) throw this.#failure;
    const messages: Uint8Array[] = [];
    try {
      this.#decode(chunk, messages);
    } catch (err) {
      if (messages.length === 0) throw err;
    }
    return messages;
  }

  #decode(chunk: Uint8Array, messages: Uint8Array[]): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#body !== undefined) {
        const n = Math.min(this.#body.length - this.#bodyFill, chunk.length - offset);
        this.#body.set(chunk.subarray(offset, offset + n), this.#bodyFill);
        this.#bodyFill += n;
        offset += n;
        if (this.#bodyFill === this.#body.length) {
          messages.push(this.#body);
          this.#body = undefined;
          this.#bodyFill = 0;
        }
        continue;
      }
      let length: number;
      if (this.#headerFill === 0 && chunk.length - offset >= grpcFrameHeaderBytes) {
        length = this.#parseHeader(chunk, offset);
        offset += grpcFrameHeaderBytes;
      } else {
        const n = Math.min(grpcFrameHeaderBytes - this.#headerFill, chunk.length - offset);
        this.#header ??= Buffer.alloc(grpcFrameHeaderBytes);
        this.#header.set(chunk.subarray(offset, offset + n), this.#headerFill);
        this.#headerFill += n;
        offset += n;
        if (this.#headerFill < grpcFrameHeaderBytes) break;
        this.#headerFill = 0;
        length = this.#parseHeader(this.#header, 0);
      }
      if (chunk.length - offset >= length) {
        messages.push(chunk.subarray(offset, offset + length));
        offset += length;
      } else {
        this.#body = this.#bodyBuffer(length);
        this.#bodyFill = 0;
      }
    }
  }

  #bodyBuffer(length: number): Buffer {
    if (!this.#reuseBuffer) return Buffer.allocUnsafe(length);
    if (this.#spare === undefined || this.#spare.length < length) this.#spare = Buffer.allocUnsafe(length);
    return this.#spare.subarray(0, length);
  }

  // Checks flag and length from the prefix alone, so an oversized message is refused before
  // any of its body is buffered.
  #parseHeader(bytes: Uint8Array, at: number): number {
    const flag = bytes[at]!;
    const length = ((bytes[at + 1]! << 24) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!) >>> 0;
    if (flag === 1) {
      // We never advertise grpc-accept-encoding, so a conforming peer never compresses.
      this.#failure = new TunnelError("PROTOCOL", "grpc: compressed message received, but no grpc-encoding was negotiated");
    } else if (flag !== 0) {
      this.#failure = new TunnelError("PROTOCOL", `grpc: invalid message flag byte ${flag}`);
    } else if (length > this.#maxMessageBytes) {
      this.#failure = new TunnelError(
        "MESSAGE_TOO_LARGE",
        `grpc: received message larger than max (${length} vs. ${this.#maxMessageBytes})`,
      );
    }
    if (this.#failure) throw this.#failure;
    return length;
  }
}
