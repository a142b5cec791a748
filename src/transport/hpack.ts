// HPACK header compression (RFC 7541) for the HTTP/2 server in http2-session.ts.
// Decoding is complete: indexed fields, literals with and without indexing, never-indexed
// literals, Huffman-coded strings and dynamic table size updates, as grpc-go, grpc-js (nghttp2)
// and grpc-core encode them. Encoding uses no dynamic table: every field is "literal without
// indexing" (a static-table name where there is one) or a static indexed field, so the peer's
// table never has to track ours. Pure: bytes in, header lists out.
import { TunnelError } from "../protocol/tunnel-error.js";
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from "./huffman.js";

/** A header list in wire order: names lower-case, values as latin1 strings (one char per byte). */
export type HeaderList = Array<[name: string, value: string]>;

// RFC 7541 Appendix A.
const staticTable: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"], [":path", "/index.html"],
  [":scheme", "http"], [":scheme", "https"], [":status", "200"], [":status", "204"], [":status", "206"],
  [":status", "304"], [":status", "400"], [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""], ["accept", ""],
  ["access-control-allow-origin", ""], ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""], ["date", ""],
  ["etag", ""], ["expect", ""], ["expires", ""], ["from", ""], ["host", ""], ["if-match", ""],
  ["if-modified-since", ""], ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""],
  ["last-modified", ""], ["link", ""], ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""],
  ["proxy-authorization", ""], ["range", ""], ["referer", ""], ["refresh", ""], ["retry-after", ""],
  ["server", ""], ["set-cookie", ""], ["strict-transport-security", ""], ["transfer-encoding", ""],
  ["user-agent", ""], ["vary", ""], ["via", ""], ["www-authenticate", ""],
];

// Every connection of one client sends the same few fields (":authority", "user-agent", "te"...)
// and indexes them in its table: one shared copy of each instead of one per connection and
// request. Bounded, so a client that sends ever-new values cannot grow it without end.
const maxInternedFields = 4096;
const internedFields = new Map<string, readonly [string, string]>();

function internField(name: string, value: string): readonly [string, string] {
  if (name.length + value.length > 256) return [name, value];
  const key = `${name}\0${value}`;
  const found = internedFields.get(key);
  if (found) return found;
  const field = Object.freeze([name, value] as const);
  if (internedFields.size < maxInternedFields) internedFields.set(key, field);
  return field;
}

/** RFC 7541 §4.1: an entry's size is its name and value lengths plus 32. */
const entrySize = (name: string, value: string): number => name.length + value.length + 32;

// An integer longer than this is not a header we would accept anyway (and stays exact).
const maxInteger = 2 ** 31 - 1;
// Continuation bytes carry 7 bits each: five reach past maxInteger. More are only zeros a peer
// pads with, and ~150 of them made 0 * 2 ** shift NaN, which passed every "> limit" check.
const maxIntegerContinuationBytes = 5;

function hpackError(message: string): TunnelError {
  return new TunnelError("PROTOCOL", `hpack: ${message}`);
}

export interface HpackDecoderOptions {
  /** Our SETTINGS_HEADER_TABLE_SIZE: the most the encoder may size its table to. */
  readonly maxTableBytes: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE: a larger list is refused (after decoding, to stay in sync). */
  readonly maxHeaderListBytes: number;
}

export class HpackDecoder {
  readonly #maxTableBytesAllowed: number;
  readonly #maxHeaderListBytes: number;
  // The dynamic table, a ring: #count entries from #newest on (wrapping), newest first, so an
  // insert and an eviction cost the same at any table length. It grows by doubling, to at most
  // twice the entries the table can hold (32 bytes each at least, §4.1).
  #ring: Array<readonly [string, string] | undefined> = [];
  #newest = 0;
  #count = 0;
  #tableBytes = 0;
  #maxTableBytes: number;

  constructor(options: HpackDecoderOptions) {
    this.#maxTableBytesAllowed = options.maxTableBytes;
    this.#maxTableBytes = options.maxTableBytes;
    this.#maxHeaderListBytes = options.maxHeaderListBytes;
  }

  get tableBytes(): number {
    return this.#tableBytes;
  }

