// Hand-written protobuf codec for Packet (proto/konnectivity.proto). Pure: bytes in, values out.
// Encoding follows proto3: zero values are not written, except that a oneof member is always
// written once set (so DRAIN carries an empty field 8). Decoding is zero-copy for DATA payloads
// and tolerant the way protobuf is (unknown fields skipped, missing fields default), but strict
// about malformed bytes, which throw TunnelError("PROTOCOL").
import { PacketType, type Packet } from "./packet.js";
import { TunnelError } from "./tunnel-error.js";

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: false });

// ---- encoding ----

const MASK64 = (1n << 64n) - 1n;

function varintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Length of an int64 as a varint (negative values take 10 bytes, as two's complement). */
function int64Length(v: bigint): number {
  if (v >= 0n && v <= 0x1fffffffffffffn) return varintLength(Number(v));
  let u = v & MASK64;
  let n = 1;
  while (u >= 0x80n) {
    u >>= 7n;
    n++;
  }
  return n;
}

function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

function writeInt64(buf: Uint8Array, pos: number, v: bigint): number {
  if (v >= 0n && v <= 0x1fffffffffffffn) return writeVarint(buf, pos, Number(v));
  let u = v & MASK64;
  while (u >= 0x80n) {
    buf[pos++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  buf[pos++] = Number(u);
  return pos;
}

/** A sub-message's fields, in field-number order, as the encoder needs them. */
type Field =
  | { readonly no: number; readonly kind: "int64"; readonly value: bigint }
  | { readonly no: number; readonly kind: "bytes"; readonly value: Uint8Array };

function fieldLength(f: Field): number {
  if (f.kind === "int64") return f.value === 0n ? 0 : 1 + int64Length(f.value);
  return f.value.length === 0 ? 0 : 1 + varintLength(f.value.length) + f.value.length;
}

function writeField(buf: Uint8Array, pos: number, f: Field): number {
  if (f.kind === "int64") {
    if (f.value === 0n) return pos;
    buf[pos++] = (f.no << 3) | WIRE_VARINT;
    return writeInt64(buf, pos, f.value);
  }
  if (f.value.length === 0) return pos;
  buf[pos++] = (f.no << 3) | WIRE_LEN;
  pos = writeVarint(buf, pos, f.value.length);
  buf.set(f.value, pos);
  return pos + f.value.length;
}

const str = (no: number, s: string): Field => ({ no, kind: "bytes", value: s.length === 0 ? EMPTY : textEncoder.encode(s) });
const i64 = (no: number, value: bigint): Field => ({ no, kind: "int64", value });
const EMPTY = new Uint8Array(0);

/** The oneof member's field number in Packet and its fields. */
function payloadOf(p: Packet): { typeValue: number; member: number; fields: Field[] } {
  switch (p.type) {
    case "DIAL_REQ":
      return { typeValue: PacketType.DIAL_REQ, member: 2, fields: [str(1, p.protocol), str(2, p.address), i64(3, p.random)] };
    case "DIAL_RSP":
      return { typeValue: PacketType.DIAL_RSP, member: 3, fields: [str(1, p.error), i64(2, p.connectID), i64(3, p.random)] };
    case "DATA":
      return {
        typeValue: PacketType.DATA,
        member: 4,
        fields: [i64(1, p.connectID), str(2, p.error), { no: 3, kind: "bytes", value: p.data }],
      };
    case "CLOSE_REQ":
      return { typeValue: PacketType.CLOSE_REQ, member: 5, fields: [i64(1, p.connectID)] };
    case "CLOSE_RSP":
      return { typeValue: PacketType.CLOSE_RSP, member: 6, fields: [str(1, p.error), i64(2, p.connectID)] };
    case "DIAL_CLS":
      return { typeValue: PacketType.DIAL_CLS, member: 7, fields: [i64(1, p.random)] };
    case "DRAIN":
      return { typeValue: PacketType.DRAIN, member: 8, fields: [] };
    case "WINDOW_UPDATE":
      return { typeValue: PacketType.WINDOW_UPDATE, member: 100, fields: [i64(1, p.connectID), i64(2, BigInt(p.bytes))] };
    case "UNKNOWN":
      throw new TunnelError("PROTOCOL", `cannot encode a packet of unknown type ${p.typeValue}`);
  }
}

function tagLength(fieldNo: number): number {
  return varintLength((fieldNo << 3) | WIRE_LEN);
}

/**
 * The length of DATA{connectID, data} without an error as encodePacket writes it: a received DATA
 * message of another length carries something more (unknown or repeated fields, an over-long
 * varint) and is not handed on as it came.
 */
export function dataPacketLength(connectID: bigint, dataLength: number): number {
  const body = (connectID === 0n ? 0 : 1 + int64Length(connectID)) + (dataLength === 0 ? 0 : 1 + varintLength(dataLength) + dataLength);
  return 1 + varintLength(PacketType.DATA) + 1 + varintLength(body) + body;
}

/**
 * Encodes a packet. `headroom` bytes are left free at the start of the returned buffer so that a
 * transport can put its frame header there without copying the packet again; `allocate` lets a
 * caller supply the buffer (from a pool of reusable ones).
 */
export function encodePacket(p: Packet, headroom = 0, allocate: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
  const { typeValue, member, fields } = payloadOf(p);
  let bodyLength = 0;
  for (const f of fields) bodyLength += fieldLength(f);
  const total = (typeValue === 0 ? 0 : 1 + varintLength(typeValue)) + tagLength(member) + varintLength(bodyLength) + bodyLength;
  const buf = allocate(headroom + total);
  let pos = headroom;
  if (typeValue !== 0) {
    buf[pos++] = (1 << 3) | WIRE_VARINT;
    pos = writeVarint(buf, pos, typeValue);
  }
  pos = writeVarint(buf, pos, (member << 3) | WIRE_LEN);
  pos = writeVarint(buf, pos, bodyLength);
  for (const f of fields) pos = writeField(buf, pos, f);
  if (pos !== buf.length) throw new Error(`packet codec: wrote ${pos} of ${buf.length} bytes`);
  return buf;
}

// ---- decoding ----

class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start: number, readonly end: number) {
    this.pos = start;
  }

  fail(what: string): never {
    throw new TunnelError("PROTOCOL", `malformed packet: ${what} at byte ${this.pos}`);
  }

  /** A varint as a number; values above 2^53 are rejected (used for tags and lengths). */
  uint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER) this.fail("varint too large");
        return result;
      }
      mul *= 128;
    }
    return this.fail("varint longer than 10 bytes");
  }

  /** A field's tag; as protobuf-go, a field number past 2^29-1 (a tag past 32 bits) is refused. */
  tag(): number {
    const tag = this.uint();
    if (tag > 0xffffffff) this.fail("field number out of range");
    return tag;
  }

  /** A varint as int64 (two's complement, as protobuf int64). */
  int64(): bigint {
    const start = this.pos;
    // Fast path: up to 7 bytes fit in 49 bits.
    let small = 0;
    let mul = 1;
    for (let i = 0; i < 7 && this.pos < this.end; i++) {
      const b = this.buf[this.pos++]!;
      small += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return BigInt(small);
      mul *= 128;
    }
    this.pos = start;
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.buf[this.pos++]!;
      // The tenth byte holds bit 63 alone: more is an overflow, which protobuf-go refuses.
      if (i === 9 && b > 1) this.fail("varint overflows 64 bits");
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asIntN(64, result);
      shift += 7n;
    }
    return this.fail("varint longer than 10 bytes");
  }

  /** Returns [start, end) of a length-delimited field's bytes. */
  lengthDelimited(): [number, number] {
    const len = this.uint();
    if (len > this.end - this.pos) this.fail(`length ${len} past the end of the message`);
    const start = this.pos;
    this.pos += len;
    return [start, this.pos];
  }

  skip(wireType: number, fieldNo: number, depth = 0): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.uint64Skip();
        return;
      case WIRE_FIXED64:
        if (this.end - this.pos < 8) this.fail("truncated fixed64");
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_FIXED32:
        if (this.end - this.pos < 4) this.fail("truncated fixed32");
        this.pos += 4;
        return;
      case WIRE_START_GROUP: {
        if (depth > 32) this.fail("groups nested too deeply");
        for (;;) {
          if (this.pos >= this.end) this.fail("unterminated group");
          const tag = this.tag();
          const wt = tag & 7;
          if (wt === WIRE_END_GROUP) {
            if (tag >>> 3 !== fieldNo) this.fail("mismatched end group");
            return;
          }
          this.skip(wt, tag >>> 3, depth + 1);
        }
      }
      default:
        this.fail(`invalid wire type ${wireType}`);
    }
  }

  private uint64Skip(): void {
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.buf[this.pos++]!;
      if (i === 9 && b > 1) this.fail("varint overflows 64 bits");
      if ((b & 0x80) === 0) return;
    }
    this.fail("varint longer than 10 bytes");
  }
}

