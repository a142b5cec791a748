// The process-wide budget for bytes received from a shared stream but not yet flushed to local
// endpoints. Per-connection limits normally keep this low; when it is exceeded anyway (many
// connections with stalled readers, each holding up to its credit window, or peers that do not
// speak the credit extension), reading the shared streams is paused until it falls to half: the
// last resort DESIGN.md allows, and logged.
//
// A pause alone cannot end while the bytes are held by readers that take nothing: the streams
// would stay paused for good, and a paused stream carries no CLOSE_REQ, DIAL_REQ or credit either,
// so every connection of every node behind it would wait on those readers. So a pause that has
// lasted SHED_AFTER_MS closes the connections whose readers took nothing meanwhile, those holding
// the most first, until what is left is under the resume mark. Readers that are draining are left
// alone: they bring the total down by themselves.

export interface Pausable {
  pause(): void;
  resume(): void;
}

/** A connection holding bytes against the budget. */
export interface BudgetMember {
  /** Bytes it holds for its local reader now. */
  readonly heldBytes: number;
  /** Bytes its local reader has taken so far: grows while the reader drains. */
  readonly deliveredBytes: number;
  /** Closes it, freeing what it holds; `error` is the close's text. */
  shed(error: string): void;
}

/** How long the streams stay paused before stalled readers are closed to end the pause. */
export const SHED_AFTER_MS = 1000;

export class MemoryBudget {
  private used = 0;
  private paused = false;
  private readonly sources = new Set<Pausable>();
  private readonly members = new Set<BudgetMember>();
  private readonly listeners: Array<(paused: boolean, usedBytes: number) => void> = [];
  private readonly shedListeners: Array<(shed: number, freedBytes: number) => void> = [];
  private shedTimer: NodeJS.Timeout | undefined;
  /** What each member had delivered when the current shed period began. */
  private deliveredAtCheck = new Map<BudgetMember, number>();

  constructor(readonly limitBytes: number, private readonly shedAfterMs = SHED_AFTER_MS) {}

  get usedBytes(): number {
    return this.used;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Registers a shared stream to pause when over budget; returns its remover. */
  addSource(source: Pausable): () => void {
    this.sources.add(source);
    if (this.paused) source.pause();
    return () => {
      this.sources.delete(source);
    };
  }

  /** A connection that holds bytes (from its first held byte until it holds none or ends). */
  join(member: BudgetMember): void {
    this.members.add(member);
  }

  leave(member: BudgetMember): void {
    this.members.delete(member);
    this.deliveredAtCheck.delete(member);
  }

  onChange(listener: (paused: boolean, usedBytes: number) => void): void {
    this.listeners.push(listener);
  }

  /** Called after stalled readers were closed to end a pause: how many, and the bytes they held. */
  onShed(listener: (shed: number, freedBytes: number) => void): void {
    this.shedListeners.push(listener);
  }

  adjust(deltaBytes: number): void {
    this.used += deltaBytes;
    if (!this.paused && this.used > this.limitBytes) {
      this.paused = true;
      for (const s of this.sources) s.pause();
      for (const l of this.listeners) l(true, this.used);
      this.armShedCheck();
    } else if (this.paused && this.used <= this.limitBytes / 2) {
      this.paused = false;
      clearTimeout(this.shedTimer);
      this.shedTimer = undefined;
      this.deliveredAtCheck.clear();
      for (const s of this.sources) s.resume();
      for (const l of this.listeners) l(false, this.used);
    }
  }

  private armShedCheck(): void {
    clearTimeout(this.shedTimer);
    this.deliveredAtCheck = new Map([...this.members].map((m) => [m, m.deliveredBytes]));
    this.shedTimer = setTimeout(() => this.shedStalled(), this.shedAfterMs);
    this.shedTimer.unref();
  }

  // Largest stalled holders first, until the rest is at the resume mark; then check again later
  // if the pause goes on (readers that were draining may have stalled since).
  private shedStalled(): void {
    this.shedTimer = undefined;
    if (!this.paused) return;
    const stalled = [...this.members]
      .filter((m) => m.heldBytes > 0 && m.deliveredBytes === this.deliveredAtCheck.get(m))
      .sort((a, b) => b.heldBytes - a.heldBytes);
    const resumeAt = this.limitBytes / 2;
    const usedBefore = this.used;
    let shed = 0;
    for (const m of stalled) {
      // What is actually left, not what was expected: a member that cannot be closed frees nothing.
      if (this.used <= resumeAt) break;
      shed++;
      m.shed(`closed to free memory: the process holds ${usedBefore} bytes for its local readers, over its budget of ${this.limitBytes}, and this connection's reader took none of its ${m.heldBytes} bytes for ${this.shedAfterMs} ms`);
    }
    if (shed > 0) for (const l of this.shedListeners) l(shed, usedBefore - this.used);
    if (this.paused) this.armShedCheck();
  }
}
