// Azure Standard Load Balancer's default SNAT pre-allocation by backend pool size (troubleshooting.md
// §5.2, AKS default `allocatedOutboundPorts = 0`). Crossing a boundary halves every node's ports.

const table: readonly { maxPool: number; ports: number }[] = [
  { maxPool: 50, ports: 1024 },
  { maxPool: 100, ports: 512 },
  { maxPool: 200, ports: 256 },
  { maxPool: 400, ports: 128 },
  { maxPool: 800, ports: 64 },
  { maxPool: 1000, ports: 32 },
];

/** SNAT ports each instance gets in a pool of `poolSize`; null above 1,000 instances (the table ends there). */
export function defaultPortsPerNode(poolSize: number): number | null {
  return table.find((row) => poolSize <= row.maxPool)?.ports ?? null;
}

/** The largest pool size that gets the same default allocation as `poolSize`; null past the table. */
export function lastPoolSizeAt(poolSize: number): number | null {
  return table.find((r) => poolSize <= r.maxPool)?.maxPool ?? null;
}

/**
 * The smallest pool size above `poolSize` at which the default allocation halves (doctor-cli.md
 * `nextBoundary`); null in the table's last row, since past 1,000 instances there is no default
 * allocation to halve, and null past the table.
 */
export function nextBoundary(poolSize: number): number | null {
  const last = lastPoolSizeAt(poolSize);
  return last === null || last >= maxDefaultPoolSize ? null : last + 1;
}

export const maxDefaultPoolSize = 1000;