/** Accumulated fields of one sub-message (all int64 / string / bytes fields a Packet member has). */
interface Fields {
  i64: Map<number, bigint>;
  bytes: Map<number, Uint8Array>;
}

const STRING_FIELDS: Record<number, ReadonlySet<number>> = {
  2: new Set([1, 2]), // DialRequest protocol, address
  3: new Set([1]), // DialResponse error
  4: new Set([2, 3]), // Data error, data(bytes)
  5: new Set(),
  6: new Set([1]), // CloseResponse error
  7: new Set(),
  8: new Set(),
  100: new Set(),
};
const INT64_FIELDS: Record<number, ReadonlySet<number>> = {
  2: new Set([3]),
  3: new Set([2, 3]),
  4: new Set([1]),
  5: new Set([1]),
  6: new Set([2]),
  7: new Set([1]),
  8: new Set(),
  100: new Set([1, 2]),
};

function readMember(buf: Uint8Array, start: number, end: number, member: number, into: Fields): void {
  const r = new Reader(buf, start, end);
  const lenFields = STRING_FIELDS[member]!;
  const intFields = INT64_FIELDS[member]!;
  while (r.pos < end) {
    const tag = r.tag();
    const no = tag >>> 3;
    const wt = tag & 7;
    if (no === 0) r.fail("field number 0");
    // A known field with another wire type is an unknown field to protobuf-go (errUnknown), skipped.
    if (lenFields.has(no) && wt === WIRE_LEN) {
      const [s, e] = r.lengthDelimited();
      into.bytes.set(no, buf.subarray(s, e));
    } else if (intFields.has(no) && wt === WIRE_VARINT) {
      into.i64.set(no, r.int64());
    } else {
      r.skip(wt, no);
    }
  }
}

