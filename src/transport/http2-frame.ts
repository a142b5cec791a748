// HTTP/2 frame layout and registry values (RFC 9113 §4.1, §6, §7, §11). The error codes equal
// node:http2's NGHTTP2_* constants, so code written against either reads the same numbers.

export const frameHeaderBytes = 9;
export const clientPreface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const Http2ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** RFC 9113 §6.9.1. */
export const maxWindowBytes = 2 ** 31 - 1;
export const defaultWindowBytes = 65_535;
/** RFC 9113 §4.2: SETTINGS_MAX_FRAME_SIZE lies between these. */
export const minMaxFrameBytes = 16_384;
export const maxMaxFrameBytes = 2 ** 24 - 1;

function writeFrameHeader(into: Buffer, length: number, type: number, flags: number, streamId: number): Buffer {
  into[0] = length >>> 16;
  into[1] = (length >>> 8) & 0xff;
  into[2] = length & 0xff;
  into[3] = type;
  into[4] = flags;
  into.writeUInt32BE(streamId & 0x7fffffff, 5);
  return into;
}

/** The 9-byte header alone, for a DATA frame whose payload is written after it as it is. */
export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  return writeFrameHeader(Buffer.allocUnsafe(frameHeaderBytes), length, type, flags, streamId);
}

/** A whole frame in one buffer (control frames and HEADERS). */
export function encodeFrame(type: number, flags: number, streamId: number, payload?: Uint8Array): Buffer {
  const length = payload?.length ?? 0;
  const frame = writeFrameHeader(Buffer.allocUnsafe(frameHeaderBytes + length), length, type, flags, streamId);
  if (payload) frame.set(payload, frameHeaderBytes);
  return frame;
}

export function settingsPayload(settings: ReadonlyArray<readonly [id: number, value: number]>): Buffer {
  const payload = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return payload;
}

export function windowUpdatePayload(increment: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(increment, 0);
  return payload;
}

export function rstStreamPayload(code: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(code, 0);
  return payload;
}

export function goawayPayload(lastStreamId: number, code: number, debug?: Uint8Array): Buffer {
  const payload = Buffer.allocUnsafe(8 + (debug?.length ?? 0));
  payload.writeUInt32BE(lastStreamId & 0x7fffffff, 0);
  payload.writeUInt32BE(code, 4);
  if (debug) payload.set(debug, 8);
  return payload;
}

/**
 * Bytes to keep for a while (queued for a reader that is paused, or not there yet): a DATA
 * payload is a view of the socket read it came in, up to 64 KiB, so a 1-byte payload kept as it
 * is keeps all of them. One under a quarter of its buffer is copied into a buffer of its own, so
 * what is kept pins at most 4 times its size; a 16 KiB frame of a 64 KiB read stays as it is. Not
 * for bytes handed straight on: the bulk path stays zero-copy.
 */
export function unpinned(bytes: Uint8Array): Uint8Array {
  if (4 * bytes.byteLength >= bytes.buffer.byteLength) return bytes;
  // Not Buffer.from(): a small copy would come from the shared 8 KiB pool, and pin that instead.
  const own = Buffer.allocUnsafeSlow(bytes.byteLength);
  own.set(bytes);
  return own;
}
