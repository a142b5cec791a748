import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeHeaderBlock, HpackDecoder, type HeaderList } from "./hpack.js";
import { huffmanCode, huffmanDecode, huffmanEncode } from "./huffman.js";
import { isTunnelError } from "../protocol/tunnel-error.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const decoder = (maxTableBytes = 4096) => new HpackDecoder({ maxTableBytes, maxHeaderListBytes: 64 * 1024 });
const isHpackError = (e: unknown) => isTunnelError(e, "PROTOCOL") && /hpack/.test((e as Error).message);

test("RFC 7541 C.3: three requests without Huffman coding share the dynamic table", () => {
  const d = decoder();
  assert.deepEqual(d.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")).headers, [
    [":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"],
  ]);
  assert.equal(d.tableBytes, 57);
  assert.deepEqual(d.decode(hex("8286 84be 5808 6e6f 2d63 6163 6865")).headers, [
    [":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"],
  ]);
  assert.equal(d.tableBytes, 110);
  assert.deepEqual(d.decode(hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")).headers, [
    [":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"],
  ]);
  assert.equal(d.tableBytes, 164);
});

test("RFC 7541 C.4: the same requests with Huffman-coded strings", () => {
  const d = decoder();
  assert.deepEqual(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")).headers.at(-1), [":authority", "www.example.com"]);
  assert.deepEqual(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")).headers.at(-1), ["cache-control", "no-cache"]);
  assert.deepEqual(d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")).headers.at(-1), ["custom-key", "custom-value"]);
  assert.equal(d.tableBytes, 164);
});

test("the Huffman code is canonical and round-trips every byte", () => {
  assert.deepEqual(huffmanCode(0x30), { code: 0, bits: 5 }); // '0' is the first 5-bit code
  assert.deepEqual(huffmanCode(256), { code: 2 ** 30 - 1, bits: 30 }); // EOS
  assert.equal(huffmanEncode(Buffer.from("www.example.com")).toString("hex"), "f1e3c2e5f23a6ba0ab90f4ff");
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  assert.deepEqual(huffmanDecode(huffmanEncode(every)), every);
  assert.deepEqual(huffmanDecode(Buffer.alloc(0)), Buffer.alloc(0));
});

test("malformed Huffman strings are errors: padding over 7 bits, padding with a zero, EOS inside", () => {
  assert.throws(() => huffmanDecode(hex("ffff")), isHpackError); // 16 one-bits: padding too long
  assert.throws(() => huffmanDecode(hex("1e")), isHpackError); // '1' 00001 then 110: padding not all ones
  assert.throws(() => huffmanDecode(hex("ffffffff")), isHpackError); // EOS (30 ones) inside
});

test("a literal with indexing evicts the oldest entries to fit; an entry larger than the table empties it", () => {
  const d = decoder(100);
  const literal = (name: string, value: string) => Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
  d.decode(literal("a", "1")); // 34 bytes
  d.decode(literal("b", "2")); // 68
  d.decode(literal("c", "3")); // 102 > 100: "a" goes
  assert.equal(d.tableBytes, 68);
  assert.deepEqual(d.decode(hex("be bf")).headers, [["c", "3"], ["b", "2"]]);
  assert.throws(() => d.decode(hex("c0")), (e) => isHpackError(e) && /past the dynamic table/.test((e as Error).message));
  d.decode(literal("x", "y".repeat(80)));
  assert.equal(d.tableBytes, 0);
});

test("dynamic table size updates: allowed up to our setting and only at the start of a block", () => {
  const d = decoder(4096);
  d.decode(hex("4001 6101 31")); // a: 1 → table
  assert.equal(d.tableBytes, 34);
  d.decode(hex("20")); // size 0 evicts everything
  assert.equal(d.tableBytes, 0);
  d.decode(hex("3fe1 1f")); // size 4096 again (5-bit prefix integer)
  assert.throws(() => d.decode(hex("3fe2 1f")), (e) => isHpackError(e) && /exceeds SETTINGS_HEADER_TABLE_SIZE/.test((e as Error).message));
  assert.throws(() => d.decode(hex("82 20")), (e) => isHpackError(e) && /after the first header field/.test((e as Error).message));
});

test("malformed blocks are errors that name the problem", () => {
  const d = decoder();
  assert.throws(() => d.decode(hex("80")), (e) => isHpackError(e) && /index 0/.test((e as Error).message));
  assert.throws(() => d.decode(hex("ff")), (e) => isHpackError(e) && /inside an integer/.test((e as Error).message));
  assert.throws(() => d.decode(hex("ffffffffff0f")), (e) => isHpackError(e) && /too large/.test((e as Error).message));
  assert.throws(() => d.decode(hex("0003 6162")), (e) => isHpackError(e) && /runs past/.test((e as Error).message));
  assert.throws(() => d.decode(hex("00")), (e) => isHpackError(e) && /inside a string/.test((e as Error).message));
});

test("a header list over the size limit is decoded (the table stays in step) and flagged, without collecting the fields past the limit", () => {
  const d = new HpackDecoder({ maxTableBytes: 4096, maxHeaderListBytes: 40 });
  const { headers, isTooLarge } = d.decode(hex("4001 6101 31 82 4001 6201 32"));
  assert.equal(isTooLarge, true);
  assert.deepEqual(headers, [["a", "1"]], "\"a: 1\" is 34 bytes of 40; \":method: GET\" (42) goes past");
  assert.equal(d.tableBytes, 68, "\"b: 2\", past the limit, still entered the table");
  assert.deepEqual(d.decode(hex("be")).headers, [["b", "2"]]);
  // The largest block the session takes (4 x the list limit) of 1-byte indexed fields.
  const flood = new HpackDecoder({ maxTableBytes: 4096, maxHeaderListBytes: 64 * 1024 }).decode(Buffer.alloc(256 * 1024, 0x82));
  assert.equal(flood.isTooLarge, true);
  assert.equal(flood.headers.length, Math.floor((64 * 1024) / 42));
});

test("an integer padded with zero continuation bytes is refused (COMPRESSION_ERROR), not read as NaN", () => {
  const padded = (prefix: number) => Buffer.concat([Buffer.from([prefix]), Buffer.alloc(150, 0x80), Buffer.from([0x00])]);
  const isTooLarge = (e: unknown) => isHpackError(e) && /integer too large/.test((e as Error).message);
  // A table size update: NaN would pass "> SETTINGS_HEADER_TABLE_SIZE" and stop eviction for good.
  const d = decoder();
  assert.throws(() => d.decode(Buffer.concat([padded(0x3f), Buffer.from("4100", "hex")])), isTooLarge);
  // A string length: NaN ended the block there, silently, with a field of an empty name.
  assert.throws(() => d.decode(Buffer.concat([hex("83 00"), padded(0x7f), Buffer.from("not HPACK")])), isTooLarge);
  // An index.
  assert.throws(() => d.decode(padded(0xff)), isTooLarge);
  // Five continuation bytes still hold any integer up to 2^31-1; a sixth is refused even as zero.
  assert.deepEqual(d.decode(hex("3f 81 80 80 80 00")).headers, []);
  assert.throws(() => d.decode(hex("3f 81 80 80 80 80 00")), isTooLarge);
  // The table stays bounded whatever came before.
  d.decode(Buffer.concat([hex("3fe11f"), ...Array.from({ length: 1000 }, () => hex("4100"))]));
  assert.equal(d.tableBytes, 97 * 42, "97 entries of \":authority: \" (42 bytes) fit 4096");
});

test("the dynamic table indexes exactly like a newest-first list through many insertions and evictions", () => {
  const d = decoder(300);
  const model: Array<[string, string]> = [];
  let modelBytes = 0;
  const evictTo = (bytes: number) => {
    while (modelBytes > bytes) {
      const [name, value] = model.pop()!;
      modelBytes -= name.length + value.length + 32;
    }
  };
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 2000; round++) {
    const field: [string, string] = [`n${random(5)}`, "v".repeat(random(60))];
    d.decode(Buffer.concat([Buffer.from([0x40, field[0].length]), Buffer.from(field[0]), Buffer.from([field[1].length]), Buffer.from(field[1])]));
    model.unshift(field);
    modelBytes += field[0].length + field[1].length + 32;
    evictTo(300);
    assert.equal(d.tableBytes, modelBytes);
    const indices = model.map((_, i) => 0x80 | (62 + i));
    assert.deepEqual(d.decode(Buffer.from(indices)).headers, model, `round ${round}`);
    if (round % 250 === 249) {
      // Size updates to 0 or 100, then back to 300, at the start of a block.
      const isToZero = round % 500 === 499;
      d.decode(hex(isToZero ? "20 3f8d02" : "3f45 3f8d02"));
      evictTo(isToZero ? 0 : 100);
    }
  }
});

test("the encoder uses static entries, Huffman when shorter, and never the dynamic table", () => {
  const list: HeaderList = [
    [":status", "200"], ["content-type", "application/grpc"], ["grpc-status", "0"], ["grpc-message", "a b%20c"], ["x-bin", "\u00ff\u0000"],
  ];
  const block = encodeHeaderBlock(list);
  assert.equal(block[0], 0x88);
  const d = decoder();
  assert.deepEqual(d.decode(block).headers, list);
  assert.equal(d.tableBytes, 0);
  // A new name: literal without indexing (0x00), its 200 'a's Huffman-coded in 125 bytes.
  assert.deepEqual(encodeHeaderBlock([["a".repeat(200), "b"]]).subarray(0, 2), Buffer.from([0x00, 0x80 | 125]));
});
