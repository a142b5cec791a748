// Reusable buffers for encoded packets. At bulk rates every 64 KiB DATA packet used to allocate a
// fresh buffer; V8 counts those as external memory and runs a full mark-compact every few dozen
// MB of them, which the benchmark's profiles showed as the largest cost after the kernel.
// A buffer goes back to the pool only when the transport says it is done with it. Small packets
// (dials, closes, a keystroke of DATA) are allocated normally, from Node's shared slab: a burst of
// 10,000 CLOSE_REQs once took 10,000 pooled-size buffers (625 MiB of address space, ~45 MiB of it
// resident) while they queued on the stream.

export class FramePool {
  private readonly free: Buffer[] = [];
  /** The ArrayBuffers this pool made: only those may come back. */
  private readonly own = new WeakSet<ArrayBufferLike>();

  constructor(
    /** Size of every pooled buffer; larger requests are allocated normally. */
    readonly bufferBytes: number,
    /** Free buffers kept at most; the rest are left to the garbage collector. */
    private readonly maxFree = 64,
    /** Requests below this size are allocated normally. */
    private readonly smallest = bufferBytes / 4,
  ) {}

  readonly take = (size: number): Buffer => {
    if (size > this.bufferBytes || size < this.smallest) return Buffer.allocUnsafe(size);
    let buf = this.free.pop();
    if (buf === undefined) {
      buf = Buffer.allocUnsafeSlow(this.bufferBytes);
      this.own.add(buf.buffer);
    }
    return buf.subarray(0, size);
  };

  /** Returns a buffer from take(); anything else (or a pool that is full) is ignored. */
  readonly give = (view: Buffer): void => {
    if (!this.own.has(view.buffer) || this.free.length >= this.maxFree) return;
    this.free.push(Buffer.from(view.buffer, 0, this.bufferBytes));
  };

  /** Lets the free buffers go (a quiet process gives their memory back). */
  drop(): void {
    this.free.length = 0;
  }

  get freeCount(): number {
    return this.free.length;
  }
}