  /**
   * Decodes one complete header block. Throws PROTOCOL on a malformed block (a connection error,
   * COMPRESSION_ERROR). A list over the size limit is decoded all the same, so the table stays
   * in step with the peer's, and flagged: the caller refuses that stream only. Its fields past
   * the limit are not collected (a 256 KiB block of 1-byte indexed fields is 262,144 of them).
   */
  decode(block: Uint8Array): { headers: HeaderList; isTooLarge: boolean } {
    const headers: HeaderList = [];
    let listBytes = 0;
    let pos = 0;
    let mayUpdateSize = true;
    const readInteger = (prefixBits: number): number => {
      if (pos >= block.length) throw hpackError("header block ends inside an integer");
      const max = (1 << prefixBits) - 1;
      let value = block[pos++]! & max;
      if (value < max) return value;
      for (let shift = 0; ; shift += 7) {
        if (shift === 7 * maxIntegerContinuationBytes) throw hpackError("integer too large");
        if (pos >= block.length) throw hpackError("header block ends inside an integer");
        const byte = block[pos++]!;
        value += (byte & 0x7f) * 2 ** shift;
        if (value > maxInteger) throw hpackError("integer too large");
        if ((byte & 0x80) === 0) return value;
      }
    };
    const readString = (): string => {
      if (pos >= block.length) throw hpackError("header block ends inside a string");
      const isHuffman = (block[pos]! & 0x80) !== 0;
      const length = readInteger(7);
      if (pos + length > block.length) throw hpackError("string literal runs past the header block");
      const raw = block.subarray(pos, pos + length);
      pos += length;
      return (isHuffman ? huffmanDecode(raw) : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)).toString("latin1");
    };
    const lookup = (index: number): readonly [string, string] => {
      if (index === 0) throw hpackError("index 0");
      if (index <= staticTable.length) return staticTable[index - 1]!;
      const position = index - staticTable.length - 1;
      if (position >= this.#count) throw hpackError(`index ${index} is past the dynamic table (${this.#count} entries)`);
      return this.#ring[(this.#newest + position) % this.#ring.length]!;
    };
    const emit = (field: readonly [string, string]) => {
      listBytes += entrySize(field[0], field[1]);
      if (listBytes <= this.#maxHeaderListBytes) headers.push([field[0], field[1]]);
    };
    while (pos < block.length) {
      const byte = block[pos]!;
      if (byte & 0x80) {
        // §6.1 Indexed Header Field.
        emit(lookup(readInteger(7)));
        mayUpdateSize = false;
      } else if (byte & 0x40) {
        // §6.2.1 Literal Header Field with Incremental Indexing.
        const index = readInteger(6);
        const name = index === 0 ? readString() : lookup(index)[0];
        const field = internField(name, readString());
        this.#insert(field);
        emit(field);
        mayUpdateSize = false;
      } else if (byte & 0x20) {
        // §6.3 Dynamic Table Size Update: only at the start of a block (§4.2).
        if (!mayUpdateSize) throw hpackError("dynamic table size update after the first header field");
        const size = readInteger(5);
        if (size > this.#maxTableBytesAllowed) {
          throw hpackError(`dynamic table size update to ${size} exceeds SETTINGS_HEADER_TABLE_SIZE ${this.#maxTableBytesAllowed}`);
        }
        this.#maxTableBytes = size;
        this.#evict(0);
      } else {
        // §6.2.2 without indexing (0000xxxx) and §6.2.3 never indexed (0001xxxx): same shape.
        const index = readInteger(4);
        const name = index === 0 ? readString() : lookup(index)[0];
        emit(internField(name, readString()));
        mayUpdateSize = false;
      }
    }
    return { headers, isTooLarge: listBytes > this.#maxHeaderListBytes };
  }

  #insert(field: readonly [string, string]): void {
    const size = entrySize(field[0], field[1]);
    // §4.4: an entry larger than the table empties it and is not added.
    this.#evict(size);
    if (size > this.#maxTableBytes) return;
    if (this.#count === this.#ring.length) this.#grow();
    this.#newest = (this.#newest + this.#ring.length - 1) % this.#ring.length;
    this.#ring[this.#newest] = field;
    this.#count++;
    this.#tableBytes += size;
  }

  #evict(room: number): void {
    while (this.#tableBytes + room > this.#maxTableBytes && this.#count > 0) {
      const oldest = (this.#newest + this.#count - 1) % this.#ring.length;
      const [name, value] = this.#ring[oldest]!;
      this.#ring[oldest] = undefined;
      this.#count--;
      this.#tableBytes -= entrySize(name, value);
    }
  }

  // Unrolled from #newest into a ring twice as long: amortised O(1) per insert.
  #grow(): void {
    const ring = new Array<readonly [string, string] | undefined>(Math.max(8, 2 * this.#ring.length));
    for (let i = 0; i < this.#count; i++) ring[i] = this.#ring[(this.#newest + i) % this.#ring.length];
    this.#ring = ring;
    this.#newest = 0;
  }
}

const staticNameIndex = new Map<string, number>();
const staticPairIndex = new Map<string, number>();
staticTable.forEach(([name, value], i) => {
  if (!staticNameIndex.has(name)) staticNameIndex.set(name, i + 1);
  if (value !== "") staticPairIndex.set(`${name}\0${value}`, i + 1);
});

function writeInteger(out: number[], value: number, prefixBits: number, firstByteFlags: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(firstByteFlags | value);
    return;
  }
  out.push(firstByteFlags | max);
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function writeString(out: number[], value: string): void {
  const bytes = Buffer.from(value, "latin1");
  const huffmanLength = huffmanEncodedLength(bytes);
  if (huffmanLength < bytes.length) {
    writeInteger(out, huffmanLength, 7, 0x80);
    for (const b of huffmanEncode(bytes)) out.push(b);
  } else {
    writeInteger(out, bytes.length, 7, 0);
    for (const b of bytes) out.push(b);
  }
}

/**
 * Encodes a header list without touching the dynamic table: an exact static match is one indexed
 * byte (":status: 200" is 0x88), anything else a literal without indexing (RFC 7541 §6.2.2).
 */
export function encodeHeaderBlock(headers: HeaderList): Buffer {
  const out: number[] = [];
  for (const [name, value] of headers) {
    const pairIndex = staticPairIndex.get(`${name}\0${value}`);
    if (pairIndex !== undefined) {
      writeInteger(out, pairIndex, 7, 0x80);
      continue;
    }
    const nameIndex = staticNameIndex.get(name);
    if (nameIndex !== undefined) {
      writeInteger(out, nameIndex, 4, 0);
    } else {
      out.push(0);
      writeString(out, name);
    }
    writeString(out, value);
  }
  return Buffer.from(out);
}
