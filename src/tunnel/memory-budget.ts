// The process-wide budget for bytes received from a shared stream but not yet flushed to local
// endpoints. Per-connection limits normally keep this low; when it is exceeded anyway (many
// connections with slow readers and peers that do not speak the credit extension), reading the
// shared streams is paused until it falls to half: the last resort DESIGN.md allows, and logged.

export interface Pausable {
  pause(): void;
  resume(): void;
}

export class MemoryBudget {
  private used = 0;
  private paused = false;
  private readonly sources = new Set<Pausable>();
  private readonly listeners: Array<(paused: boolean, usedBytes: number) => void> = [];

  constructor(readonly limitBytes: number) {}

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

  onChange(listener: (paused: boolean, usedBytes: number) => void): void {
    this.listeners.push(listener);
  }

  adjust(deltaBytes: number): void {
    this.used += deltaBytes;
    if (!this.paused && this.used > this.limitBytes) {
      this.paused = true;
      for (const s of this.sources) s.pause();
      for (const l of this.listeners) l(true, this.used);
    } else if (this.paused && this.used <= this.limitBytes / 2) {
      this.paused = false;
      for (const s of this.sources) s.resume();
      for (const l of this.listeners) l(false, this.used);
    }
  }
}
