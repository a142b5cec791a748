// HTTP/2 PING keepalive for one session, both ends (konnectivity.md §1.7: grpc-go keepalive
// Time/Timeout). A ping every `timeMs`; no ack within `timeoutMs` means the peer or the path is
// dead (a silently dropped NAT mapping, a black-holed link) and `onDead` tears the session down.
//
// Sessions with the same interval share one timer that ticks four times per interval; a session
// is pinged every interval, its first ping 1 to 1.25 intervals after it starts. A frontend holds one
// session per proxied connection (10,000 and more): a timer and two closures each would cost
// ~0.4 KiB per connection. Timers are unref'ed: keepalive alone never keeps a process alive.

/** node:http2's Http2Session or our Http2Session. */
interface PingingSession {
  readonly destroyed: boolean;
  readonly closed: boolean;
  ping(callback: (err: Error | null, durationMs: number, payload: Buffer) => void): boolean;
}

export interface KeepaliveOptions<S extends PingingSession = PingingSession> {
  readonly timeMs: number;
  readonly timeoutMs: number;
  /** The session is passed along, so one options object can serve every session of a server. */
  readonly onDead: (silentForMs: number, session: S) => void;
}

/** A running keepalive; stop() is idempotent. */
export interface Keepalive {
  stop(): void;
}

// Time is counted in the group's ticks, not read from a clock: a ping is due after a whole
// interval's worth of them since the last one.
class Entry implements Keepalive {
  ticks: number;
  deadline: NodeJS.Timeout | undefined;
  isStopped = false;

  /** `isMidInterval`: the group's timer is already running, so the first tick comes early and does not count. */
  constructor(readonly session: PingingSession, readonly options: KeepaliveOptions, readonly group: KeepaliveGroup, isMidInterval: boolean) {
    this.ticks = isMidInterval ? -1 : 0;
  }

  tick(): void {
    if (this.deadline !== undefined || this.isStopped || this.session.destroyed || this.session.closed) return;
    if (++this.ticks < ticksPerInterval) return;
    this.ticks = 0;
    const now = Date.now();
    this.deadline = setTimeout(() => {
      this.deadline = undefined;
      if (!this.isStopped) this.options.onDead(Date.now() - now, this.session);
    }, this.options.timeoutMs);
    this.deadline.unref();
    try {
      this.session.ping(() => {
        // An error here means the session is going away; its own close handling reports that.
        clearTimeout(this.deadline);
        this.deadline = undefined;
      });
    } catch {
      clearTimeout(this.deadline);
      this.deadline = undefined;
    }
  }

  stop(): void {
    if (this.isStopped) return;
    this.isStopped = true;
    clearTimeout(this.deadline);
    this.deadline = undefined;
    this.group.delete(this);
  }
}

const ticksPerInterval = 4;

class KeepaliveGroup {
  readonly #entries = new Set<Entry>();
  readonly #interval: NodeJS.Timeout;

  constructor(readonly timeMs: number, readonly onEmpty: () => void) {
    this.#interval = setInterval(() => {
      for (const entry of this.#entries) entry.tick();
    }, Math.max(1, Math.floor(timeMs / ticksPerInterval)));
    this.#interval.unref();
  }

  add(entry: Entry): void {
    this.#entries.add(entry);
  }

  delete(entry: Entry): void {
    this.#entries.delete(entry);
    if (this.#entries.size > 0) return;
    clearInterval(this.#interval);
    this.onEmpty();
  }
}

const groups = new Map<number, KeepaliveGroup>();

const disabled: Keepalive = { stop: () => {} };

/** Starts pinging `session`. timeMs 0 disables. */
export function startKeepalive<S extends PingingSession>(session: S, options: KeepaliveOptions<S>): Keepalive {
  if (options.timeMs <= 0) return disabled;
  const { timeMs } = options;
  let group = groups.get(timeMs);
  const isMidInterval = group !== undefined;
  if (!group) {
    group = new KeepaliveGroup(timeMs, () => groups.delete(timeMs));
    groups.set(timeMs, group);
  }
  const entry = new Entry(session, options as KeepaliveOptions, group, isMidInterval);
  group.add(entry);
  return entry;
}
