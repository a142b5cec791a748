// Packet and byte counts on the per-packet path, kept as plain numbers and handed to the metrics
// library only when it is scraped. A prom-client child's inc() hashes its labels on every call,
// which showed in the bulk-transfer profiles (~5 % of the busy time of server and agent).
import type { Packet } from "../protocol/index.js";

export const packetTypes: ReadonlyArray<Packet["type"]> = ["DIAL_REQ", "DIAL_RSP", "CLOSE_REQ", "CLOSE_RSP", "DATA", "DIAL_CLS", "DRAIN", "WINDOW_UPDATE", "UNKNOWN"];
const typeIndex = Object.fromEntries(packetTypes.map((t, i) => [t, i])) as Record<Packet["type"], number>;

export class PacketTally<S extends string> {
  private readonly rows = new Map<S, Float64Array>();

  constructor(readonly segments: readonly S[]) {
    for (const s of segments) this.rows.set(s, new Float64Array(packetTypes.length));
  }

  add(segment: S, type: Packet["type"]): void {
    this.rows.get(segment)![typeIndex[type]]++;
  }

  /** Hands over the counts since the last flush (only the non-zero ones) and starts again from zero. */
  flush(sink: (segment: S, type: Packet["type"], n: number) => void): void {
    for (const [segment, row] of this.rows) {
      for (let i = 0; i < row.length; i++) {
        if (row[i] !== 0) {
          sink(segment, packetTypes[i]!, row[i]!);
          row[i] = 0;
        }
      }
    }
  }
}

/** A number added to on the hot path and read (and zeroed) at scrape time. */
export class Tally {
  private n = 0;

  add(n: number): void {
    this.n += n;
  }

  take(): number {
    const n = this.n;
    this.n = 0;
    return n;
  }
}
