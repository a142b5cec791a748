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

/** The smallest pool size above `poolSize` at which the default allocation halves; null past the table. */
export function nextBoundary(poolSize: number): number | null {
  const row = table.find((r) => poolSize <= r.maxPool);
  return row ? row.maxPool + 1 : null;
}

export const maxDefaultPoolSize = 1000;
