// Pausing a shared stream on behalf of several holders: the memory budget, and connections whose
// reader fell behind the slow-consumer cap while the peer does not speak the credit extension.
// The stream reads again only when the last holder lets go, so one holder cannot resume a stream
// another still needs paused.
import type { Pausable } from "./memory-budget.js";

export class PauseHolds {
  private holders = 0;

  constructor(private readonly stream: Pausable) {}

  get isPaused(): boolean {
    return this.holders > 0;
  }

  /** Pauses the stream until the returned release is called; releasing twice does nothing. */
  hold(): () => void {
    if (this.holders++ === 0) this.stream.pause();
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (--this.holders === 0) this.stream.resume();
    };
  }

  /** The holds as a Pausable, for MemoryBudget.addSource: its pause is one hold, its resume lets go. */
  asPausable(): Pausable {
    let release: (() => void) | undefined;
    return {
      pause: () => {
        release ??= this.hold();
      },
      resume: () => {
        release?.();
        release = undefined;
      },
    };
  }
}
