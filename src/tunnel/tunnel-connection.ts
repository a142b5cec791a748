// One proxied connection on a shared packet stream, on either side of the tunnel: bytes from the
// local Endpoint go out through the SendScheduler in fair chunks; DATA from the peer is written to
// the Endpoint under per-connection flow control.
//
//            local end (EOF/error)                 peer close (or deadline)
//   open ─────────────────────────▶ closing ─────────────────────────────▶ finished
//     │  close packet queued behind the data, then wait for the peer's close      ▲
//     ├── peer close ─────────────────────────────────────────────────────────────┤ endpoint flushed, reply sent if owed
//     └── slow consumer / destroy ────────────────────────────────────────────────┘ endpoint destroyed
//
// Flow control, receiving: with the credit extension, credit is granted back to the peer as
// bytes leave our endpoint buffer, so a slow reader throttles only its own sender. Without it
// (an upstream peer), bytes are buffered up to slowConsumerBytes; past that the connection holds
// the shared stream paused, as upstream would, so the peer slows down to its reader. A reader
// that passes on half the cap within slowConsumerGraceMs lets go and goes on (a bulk download to
// a client that is merely slower than the node); one that drains nothing for HOLD_STALL_MS, or
// does not catch up within the grace period, is closed as a slow consumer, so a stalled reader
// costs the other connections about a second.
import type { Logger } from "pino";
import { TunnelError, windowUpdate, type Packet } from "../protocol/index.js";
import type { Endpoint, EndpointHandlers } from "./endpoint.js";
import type { FlowOptions } from "./flow-options.js";
import type { BudgetMember, MemoryBudget } from "./memory-budget.js";
import { OutboundQueue, type QueueOwner, type SendScheduler } from "./send-scheduler.js";

export interface ConnectionSide {
  /** The packet telling the peer our local end finished (agent: CLOSE_RSP; server: CLOSE_REQ). */
  localClose(connectID: bigint, error: string): Packet;
  /** What we owe the peer when it closes (the agent answers CLOSE_REQ with CLOSE_RSP); null for nothing. */
  peerCloseReply(connectID: bigint): Packet | null;
  /** After sending our close, how long to wait for the peer's before forgetting the connection. */
  readonly awaitPeerCloseMs: number;
}

export type FinishReason = "local-closed" | "peer-closed" | "slow-consumer" | "memory-budget" | "destroyed";

export interface ConnectionCounters {
  bytesToPeer(n: number): void;
  bytesFromPeer(n: number): void;
  slowConsumer(): void;
  /** A connection over the slow-consumer cap paused reading the shared stream (no credit). */
  readonly streamHeld?: () => void;
  /** How long the endpoint's write of the peer's DATA took, in seconds (the server's frontend write latency). */
  readonly endpointWritten?: (seconds: number) => void;
}

export interface TunnelConnectionOptions {
  readonly connectID: bigint;
  readonly endpoint: Endpoint;
  readonly scheduler: SendScheduler;
  readonly flow: FlowOptions;
  /** Both peers speak the credit extension on this stream. */
  readonly credit: boolean;
  readonly side: ConnectionSide;
  readonly budget?: MemoryBudget;
  readonly counters?: ConnectionCounters;
  /**
   * Pauses reading the shared stream until the returned release is called (PauseHolds.hold).
   * Without it, a connection over the slow-consumer cap is closed at once.
   */
  readonly holdStream?: () => () => void;
  readonly log: Logger;
  onFinished(conn: TunnelConnection, reason: FinishReason, err?: Error): void;
}

type State = "open" | "closing" | "finished";

/**
 * How long a closing connection may wait for its queued data to go out (credit the peer does not
 * grant, because its reader stalled) before the data is dropped and the close sent out of line,
 * when the side does not wait for the peer's close anyway.
 */
const CLOSE_FLUSH_DEADLINE_MS = 30_000;

/** How often a connection holding the shared stream checks whether its writer caught up. */
const HOLD_CHECK_MS = 50;

