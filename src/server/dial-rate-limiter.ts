// A token bucket for dials: a flood of dials (a misbehaving client, a retry storm after an outage)
// is refused with "503 too many dials" instead of piling up pending dials on the agents.

export class DialRateLimiter {
  private tokens: number;
  private lastMs: number;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.lastMs = now();
  }

  /** Takes one token; false when the bucket is empty. */
  tryTake(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.lastMs) / 1000) * this.perSecond);
    this.lastMs = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
