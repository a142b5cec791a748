// Port ranges as sets: what the doctors need to tell whether a rule's port matches, taken together,
// single out one port (is-deletable-blocker.ts for iptables, is-deletable-nft-blocker.ts for nft).

export type PortRange = readonly [number, number];

export const ALL_PORTS: readonly PortRange[] = [[0, 65535]];

/** Sorted, with overlapping and adjacent ranges merged. */
export function normalise(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** The ports outside `ranges`. */
export function complement(ranges: readonly PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  let next = 0;
  for (const [lo, hi] of normalise(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= 65535) out.push([next, 65535]);
  return out;
}

/** The ports in both. */
export function intersect(a: readonly PortRange[], b: readonly PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  for (const [alo, ahi] of a) {
    for (const [blo, bhi] of b) {
      const lo = Math.max(alo, blo);
      const hi = Math.min(ahi, bhi);
      if (lo <= hi) out.push([lo, hi]);
    }
  }
  return normalise(out);
}
