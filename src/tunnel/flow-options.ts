// The flow-control limits of one side of the tunnel (DESIGN.md, "Flow control is per connection").

export interface FlowOptions {
  /** Largest DATA payload put on a shared stream at once; the unit of round-robin fairness. */
  readonly chunkBytes: number;
  /**
   * Bytes handed to the shared stream before waiting for its drain: the pipelining depth. One
   * chunk measured as fast as eight one way (docs/benchmarks.md); deeper settings are safe since
   * the agent link keeps reading while it writes (transport/keep-reading.ts).
   */
  readonly inFlightBytes: number;
  /** A connection's outbound queue above this pauses its local reader (only that connection). */
  readonly maxQueueBytes: number;
  /** Credit window per connection when both peers speak the credit extension. */
  readonly creditWindowBytes: number;
  /**
   * Without credit, a local writer this far behind pauses reading the shared stream, so the peer
   * slows down (upstream's own backpressure); one that delivers nothing for a second, or does not
   * pass on half of it within slowConsumerGraceMs, is closed as a slow consumer, and the stream
   * reads again (tunnel-connection.ts).
   */
  readonly slowConsumerBytes: number;
  /** How long a writer over slowConsumerBytes may hold the shared stream paused; 0 closes it at once. */
  readonly slowConsumerGraceMs: number;
  /** All connections' unflushed inbound bytes above this pause reading the shared streams (last resort). */
  readonly memoryBudgetBytes: number;
}

export const defaultFlowOptions: FlowOptions = Object.freeze({
  chunkBytes: 64 * 1024,
  inFlightBytes: 64 * 1024,
  maxQueueBytes: 1024 * 1024,
  creditWindowBytes: 4 * 1024 * 1024,
  slowConsumerBytes: 32 * 1024 * 1024,
  slowConsumerGraceMs: 2000,
  memoryBudgetBytes: 512 * 1024 * 1024,
});