/**
 * A writer holding the shared stream that drains nothing for this long has stalled (a pager the
 * user stopped), and is closed without waiting out the rest of the grace period. Progress shows
 * only as the reader's side acknowledges it: a gRPC frontend whose client credits its window
 * 8 MiB at a time, read at 20 MB/s, showed it every 0.4 s; a reader fast enough for the grace
 * period (8 MiB/s at the default cap) shows it within a second.
 */
const HOLD_STALL_MS = 1000;

/** The shared stream paused for this connection's writer, and how far the writer has come since. */
interface StreamHold {
  readonly release: () => void;
  readonly since: number;
  readonly timer: NodeJS.Timeout;
  /** What the writer had passed on when the hold began. */
  readonly startDeliveredBytes: number;
  /**
   * What the writer had passed on when last seen going forward, and when. Bytes still arriving
   * in the peer's window grow the buffer while it drains, so progress is counted in bytes
   * delivered, not in the buffer shrinking.
   */
  deliveredBytes: number;
  progressAt: number;
}

export class TunnelConnection implements EndpointHandlers, QueueOwner, BudgetMember {
  readonly connectID: bigint;
  readonly startedAt = Date.now();
  bytesToPeer = 0;
  bytesFromPeer = 0;
  private state: State = "open";
  private readonly queue: OutboundQueue;
  private readerPaused = false;
  private ungrantedBytes = 0;
  private accountedBytes = 0;
  private closeTimer: NodeJS.Timeout | undefined;
  private hold: StreamHold | undefined;
  /**
   * Without credit: when the reader last kept up (nothing buffered) or took something, and what it
   * had taken then. A reader past the cap that has taken nothing for HOLD_STALL_MS already is
   * closed without holding the shared stream: otherwise N stalled readers, each reaching the cap
   * only after the one before was closed, would hold it a second each, one after another.
   */
  private progressAt = performance.now();
  private progressDelivered = 0;

