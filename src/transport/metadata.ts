// gRPC metadata ⇄ HTTP/2 header fields (gRPC over HTTP/2, "Custom-Metadata"). Keys are lower-case
// on the wire (konnectivity.md §1.3: grpc-go lower-cases them; lookups are case-insensitive);
// a key may repeat; keys ending in "-bin" carry base64 (emitted unpadded, read either way).
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import { TunnelError } from "../protocol/tunnel-error.js";

export type Metadata = ReadonlyMap<string, readonly string[]>;
export type MetadataValue = string | Uint8Array;
export type MetadataInit = Record<string, MetadataValue | readonly MetadataValue[]> | Metadata;

// Headers that belong to gRPC or to HTTP itself, not to the application.
const reservedHeaders = new Set([
  "content-type", "te", "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
  "content-length", "grpc-status", "grpc-message", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-message-type",
]);

const isReserved = (key: string): boolean => key.startsWith(":") || reservedHeaders.has(key);
const validKey = /^[0-9a-z_.-]+$/;
const validAsciiValue = /^[\x20-\x7e]*$/;

/**
 * Request or response headers (or trailers) as metadata. `rawHeaders` (the flat name/value list
 * node:http2 passes with each header event) keeps repeated keys apart; without it a repeated
 * key arrives joined by ", " as node folds it, and is split back for "-bin" keys only.
 */
export function metadataFromHeaders(headers: IncomingHttpHeaders, rawHeaders?: readonly string[]): Metadata {
  const md = new Map<string, string[]>();
  const add = (name: string, value: string) => {
    const key = name.toLowerCase();
    if (isReserved(key)) return;
    const values = md.get(key);
    if (values) values.push(value);
    else md.set(key, [value]);
  };
  if (rawHeaders) {
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) add(rawHeaders[i]!, rawHeaders[i + 1]!);
    return md;
  }
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [String(value)]) {
      if (name.endsWith("-bin")) for (const part of v.split(",")) add(name, part.trim());
      else add(name, v);
    }
  }
  return md;
}

/** Header fields for `md`; throws INVALID_OPTION for a key or value the wire cannot carry. */
export function metadataToHeaders(md: MetadataInit | undefined): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  if (md === undefined) return headers;
  const entries = md instanceof Map ? [...md.entries()] : Object.entries(md);
  for (const [name, value] of entries) {
    const key = name.toLowerCase();
    if (!validKey.test(key)) throw new TunnelError("INVALID_OPTION", `metadata key ${JSON.stringify(name)} is not a valid gRPC metadata key`);
    if (isReserved(key)) throw new TunnelError("INVALID_OPTION", `metadata key ${JSON.stringify(name)} is reserved by gRPC/HTTP`);
    const isBinary = key.endsWith("-bin");
    const values = (Array.isArray(value) ? value : [value]) as MetadataValue[];
    const encoded = values.map((v) => {
      if (isBinary) return typeof v === "string" ? v : Buffer.from(v).toString("base64").replace(/=+$/, "");
      if (typeof v !== "string" || !validAsciiValue.test(v)) {
        throw new TunnelError("INVALID_OPTION", `metadata ${key}: a non-binary value must be printable ASCII (use a "-bin" key for bytes)`);
      }
      return v;
    });
    const previous = headers[key];
    const all = previous === undefined ? encoded : [...(previous as string[]), ...encoded];
    headers[key] = all.length === 1 ? all[0]! : all;
  }
  return headers;
}

/** The single value of `key`, or undefined when absent; konnectivity.md §1.3 wants exactly one. */
export const metadataValue = (md: Metadata, key: string): string | undefined => md.get(key.toLowerCase())?.[0];

export const decodeBinaryMetadata = (value: string): Buffer => Buffer.from(value, "base64");
