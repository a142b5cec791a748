// A packet mark update as the kernel computes it, `new = (old & and) ^ xor`: every iptables
// MARK/CONNMARK form reduces to it (xt_mark's xset), and so does every nft `meta mark set` made of
// constants and bit operations on the mark (nft's bitwise expression is a mask and an xor too).
// Shared by the iptables and nftables evaluators.

/** A mark, mask or other 32-bit value as iptables and nft print them: decimal or 0x hex. */
export function parseUint32(text: string): number | undefined {
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) && value <= 0xffffffff ? value : undefined;
}

export interface MarkUpdate { readonly and: number; readonly xor: number }

/** The mark after `update`; null (not known) when the mark or the update is. */
export function applyMarkUpdate(mark: number | null, update: MarkUpdate | null): number | null {
  return mark === null || update === null ? null : (((mark & update.and) >>> 0) ^ update.xor) >>> 0;
}

/** Setting the mark to `v`, and keeping it as it is. */
export const markSetTo = (v: number): MarkUpdate => ({ and: 0, xor: v });
export const markUnchanged: MarkUpdate = { and: 0xffffffff, xor: 0 };

// nft's bit operations on the mark, in its text (`and`, `or`, `xor`) and JSON (`&`, `|`, `^`) spellings.
const markOperations: Readonly<Record<string, (v: number) => MarkUpdate>> = {
  and: (v) => ({ and: v, xor: 0 }),
  "&": (v) => ({ and: v, xor: 0 }),
  or: (v) => ({ and: ~v >>> 0, xor: v }),
  "|": (v) => ({ and: ~v >>> 0, xor: v }),
  xor: (v) => ({ and: 0xffffffff, xor: v }),
  "^": (v) => ({ and: 0xffffffff, xor: v }),
};

/** The update `mark <op> v` makes; undefined for an operator that is none of these. */
export function markOperation(op: string, v: number): MarkUpdate | undefined {
  return Object.hasOwn(markOperations, op) ? markOperations[op]!(v) : undefined;
}

/** `first`, then `then`, as one update. */
export function thenMarkUpdate(first: MarkUpdate, then: MarkUpdate): MarkUpdate {
  return { and: (first.and & then.and) >>> 0, xor: (((first.xor & then.and) >>> 0) ^ then.xor) >>> 0 };
}
