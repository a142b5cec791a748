// Fair sending on a shared packet stream. Control packets (dial, close, credit) go first, in
// order; then connections with queued data take turns, each sending at most one chunk
// (64 KiB by default) per turn. A connection's own close packet travels in its queue, behind its
// data, so a close never overtakes the bytes before it; a DIAL_RSP is a control packet sent
// before the connection's queue exists, so DATA never overtakes it either.
//
//   local reader ──push──▶ OutboundQueue ──(turn, ≤ chunk, ≤ credit)──▶ channel.send
//        ▲ pause/resume when the queue crosses maxQueueBytes / half of it
import { dataPacket, type Packet } from "../protocol/index.js";
import { Deque } from "./deque.js";
import type { PacketChannel } from "./packet-channel.js";

export interface QueueOwner {
  queueLowWater(): void;
}

export class OutboundQueue {
  private readonly chunks = new Deque<Uint8Array>();
  private queuedBytes = 0;
  private closePacket: Packet | null = null;
  private onCloseSent: (() => void) | undefined;
  /** Bytes the peer lets us send (Infinity without the credit extension). */
  credit: number;
  scheduled = false;

  constructor(
    readonly connectID: bigint,
    credit: number,
    private readonly lowWaterBytes: number,
    /** Told when the queue falls below the low-water mark, so a paused reader can resume. */
    private readonly owner: QueueOwner,
  ) {
    this.credit = credit;
  }

  get bytes(): number {
    return this.queuedBytes;
  }

  get isClosing(): boolean {
    return this.closePacket !== null;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.queuedBytes += chunk.length;
  }

  /** The packet that ends this connection, sent once the queued data is out; `onSent` when it is taken. */
  setClosePacket(packet: Packet, onSent?: () => void): void {
    if (this.closePacket !== null) return;
    this.closePacket = packet;
    this.onCloseSent = onSent;
  }

  /** Drops queued data (the peer closed, nobody will read it). */
  discard(): void {
    this.chunks.clear();
    this.queuedBytes = 0;
  }

  /** Drops the data and takes the close packet out of line (the data can no longer be delivered). */
  takeCloseNow(): Packet | null {
    this.discard();
    const p = this.closePacket;
    this.closePacket = null;
    this.onCloseSent = undefined;
    return p;
  }

  get hasSendable(): boolean {
    return (this.queuedBytes > 0 && this.credit > 0) || (this.queuedBytes === 0 && this.closePacket !== null);
  }

  /** The next packet of this connection, at most maxBytes of payload; null when nothing is sendable. */
  take(maxBytes: number): Packet | null {
    if (this.queuedBytes > 0 && this.credit > 0) {
      const n = Math.min(maxBytes, this.credit, this.queuedBytes);
      const payload = this.takeBytes(n);
      const wasAbove = this.queuedBytes >= this.lowWaterBytes;
      this.queuedBytes -= n;
      this.credit -= n;
      if (wasAbove && this.queuedBytes < this.lowWaterBytes) this.owner.queueLowWater();
      return dataPacket(this.connectID, payload);
    }
    if (this.queuedBytes === 0 && this.closePacket !== null) {
      const p = this.closePacket;
      const onSent = this.onCloseSent;
      this.closePacket = null;
      this.onCloseSent = undefined;
      onSent?.();
      return p;
    }
    return null;
  }

  private takeBytes(n: number): Uint8Array {
    const first = this.chunks.peek()!;
    if (first.length === n) return this.chunks.shift()!;
    if (first.length > n) {
      this.chunks.replaceHead(first.subarray(n));
      return first.subarray(0, n);
    }
    // Several small chunks: gather them into one payload.
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks.peek()!;
      const need = n - filled;
      if (c.length <= need) {
        out.set(c, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        out.set(c.subarray(0, need), filled);
        filled += need;
        this.chunks.replaceHead(c.subarray(need));
      }
    }
    return out;
  }
}

export class SendScheduler {
  private readonly control = new Deque<Packet>();
  private readonly ring = new Deque<OutboundQueue>();
  private waitingForDrain = false;
  private pumping = false;
  private closed = false;

  constructor(
    private readonly channel: PacketChannel,
    private readonly chunkBytes: number,
    /**
     * Bytes allowed in the channel's write buffer before waiting for drain (FlowOptions
     * inFlightBytes). A stream's own high-water mark (16 KiB) would keep a single 64 KiB packet in
     * flight and leave the pipe idle between packets (half the throughput). Deeper pipelining
     * (512 KiB) used to deadlock two node:http2 peers under two-way load until the agent link kept
     * reading while writing (transport/keep-reading.ts; test/data-integrity.test.ts).
     */
    private readonly highWaterBytes = chunkBytes,
  ) {}

  /** Sends a control packet ahead of all connection data. */
  sendControl(packet: Packet): void {
    if (this.closed) return;
    this.control.push(packet);
    this.pump();
  }

  /** Gives a queue a turn if it has something to send. */
  schedule(queue: OutboundQueue): void {
    if (this.closed || queue.scheduled || !queue.hasSendable) return;
    queue.scheduled = true;
    this.ring.push(queue);
    this.pump();
  }

  /** The channel drained: continue sending. */
  onDrain(): void {
    this.waitingForDrain = false;
    this.pump();
  }

  get isBlocked(): boolean {
    return this.waitingForDrain;
  }

  close(): void {
    this.closed = true;
    this.control.clear();
    this.ring.clear();
  }

  private pump(): void {
    if (this.pumping || this.waitingForDrain || this.closed) return;
    this.pumping = true;
    try {
      for (;;) {
        let packet = this.control.shift();
        if (packet === undefined) {
          const queue = this.ring.shift();
          if (queue === undefined) break;
          queue.scheduled = false;
          packet = queue.take(this.chunkBytes) ?? undefined;
          if (queue.hasSendable) {
            queue.scheduled = true;
            this.ring.push(queue);
          }
          if (packet === undefined) continue;
        }
        if (!this.channel.send(packet) && this.channel.writableLength >= this.highWaterBytes) {
          this.waitingForDrain = true;
          break;
        }
        if (this.closed) break;
      }
    } finally {
      this.pumping = false;
    }
  }
}