  constructor(private readonly o: TunnelConnectionOptions) {
    this.connectID = o.connectID;
    this.queue = new OutboundQueue(
      o.connectID,
      o.credit ? o.flow.creditWindowBytes : Infinity,
      o.flow.maxQueueBytes / 2,
      this,
    );
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  get queuedBytes(): number {
    return this.queue.bytes;
  }

  get bufferedBytes(): number {
    return this.o.endpoint.writableLength;
  }

  /** Past the slow-consumer cap without credit: reading the shared stream waits for this connection. */
  get isHoldingStream(): boolean {
    return this.hold !== undefined;
  }

  start(): void {
    this.o.endpoint.start(this);
  }

  /** DATA from the peer. */
  peerData(data: Uint8Array): void {
    if (this.state !== "open") return; // closing: our local end is gone, nobody reads it
    if (!this.o.credit) this.noteProgress();
    this.bytesFromPeer += data.length;
    this.o.counters?.bytesFromPeer(data.length);
    const timed = this.o.counters?.endpointWritten;
    const startedAt = timed ? performance.now() : 0;
    const ok = this.o.endpoint.write(data);
    if (timed) timed((performance.now() - startedAt) / 1000);
    this.account();
    if (this.o.credit) {
      this.ungrantedBytes += data.length;
      if (ok && this.ungrantedBytes >= this.o.flow.creditWindowBytes / 4) this.grant();
    }
    if (this.o.endpoint.writableLength > this.o.flow.slowConsumerBytes) this.overCap();
  }

  /** WINDOW_UPDATE from the peer. */
  peerCredit(bytes: number): void {
    this.queue.credit += bytes;
    this.o.scheduler.schedule(this.queue);
  }

  /** The peer closed the connection (CLOSE_REQ to an agent, CLOSE_RSP to a server, with its error text). */
  peerClose(peerError = ""): void {
    if (this.state === "finished") return;
    const reply = this.o.side.peerCloseReply(this.connectID);
    if (reply !== null) this.o.scheduler.sendControl(reply);
    const wasOpen = this.state === "open";
    // Nobody reads what is still queued, and our own close is not owed any more.
    this.queue.takeCloseNow();
    // Flush what was written, then close: a gRPC frontend also gets its CLOSE_RSP this way.
    this.o.endpoint.end(peerError);
    this.finish(wasOpen ? "peer-closed" : "local-closed");
  }

  /** The shared stream is gone (or the server shuts down): fail the local end now. */
  destroy(err?: Error): void {
    if (this.state === "finished") return;
    this.o.endpoint.destroy(err);
    this.finish("destroyed", err);
  }

  /** Bytes from our endpoint, for the peer. */
  localData(chunk: Uint8Array): void {
    if (this.state !== "open") return;
    this.bytesToPeer += chunk.length;
    this.o.counters?.bytesToPeer(chunk.length);
    this.queue.push(chunk);
    this.o.scheduler.schedule(this.queue);
    if (!this.readerPaused && this.queue.bytes >= this.o.flow.maxQueueBytes) {
      this.readerPaused = true;
      this.o.endpoint.pause();
    }
  }

  /** Our queue fell below its low-water mark: a reader paused for it may go on. */
  queueLowWater(): void {
    if (this.readerPaused && this.state === "open") {
      this.readerPaused = false;
      this.o.endpoint.resume();
    }
  }

  // The close travels behind the connection's data. With credit, that data may wait on a peer
  // whose reader stalled; the connection stays in its table meanwhile (so WINDOW_UPDATEs still
  // reach it), and at the deadline the data is dropped and the close sent anyway. Finishing at
  // once instead left the close stuck behind credit that could no longer arrive: the peer kept
  // its end of the connection (and its socket) forever.
  localEnd(err?: Error): void {
    if (this.state !== "open") return;
    this.state = "closing";
    this.releaseHold(); // nothing more is written to the local end
    const awaitPeer = this.o.side.awaitPeerCloseMs > 0;
    this.queue.setClosePacket(this.o.side.localClose(this.connectID, ""), () => {
      if (!awaitPeer) this.finish("local-closed", err);
    });
    this.releaseBuffered();
    this.closeTimer = setTimeout(() => {
      const close = this.queue.takeCloseNow();
      if (close !== null) this.o.scheduler.sendControl(close);
      this.finish("local-closed", err);
    }, awaitPeer ? this.o.side.awaitPeerCloseMs : CLOSE_FLUSH_DEADLINE_MS);
    this.closeTimer.unref();
    this.o.scheduler.schedule(this.queue);
  }

  localDrain(): void {
    this.account();
    if (this.hold) this.checkHold();
    if (this.o.credit && this.ungrantedBytes > 0 && this.state === "open") this.grant();
  }

  private grant(): void {
    this.o.scheduler.sendControl(windowUpdate(this.connectID, this.ungrantedBytes));
    this.ungrantedBytes = 0;
  }

  // Past the cap. A credit peer cannot get here (the cap is at least its window) unless it
  // misbehaves, and is closed at once; so is every connection when holding is off.
  private overCap(): void {
    if (this.hold) return;
    const { slowConsumerGraceMs } = this.o.flow;
    if (this.o.credit || !this.o.holdStream || slowConsumerGraceMs <= 0) return this.slowConsumer("");
    const stalledMs = performance.now() - this.progressAt;
    if (stalledMs >= Math.min(HOLD_STALL_MS, slowConsumerGraceMs)) return this.slowConsumer(` and read nothing for ${Math.round(stalledMs)} ms`);
    this.o.counters?.streamHeld?.();
    this.o.log.debug({ connectID: String(this.connectID), bufferedBytes: this.o.endpoint.writableLength }, "a reader fell behind the cap: pausing the shared stream for it");
    const timer = setInterval(() => this.checkHold(), HOLD_CHECK_MS);
    timer.unref();
    const now = performance.now();
    const delivered = this.deliveredBytes;
    // Stalled time counts from the reader's last progress, not from the hold.
    this.hold = { release: this.o.holdStream(), since: now, timer, startDeliveredBytes: delivered, deliveredBytes: delivered, progressAt: this.progressAt };
  }

  private noteProgress(): void {
    const delivered = this.deliveredBytes;
    if (delivered === this.progressDelivered && this.o.endpoint.writableLength > 0) return;
    this.progressDelivered = delivered;
    this.progressAt = performance.now();
  }

  // The hold ends once the writer has passed on half the cap since it began (or is down to half
  // the cap): counted from where it began, a reader whose progress shows in steps (a gRPC
  // client's credit, 8 MiB at a time) is not held one step longer for the bytes that put it over.
  private checkHold(): void {
    const hold = this.hold;
    if (!hold) return;
    const half = this.o.flow.slowConsumerBytes / 2;
    const delivered = this.deliveredBytes;
    if (this.o.endpoint.writableLength <= half || delivered - hold.startDeliveredBytes >= half) return this.releaseHold();
    const now = performance.now();
    if (delivered > hold.deliveredBytes) {
      hold.deliveredBytes = delivered;
      hold.progressAt = now;
    }
    const { slowConsumerGraceMs } = this.o.flow;
    const stalledMs = now - hold.progressAt;
    if (stalledMs >= Math.min(HOLD_STALL_MS, slowConsumerGraceMs)) this.slowConsumer(` and read nothing for ${Math.round(stalledMs)} ms`);
    else if (now - hold.since >= slowConsumerGraceMs) this.slowConsumer(` and did not catch up within ${slowConsumerGraceMs} ms`);
  }

  /** Bytes from the peer that have left the endpoint's buffer. */
  get deliveredBytes(): number {
    return this.bytesFromPeer - this.o.endpoint.writableLength;
  }

  /** Bytes from the peer held for the local reader, as counted against the memory budget. */
  get heldBytes(): number {
    return this.accountedBytes;
  }

  /** The memory budget closes this connection to end a pause of the shared streams (MemoryBudget). */
  shed(error: string): void {
    // A closing connection no longer holds bytes for a reader (releaseBuffered), so it is not asked.
    if (this.state !== "open") return;
    this.close(error, "memory-budget", "closing a connection whose reader took nothing while the memory budget paused the shared streams");
  }

  private releaseHold(): void {
    if (!this.hold) return;
    clearInterval(this.hold.timer);
    this.hold.release();
    this.hold = undefined;
  }

  /** Closes the connection; `why` follows "the reader fell N bytes behind" in the log and the close's error. */
  private slowConsumer(why: string): void {
    const error = `slow consumer: the reader fell ${this.o.endpoint.writableLength} bytes behind${why}`;
    this.close(error, "slow-consumer", "closing a slow consumer: its reader fell behind the hard cap");
  }

  // The close the peer gets carries `error`; what was queued for the peer is dropped, and what is
  // buffered for our reader too (the endpoint is destroyed).
  private close(error: string, reason: "slow-consumer" | "memory-budget", message: string): void {
    this.o.log.warn({ connectID: String(this.connectID), bufferedBytes: this.o.endpoint.writableLength, error }, message);
    this.o.counters?.slowConsumer();
    this.queue.discard();
    this.queue.setClosePacket(this.o.side.localClose(this.connectID, error));
    this.o.scheduler.schedule(this.queue);
    // The local side hears why too: a gRPC frontend in its CLOSE_RSP, a TCP socket as a reset.
    this.o.endpoint.destroy(new TunnelError("CLOSED", error));
    this.finish(reason);
  }

  // Only while open: a closing or finished connection settled its bytes (releaseBuffered), and a
  // late drain of its endpoint (a gRPC frontend still writing out its tail) must not count it again.
  private account(): void {
    const budget = this.o.budget;
    if (!budget || this.state !== "open") return;
    const now = this.o.endpoint.writableLength;
    if (now > 0 && this.accountedBytes === 0) budget.join(this);
    else if (now === 0 && this.accountedBytes > 0) budget.leave(this);
    budget.adjust(now - this.accountedBytes);
    this.accountedBytes = now;
  }

  private releaseBuffered(): void {
    if (this.o.budget && this.accountedBytes !== 0) {
      this.o.budget.leave(this);
      this.o.budget.adjust(-this.accountedBytes);
      this.accountedBytes = 0;
    }
  }

  private finish(reason: FinishReason, err?: Error): void {
    if (this.state === "finished") return;
    this.state = "finished";
    clearTimeout(this.closeTimer);
    this.releaseHold();
    this.releaseBuffered();
    this.o.onFinished(this, reason, err);
  }
}
