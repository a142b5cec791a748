// Packet and byte counts on the per-packet path, kept as plain numbers and handed to the metrics
// library only when it is scraped. A prom-client child's inc() hashes its labels on every call,
// which showed in the bulk-transfer profiles (~5 % of the busy time of server and agent).
import { packetTypes, type Packet } from "../protocol/index.js";

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

/** The part of a prom-client counter a collect callback uses (kept structural: no metrics library here). */
export interface LabelledCounter {
  labels(...values: string[]): { inc(n: number): void };
}

/** A `collect` for a counter labelled (segment, packet_type) that hands it the tally's counts. */
export function collectPackets<S extends string>(tally: PacketTally<S>): (this: LabelledCounter) => void {
  const children = new Map<string, { inc(n: number): void }>();
  return function (this: LabelledCounter) {
    if (children.size === 0) {
      // Every (segment, type) is listed from the first scrape, at 0 until it happens.
      for (const s of tally.segments) {
        for (const t of packetTypes) {
          const child = this.labels(s, t);
          child.inc(0);
          children.set(s + t, child);
        }
      }
    }
    tally.flush((s, t, n) => children.get(s + t)!.inc(n));
  };
}

/** A `collect` for a counter labelled by one name, fed by one Tally per label value. */
export function collectTallies(byLabel: Readonly<Record<string, Tally>>): (this: LabelledCounter) => void {
  return function (this: LabelledCounter) {
    for (const [label, tally] of Object.entries(byLabel)) this.labels(label).inc(tally.take());
  };
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
