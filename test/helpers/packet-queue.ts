// Packets a test peer received, read in order with a deadline: the fake agents and fake
// kube-apiserver clients all expose their inbound packets this way.
import type { Packet, PacketOf } from "../../src/protocol/index.js";

export class PacketQueue {
  /** Every packet ever received, in order (also those already read with next()). */
  readonly all: Packet[] = [];
  private readonly unread: Packet[] = [];
  private waiter: (() => void) | undefined;
  private isEnded = false;

  push(p: Packet): void {
    this.all.push(p);
    this.unread.push(p);
    this.wake();
  }

  /** The peer's stream ended: a waiting next() fails at once instead of at its deadline. */
  end(): void {
    this.isEnded = true;
    this.wake();
  }

  get ended(): boolean {
    return this.isEnded;
  }

  /** The next unread packet; fails after timeoutMs or when the stream ended with nothing unread. */
  async next(timeoutMs = 3000): Promise<Packet> {
    const until = Date.now() + timeoutMs;
    while (this.unread.length === 0) {
      if (this.isEnded) throw new Error(`stream ended; packets seen: ${describe(this.all)}`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no packet within ${timeoutMs} ms; packets seen: ${describe(this.all)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.unread.shift()!;
  }

  /** The next unread packet, which must be of `type`. */
  async expect<T extends Packet["type"]>(type: T, timeoutMs = 3000): Promise<PacketOf<T>> {
    const p = await this.next(timeoutMs);
    if (p.type !== type) throw new Error(`expected ${type}, got ${describe([p])}`);
    return p as PacketOf<T>;
  }

  /** Nothing arrives for `ms` (a rule that says "no packet is sent"). */
  async expectNothing(ms: number): Promise<void> {
    const before = this.unread.length;
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.unread.length > before || before > 0) throw new Error(`expected no packet, got ${describe(this.unread)}`);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

export function describe(packets: readonly Packet[]): string {
  return packets.length === 0 ? "none" : packets.map((p) => JSON.stringify(p, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? `<${v.length} bytes>` : v))).join(", ");
}
