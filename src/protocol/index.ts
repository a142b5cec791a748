export * from "./packet.js";
export { dataPacketLength, decodePacket, encodePacket, type DecodeOptions } from "./packet-codec.js";
export { TunnelError, isTunnelError, tunnelErrorCodes, type TunnelErrorCode } from "./tunnel-error.js";
export { describeDialError, mechanismOfText, type NetMechanism, type DialErrorDescription } from "./net-error.js";
export * from "./agent-identifiers.js";
export * from "./metadata-names.js";
