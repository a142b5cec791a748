// The Konnectivity Packet (proto/konnectivity.proto) as a tagged union.
// int64 fields are bigint: dial ids are rand.Int63() upstream and do not fit a number.

export const PacketType = {
  DIAL_REQ: 0,
  DIAL_RSP: 1,
  CLOSE_REQ: 2,
  CLOSE_RSP: 3,
  DATA: 4,
  DIAL_CLS: 5,
  DRAIN: 6,
  // nodetunnel extension, sent only to a peer that offered it (docs/protocol.md).
  WINDOW_UPDATE: 100,
} as const;
export type PacketTypeName = keyof typeof PacketType;

export interface DialRequest { readonly type: "DIAL_REQ"; readonly protocol: string; readonly address: string; readonly random: bigint }
export interface DialResponse { readonly type: "DIAL_RSP"; readonly error: string; readonly connectID: bigint; readonly random: bigint }
export interface CloseRequest { readonly type: "CLOSE_REQ"; readonly connectID: bigint }
export interface CloseResponse { readonly type: "CLOSE_RSP"; readonly error: string; readonly connectID: bigint }
export interface DataPacket { readonly type: "DATA"; readonly connectID: bigint; readonly error: string; readonly data: Uint8Array }
export interface CloseDial { readonly type: "DIAL_CLS"; readonly random: bigint }
export interface Drain { readonly type: "DRAIN" }
/** nodetunnel extension: the receiver of a connection's DATA grants `bytes` more credit to its sender. */
export interface WindowUpdate { readonly type: "WINDOW_UPDATE"; readonly connectID: bigint; readonly bytes: number }
/** A packet type this build does not know; receivers log and ignore it (as upstream does). */
export interface UnknownPacket { readonly type: "UNKNOWN"; readonly typeValue: number }

export type Packet =
  | DialRequest | DialResponse | CloseRequest | CloseResponse | DataPacket | CloseDial | Drain | WindowUpdate | UnknownPacket;

export type PacketOf<T extends Packet["type"]> = Extract<Packet, { type: T }>;

// Every packet type once; the record's keys make the compiler reject a type left out or misspelt.
const packetTypeSet: Record<Packet["type"], true> = {
  DIAL_REQ: true, DIAL_RSP: true, CLOSE_REQ: true, CLOSE_RSP: true, DATA: true, DIAL_CLS: true, DRAIN: true, WINDOW_UPDATE: true, UNKNOWN: true,
};
/** All packet types, e.g. to label metrics. */
export const packetTypes = Object.keys(packetTypeSet) as ReadonlyArray<Packet["type"]>;

export const dialRequest = (address: string, random: bigint, protocol = "tcp"): DialRequest =>
  ({ type: "DIAL_REQ", protocol, address, random });
export const dialResponse = (random: bigint, connectID: bigint, error = ""): DialResponse =>
  ({ type: "DIAL_RSP", error, connectID, random });
export const closeRequest = (connectID: bigint): CloseRequest => ({ type: "CLOSE_REQ", connectID });
export const closeResponse = (connectID: bigint, error = ""): CloseResponse => ({ type: "CLOSE_RSP", error, connectID });
export const dataPacket = (connectID: bigint, data: Uint8Array, error = ""): DataPacket => ({ type: "DATA", connectID, error, data });
export const closeDial = (random: bigint): CloseDial => ({ type: "DIAL_CLS", random });
export const drain = (): Drain => ({ type: "DRAIN" });
export const windowUpdate = (connectID: bigint, bytes: number): WindowUpdate => ({ type: "WINDOW_UPDATE", connectID, bytes });

/** What a packet tracer logs: the type and ids, never the payload. */
export function packetFields(p: Packet): Record<string, unknown> {
  const fields: Record<string, unknown> = { type: p.type };
  if ("connectID" in p) fields.connectID = String(p.connectID);
  if ("random" in p) fields.dialID = String(p.random);
  if (p.type === "DATA") fields.bytes = p.data.length;
  return fields;
}
