// Groups outbound connections by destination ip:port: how many, and how many in TIME_WAIT. Many
// short connections to one destination burn SNAT ports (TCP takes one SNAT port per destination
// IP:port, troubleshooting.md §5.4); the cure is connection pooling (§1.3 cause 5, fix 5a).
import type { Connection } from "./parse-connections.js";

export interface DestinationChurn {
  readonly destination: string;
  readonly connections: number;
  readonly timeWait: number;
}

export function summarizeChurn(connections: readonly Connection[]): DestinationChurn[] {
  const by = new Map<string, { connections: number; timeWait: number }>();
  for (const c of connections) {
    const e = by.get(c.destination) ?? { connections: 0, timeWait: 0 };
    e.connections++;
    if (c.state === "TIME_WAIT") e.timeWait++;
    by.set(c.destination, e);
  }
  return [...by].map(([destination, e]) => ({ destination, ...e }))
    .sort((a, b) => b.connections - a.connections || b.timeWait - a.timeWait || a.destination.localeCompare(b.destination));
}

/** TIME_WAIT to one destination that counts as churn: 100, or a quarter of a small allocation. */
export function churnThreshold(portsPerNode: number | null): number {
  if (portsPerNode === null) return 100;
  return Math.min(100, Math.max(16, Math.ceil(portsPerNode / 4)));
}
