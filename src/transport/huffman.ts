// HPACK's Huffman code (RFC 7541 §5.2, Appendix B). The code is canonical: sorted by length, then
// by symbol, each code is the previous one plus one (shifted left when the length grows). So the
// table below holds only the bit length of each symbol, 0–255 and EOS (256); the codes follow
// from it, and a test checks them against the RFC's worked examples (Appendix C.4, C.6).
// Pure: bytes in, bytes out.
import { TunnelError } from "../protocol/tunnel-error.js";

const eos = 256;

// prettier-ignore
const codeLengths: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

interface CanonicalCode {
  /** For each length: the first code of that length, and the index of its symbol in `symbols`. */
  readonly firstCode: Int32Array;
  readonly firstIndex: Int32Array;
  readonly countOf: Int32Array;
  /** Symbols sorted by (length, symbol). */
  readonly symbols: Uint16Array;
  /** Each symbol's code, right-aligned. */
  readonly codes: Uint32Array;
}

function buildCanonicalCode(): CanonicalCode {
  const maxLength = 30;
  const order = [...codeLengths.keys()].sort((a, b) => codeLengths[a]! - codeLengths[b]! || a - b);
  const firstCode = new Int32Array(maxLength + 1).fill(-1);
  const firstIndex = new Int32Array(maxLength + 1);
  const countOf = new Int32Array(maxLength + 1);
  const symbols = Uint16Array.from(order);
  const codes = new Uint32Array(codeLengths.length);
  let code = 0;
  let length = codeLengths[order[0]!]!;
  order.forEach((symbol, index) => {
    const symbolLength = codeLengths[symbol]!;
    code *= 2 ** (symbolLength - length);
    length = symbolLength;
    if (firstCode[length] === -1) {
      firstCode[length] = code;
      firstIndex[length] = index;
    }
    countOf[length]!++;
    codes[symbol] = code;
    code++;
  });
  return { firstCode, firstIndex, countOf, symbols, codes };
}

const canonical = buildCanonicalCode();

/** The code of `symbol` (0–256) and its length in bits; for tests and the encoder. */
export function huffmanCode(symbol: number): { readonly code: number; readonly bits: number } {
  return { code: canonical.codes[symbol]!, bits: codeLengths[symbol]! };
}

/** The length in bytes of `bytes` once Huffman-coded. */
export function huffmanEncodedLength(bytes: Uint8Array): number {
  let bits = 0;
  for (const b of bytes) bits += codeLengths[b]!;
  return Math.ceil(bits / 8);
}

/** Huffman-codes `bytes`, padding the last octet with the most significant bits of EOS (all ones). */
export function huffmanEncode(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(huffmanEncodedLength(bytes));
  let pos = 0;
  let acc = 0;
  let accBits = 0;
  for (const b of bytes) {
    // At most 7 + 30 bits are pending: a double holds them exactly (no 32-bit shifts).
    acc = acc * 2 ** codeLengths[b]! + canonical.codes[b]!;
    accBits += codeLengths[b]!;
    while (accBits >= 8) {
      accBits -= 8;
      const high = Math.floor(acc / 2 ** accBits);
      out[pos++] = high;
      acc -= high * 2 ** accBits;
    }
  }
  if (accBits > 0) out[pos++] = ((acc << (8 - accBits)) | (0xff >>> accBits)) & 0xff;
  return out;
}

/**
 * Decodes a Huffman-coded string literal. RFC 7541 §5.2: padding longer than 7 bits, padding
 * that is not a prefix of EOS (all ones), and an EOS symbol inside the string are decoding errors.
 */
export function huffmanDecode(encoded: Uint8Array): Buffer {
  // Every symbol is at least 5 bits long: the output is at most 8/5 of the input.
  const out = Buffer.allocUnsafe(Math.ceil((encoded.length * 8) / 5));
  let pos = 0;
  let code = 0;
  let length = 0;
  for (const byte of encoded) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >>> bit) & 1);
      length++;
      const first = canonical.firstCode[length]!;
      if (first !== -1 && code - first < canonical.countOf[length]! && code >= first) {
        const symbol = canonical.symbols[canonical.firstIndex[length]! + code - first]!;
        if (symbol === eos) throw new TunnelError("PROTOCOL", "hpack: EOS symbol inside a Huffman-coded string");
        out[pos++] = symbol;
        code = 0;
        length = 0;
      } else if (length > 30) {
        throw new TunnelError("PROTOCOL", "hpack: invalid Huffman code");
      }
    }
  }
  if (length > 7) throw new TunnelError("PROTOCOL", "hpack: Huffman padding longer than 7 bits");
  if (code !== 2 ** length - 1) throw new TunnelError("PROTOCOL", "hpack: Huffman padding is not a prefix of EOS");
  return out.subarray(0, pos);
}
