// The reference Packet codec: protobufjs reading proto/konnectivity.proto, independent of
// src/protocol's hand-written codec, which the tests check against it byte for byte.
import protobuf from "protobufjs";
import type { Packet } from "../../src/protocol/index.js";

const root = protobuf.loadSync(new URL("../../proto/konnectivity.proto", import.meta.url).pathname);
export const PbPacket = root.lookupType("Packet");
const typeValue: Record<string, number> = { DIAL_REQ: 0, DIAL_RSP: 1, CLOSE_REQ: 2, CLOSE_RSP: 3, DATA: 4, DIAL_CLS: 5, DRAIN: 6 };
const typeName = Object.fromEntries(Object.entries(typeValue).map(([k, v]) => [v, k])) as Record<number, Packet["type"]>;

const long = (v: bigint) => (protobuf.util.Long as unknown as { fromString(s: string, unsigned: boolean): unknown }).fromString(v.toString(), false);

export function encodeWithProtobufjs(p: Packet): Buffer {
  const obj: Record<string, unknown> = { type: typeValue[p.type] };
  switch (p.type) {
    case "DIAL_REQ": obj.dialRequest = { protocol: p.protocol, address: p.address, random: long(p.random) }; break;
    case "DIAL_RSP": obj.dialResponse = { error: p.error, connectID: long(p.connectID), random: long(p.random) }; break;
    case "DATA": obj.data = { connectID: long(p.connectID), error: p.error, data: p.data }; break;
    case "CLOSE_REQ": obj.closeRequest = { connectID: long(p.connectID) }; break;
    case "CLOSE_RSP": obj.closeResponse = { error: p.error, connectID: long(p.connectID) }; break;
    case "DIAL_CLS": obj.closeDial = { random: long(p.random) }; break;
    case "DRAIN": obj.drain = {}; break;
    default: throw new Error(`no Konnectivity encoding for ${p.type}`);
  }
  return Buffer.from(PbPacket.encode(PbPacket.fromObject(obj)).finish());
}

interface PbObject {
  type: number;
  dialRequest?: { protocol: string; address: string; random: string };
  dialResponse?: { error: string; connectID: string; random: string };
  data?: { connectID: string; error: string; data: Uint8Array };
  closeRequest?: { connectID: string };
  closeResponse?: { error: string; connectID: string };
  closeDial?: { random: string };
  drain?: object;
}

export function decodeWithProtobufjs(bytes: Uint8Array): Packet {
  const o = PbPacket.toObject(PbPacket.decode(bytes), { longs: String, defaults: true, bytes: Buffer }) as PbObject;
  const type = typeName[o.type];
  const b = (s: string | undefined) => BigInt(s ?? "0");
  switch (type) {
    case "DIAL_REQ": return { type, protocol: o.dialRequest?.protocol ?? "", address: o.dialRequest?.address ?? "", random: b(o.dialRequest?.random) };
    case "DIAL_RSP": return { type, error: o.dialResponse?.error ?? "", connectID: b(o.dialResponse?.connectID), random: b(o.dialResponse?.random) };
    case "DATA": return { type, connectID: b(o.data?.connectID), error: o.data?.error ?? "", data: new Uint8Array(o.data?.data ?? []) };
    case "CLOSE_REQ": return { type, connectID: b(o.closeRequest?.connectID) };
    case "CLOSE_RSP": return { type, error: o.closeResponse?.error ?? "", connectID: b(o.closeResponse?.connectID) };
    case "DIAL_CLS": return { type, random: b(o.closeDial?.random) };
    case "DRAIN": return { type };
    default: return { type: "UNKNOWN", typeValue: o.type };
  }
}
