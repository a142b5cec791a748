import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeBinaryMetadata, metadataFromHeaders, metadataToHeaders, metadataValue } from "./metadata.js";
import { isTunnelError } from "../protocol/tunnel-error.js";

test("pseudo-headers and reserved gRPC/HTTP headers are not metadata; user headers are", () => {
  const md = metadataFromHeaders({
    ":path": "/AgentService/Connect", ":method": "POST", "content-type": "application/grpc", te: "trailers",
    "grpc-timeout": "1S", "user-agent": "grpc-go/1.60", agentid: "node-1", agentidentifiers: "host=node-1",
  });
  assert.deepEqual([...md.keys()].sort(), ["agentid", "agentidentifiers", "user-agent"]);
  assert.equal(metadataValue(md, "agentID"), "node-1");
  assert.equal(metadataValue(md, "missing"), undefined);
});

test("raw headers keep repeated keys as separate values", () => {
  const md = metadataFromHeaders({}, [":status", "200", "X-Tag", "a", "x-tag", "b, c", "serverid", "s1"]);
  assert.deepEqual(md.get("x-tag"), ["a", "b, c"]);
  assert.deepEqual(md.get("serverid"), ["s1"]);
});

test("folded -bin headers are split back into their values", () => {
  const md = metadataFromHeaders({ "trace-bin": "AQI, AwQ=" });
  assert.deepEqual(md.get("trace-bin")!.map((v) => [...decodeBinaryMetadata(v)]), [[1, 2], [3, 4]]);
});

test("metadataToHeaders lower-cases keys, keeps repeats and base64-encodes binary values unpadded", () => {
  const headers = metadataToHeaders({ serverID: "s1", serverCount: "3", tag: ["a", "b"], "blob-bin": Uint8Array.of(0xff, 0x00) });
  assert.deepEqual(headers, { serverid: "s1", servercount: "3", tag: ["a", "b"], "blob-bin": "/wA" });
  assert.deepEqual(metadataToHeaders(new Map([["k", ["v"]]])), { k: "v" });
  assert.deepEqual(metadataToHeaders(undefined), {});
});

test("keys and values the wire cannot carry are refused with INVALID_OPTION", () => {
  assert.throws(() => metadataToHeaders({ "bad key": "x" }), (e) => isTunnelError(e, "INVALID_OPTION"));
  assert.throws(() => metadataToHeaders({ "grpc-status": "0" }), (e) => isTunnelError(e, "INVALID_OPTION") && /reserved/.test(e.message));
  assert.throws(() => metadataToHeaders({ ":path": "/x" }), (e) => isTunnelError(e, "INVALID_OPTION"));
  assert.throws(() => metadataToHeaders({ k: "line\nbreak" }), (e) => isTunnelError(e, "INVALID_OPTION"));
  assert.throws(() => metadataToHeaders({ k: "ü" }), (e) => isTunnelError(e, "INVALID_OPTION"));
});
