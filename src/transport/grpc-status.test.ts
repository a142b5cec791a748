import { describe, it, test } from "node:test";
import assert from "node:assert/strict";
import {
  GrpcStatus, GrpcStatusError, grpcStatusFromHttpStatus, grpcStatusName, percentDecodeGrpcMessage, percentEncodeGrpcMessage,
  streamErrorCodeName,
} from "./grpc-status.js";
import { isTunnelError, TunnelError } from "../protocol/tunnel-error.js";

test("the status codes are gRPC's numbers", () => {
  assert.equal(GrpcStatus.OK, 0);
  assert.equal(GrpcStatus.RESOURCE_EXHAUSTED, 8);
  assert.equal(GrpcStatus.UNIMPLEMENTED, 12);
  assert.equal(GrpcStatus.UNAVAILABLE, 14);
  assert.equal(GrpcStatus.UNAUTHENTICATED, 16);
  assert.equal(Object.keys(GrpcStatus).length, 17);
  assert.equal(grpcStatusName(16), "UNAUTHENTICATED");
  assert.equal(grpcStatusName(99), "CODE_99");
});

test("grpc-message is percent-encoded outside printable ASCII and for '%'", () => {
  assert.equal(percentEncodeGrpcMessage("plain text ok"), "plain text ok");
  assert.equal(percentEncodeGrpcMessage("100% done"), "100%25 done");
  assert.equal(percentEncodeGrpcMessage("a\nb\tc"), "a%0Ab%09c");
  assert.equal(percentEncodeGrpcMessage("ünï ✓"), "%C3%BCn%C3%AF %E2%9C%93");
});

test("decoding reverses encoding and keeps malformed escapes as they came", () => {
  for (const text of ["", "x", "100% ✓ ünï\r\n", "%", "%%41", "tab\there"]) {
    assert.equal(percentDecodeGrpcMessage(percentEncodeGrpcMessage(text)), text);
  }
  assert.equal(percentDecodeGrpcMessage("bad %zz and %4"), "bad %zz and %4");
  assert.equal(percentDecodeGrpcMessage("%c3%bc"), "ü");
});

test("HTTP statuses without grpc-status map as the gRPC spec says", () => {
  assert.equal(grpcStatusFromHttpStatus(400), GrpcStatus.INTERNAL);
  assert.equal(grpcStatusFromHttpStatus(401), GrpcStatus.UNAUTHENTICATED);
  assert.equal(grpcStatusFromHttpStatus(404), GrpcStatus.UNIMPLEMENTED);
  assert.equal(grpcStatusFromHttpStatus(503), GrpcStatus.UNAVAILABLE);
  assert.equal(grpcStatusFromHttpStatus(415), GrpcStatus.UNKNOWN);
});

test("GrpcStatusError is a TunnelError with the nearest code and the exact status", () => {
  const e = new GrpcStatusError(16, "token rejected");
  assert.ok(isTunnelError(e, "UNAUTHENTICATED"));
  assert.equal(e.grpcStatus, 16);
  assert.equal(e.grpcMessage, "token rejected");
  assert.match(e.message, /16 UNAUTHENTICATED: token rejected/);
  assert.ok(isTunnelError(new GrpcStatusError(12, "x"), "PROTOCOL"));
});

describe("streamErrorCodeName (the code label of upstream's stream_errors_total)", () => {
  it("spells the status as grpc-go does, and counts nothing for an ordinary end or our own close", () => {
    assert.equal(streamErrorCodeName(undefined), null);
    assert.equal(streamErrorCodeName(new TunnelError("CLOSED", "server shut down")), null);
    assert.equal(streamErrorCodeName(new TunnelError("DRAINING", "draining")), null);
    assert.equal(streamErrorCodeName(new TunnelError("CANCELLED", "RST_STREAM")), "Canceled");
    assert.equal(streamErrorCodeName(new TunnelError("PROTOCOL", "bad frame")), "Internal");
    assert.equal(streamErrorCodeName(new TunnelError("MESSAGE_TOO_LARGE", "5 MiB")), "ResourceExhausted");
    assert.equal(streamErrorCodeName(new GrpcStatusError(GrpcStatus.UNAVAILABLE, "connection lost")), "Unavailable");
    assert.equal(streamErrorCodeName(new GrpcStatusError(GrpcStatus.UNAUTHENTICATED, "no token")), "Unauthenticated");
    assert.equal(streamErrorCodeName(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })), "Unavailable");
  });
});