const MEMBER_OF_TYPE: Record<number, number> = { 0: 2, 1: 3, 4: 4, 2: 5, 3: 6, 5: 7, 6: 8, 100: 100 };

/** What a stream negotiated that changes how its packets are read. */
export interface DecodeOptions {
  /**
   * Both ends offered the credit extension: type 100 is WINDOW_UPDATE and field 100 its member.
   * Otherwise they are what they are to upstream's proto, an unknown type (ignored) and an
   * unknown field (skipped), so a peer that never offered the extension cannot end the stream
   * or hide a DATA packet's bytes with them.
   */
  readonly windowUpdates?: boolean;
}

/** Decodes one Packet message (the bytes inside a gRPC frame). Throws TunnelError("PROTOCOL"). */
export function decodePacket(buf: Uint8Array, o: DecodeOptions = {}): Packet {
  const hasWindowUpdates = o.windowUpdates === true;
  const r = new Reader(buf, 0, buf.length);
  let typeValue = 0;
  // oneof: the member set last wins; merge repeated occurrences of that member.
  let lastMember = 0;
  const occurrences: Array<[member: number, start: number, end: number]> = [];
  while (r.pos < buf.length) {
    const tag = r.tag();
    const no = tag >>> 3;
    const wt = tag & 7;
    if (no === 0) r.fail("field number 0");
    // As in readMember: a known field with another wire type is skipped as unknown.
    if (no === 1 && wt === WIRE_VARINT) {
      // An enum is an int32 on the wire; keep its low 32 bits as protobuf does.
      typeValue = Number(BigInt.asIntN(32, r.int64()));
    } else if (((no >= 2 && no <= 8) || (no === 100 && hasWindowUpdates)) && wt === WIRE_LEN) {
      const [s, e] = r.lengthDelimited();
      lastMember = no;
      occurrences.push([no, s, e]);
    } else {
      r.skip(wt, no);
    }
  }

  const member = typeValue === PacketType.WINDOW_UPDATE && !hasWindowUpdates ? undefined : MEMBER_OF_TYPE[typeValue];
  // Every member is parsed, as protobuf's eager decoding does, so malformed bytes anywhere fail;
  // only the member set last counts, and only if it belongs to the type. As protobuf-go, another
  // member in between replaces the value, so only the last run of the last member is merged
  // (DATA, CLOSE_REQ, DATA: the second DATA alone).
  let lastRunStart = occurrences.length;
  while (lastRunStart > 0 && occurrences[lastRunStart - 1]![0] === lastMember) lastRunStart--;
  let f: Fields = { i64: new Map(), bytes: new Map() };
  for (let i = 0; i < occurrences.length; i++) {
    const [m, s, e] = occurrences[i]!;
    readMember(buf, s, e, m, i >= lastRunStart ? f : { i64: new Map(), bytes: new Map() });
  }
  if (member === undefined) return { type: "UNKNOWN", typeValue };
  if (lastMember !== member) f = { i64: new Map(), bytes: new Map() };
  const text = (no: number) => {
    const b = f.bytes.get(no);
    return b === undefined || b.length === 0 ? "" : textDecoder.decode(b);
  };
  const int = (no: number) => f.i64.get(no) ?? 0n;

  switch (typeValue) {
    case PacketType.DIAL_REQ:
      return { type: "DIAL_REQ", protocol: text(1), address: text(2), random: int(3) };
    case PacketType.DIAL_RSP:
      return { type: "DIAL_RSP", error: text(1), connectID: int(2), random: int(3) };
    case PacketType.DATA:
      return { type: "DATA", connectID: int(1), error: text(2), data: f.bytes.get(3) ?? EMPTY };
    case PacketType.CLOSE_REQ:
      return { type: "CLOSE_REQ", connectID: int(1) };
    case PacketType.CLOSE_RSP:
      return { type: "CLOSE_RSP", error: text(1), connectID: int(2) };
    case PacketType.DIAL_CLS:
      return { type: "DIAL_CLS", random: int(1) };
    case PacketType.DRAIN:
      return { type: "DRAIN" };
    default: {
      // WINDOW_UPDATE (100): credit must be a sane positive byte count.
      const bytes = int(2);
      if (bytes <= 0n || bytes > 0x7fffffffn) r.fail(`window update of ${bytes} bytes`);
      return { type: "WINDOW_UPDATE", connectID: int(1), bytes: Number(bytes) };
    }
  }
}
