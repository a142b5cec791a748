// gRPC status codes (grpc/grpc doc/statuscodes.md) and the grpc-message encoding of the gRPC
// over HTTP/2 spec ("Responses"): UTF-8, then every byte outside 0x20..0x7E and '%' itself
// percent-encoded as %XX. Decoders must not fail on a malformed value: keep it as it came.
import { TunnelError, type TunnelErrorCode } from "../protocol/tunnel-error.js";
import type { Metadata } from "./metadata.js";

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const names = new Map<number, string>(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));
export const grpcStatusName = (code: number): string => names.get(code) ?? `CODE_${code}`;

export function percentEncodeGrpcMessage(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export function percentDecodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      bytes.push(...Buffer.from(value[i]!, "utf8")); // not spec-conforming input; keep it readable
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

// HTTP status → gRPC status when a response carries no grpc-status
// (grpc/grpc doc/http-grpc-status-mapping.md).
export function grpcStatusFromHttpStatus(httpStatus: number): GrpcStatusCode {
  switch (httpStatus) {
    case 400: return GrpcStatus.INTERNAL;
    case 401: return GrpcStatus.UNAUTHENTICATED;
    case 403: return GrpcStatus.PERMISSION_DENIED;
    case 404: return GrpcStatus.UNIMPLEMENTED;
    case 429: case 502: case 503: case 504: return GrpcStatus.UNAVAILABLE;
    default: return GrpcStatus.UNKNOWN;
  }
}

// grpc-go's codes.Code.String(), indexed by code: the spelling of upstream's `code` labels.
const goCodeNames = [
  "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied",
  "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
  "Unauthenticated",
];

const receiveStatuses: Partial<Record<TunnelErrorCode, GrpcStatusCode>> = {
  CANCELLED: GrpcStatus.CANCELLED,
  PROTOCOL: GrpcStatus.INTERNAL,
  MESSAGE_TOO_LARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
};

/**
 * The code upstream's stream_errors_total counts for a stream that ended with `err`, spelled as
 * grpc-go spells it ("Canceled", "Unavailable"), or null when the stream just ended or this side
 * ended it (a shutdown, a drain): upstream counts receive errors other than EOF.
 */
export function streamErrorCodeName(err: Error | undefined): string | null {
  if (err === undefined) return null;
  let code: number | undefined;
  if (err instanceof GrpcStatusError) code = err.grpcStatus;
  else if (err instanceof TunnelError) code = receiveStatuses[err.code];
  else code = GrpcStatus.UNAVAILABLE; // the transport failed under the stream (a reset, a broken pipe)
  return code === undefined ? null : goCodeNames[code] ?? `Code(${code})`;
}

const tunnelCodes: Partial<Record<number, TunnelErrorCode>> = {
  [GrpcStatus.CANCELLED]: "CANCELLED",
  [GrpcStatus.UNAUTHENTICATED]: "UNAUTHENTICATED",
  [GrpcStatus.PERMISSION_DENIED]: "PERMISSION_DENIED",
  [GrpcStatus.RESOURCE_EXHAUSTED]: "LIMIT",
  [GrpcStatus.UNAVAILABLE]: "CLOSED",
};

/**
 * A call that ended with a non-OK gRPC status, as a TunnelError so callers handle one error
 * class: `code` is the closest tunnel code (PROTOCOL when none fits), `grpcStatus` the exact one.
 */
export class GrpcStatusError extends TunnelError {
  readonly grpcStatus: number;
  readonly grpcMessage: string;
  readonly metadata: Metadata;

  constructor(grpcStatus: number, grpcMessage: string, metadata: Metadata = new Map(), options?: { cause?: unknown }) {
    super(tunnelCodes[grpcStatus] ?? "PROTOCOL", `grpc status ${grpcStatus} ${grpcStatusName(grpcStatus)}: ${grpcMessage}`, options);
    this.grpcStatus = grpcStatus;
    this.grpcMessage = grpcMessage;
    this.metadata = metadata;
  }
}
