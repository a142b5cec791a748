// A flood of one kind of warning (a peer retrying a refused Connect in a loop, or many bogus
// ones) must not flood the log: at most `perWindow` lines per window, the rest counted and
// reported in one line when the window ends, with the last one's fields.
import type { Logger } from "pino";

export class WarningBudget {
  #windowStart = Number.NEGATIVE_INFINITY;
  #logged = 0;
  #suppressed = 0;
  #lastFields: object | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Pick<Logger, "warn">,
    private readonly message: string,
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  warn(fields: object): void {
    const t = this.now();
    if (t - this.#windowStart >= this.windowMs) {
      this.flush();
      this.#windowStart = t;
      this.#logged = 0;
    }
    if (this.#logged < this.perWindow) {
      this.#logged++;
      this.log.warn(fields, this.message);
      return;
    }
    this.#suppressed++;
    this.#lastFields = fields;
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.flush(), Math.max(0, this.#windowStart + this.windowMs - t));
      this.#timer.unref();
    }
  }

  /** Reports what the current window held back (the timer calls this at the window's end). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#suppressed === 0) return;
    const n = this.#suppressed;
    this.#suppressed = 0;
    this.log.warn({ ...this.#lastFields, suppressed: n }, `${this.message}: ${n} more within ${this.windowMs / 1000} s, not logged one by one (the last one's fields shown)`);
    this.#lastFields = undefined;
  }
}
