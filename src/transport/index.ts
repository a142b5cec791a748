// gRPC over HTTP/2 (node:http2, or our own server side for the frontend): the transport the tunnel runs on (DESIGN.md, konnectivity.md §1.2, §1.7).
export { encodeGrpcMessage, fillGrpcFrameHeader, GrpcMessageReader, grpcFrameHeaderBytes } from "./grpc-frame.js";
export {
  GrpcStatus, GrpcStatusError, grpcStatusName, grpcStatusFromHttpStatus, percentDecodeGrpcMessage, percentEncodeGrpcMessage, streamErrorCodeName,
  type GrpcStatusCode,
} from "./grpc-status.js";
export {
  decodeBinaryMetadata, metadataFromHeaders, metadataToHeaders, metadataValue, type Metadata, type MetadataInit, type MetadataValue,
} from "./metadata.js";
export {
  http2Implementations, grpcTransportDefaults, resolveGrpcClientOptions, resolveGrpcServerOptions,
  type GrpcClientOptions, type Http2Implementation, type GrpcServerOptions, type GrpcServerTlsOptions, type TlsMaterial,
} from "./grpc-options.js";
export { GrpcServer, type GrpcHandler, type GrpcListenTarget } from "./grpc-server.js";
export type { GrpcPeer, GrpcServerCall, ServerCallEvent } from "./grpc-server-call.js";
export type { Listener } from "./slot-emitter.js";
export { GrpcClient, type GrpcClientTarget, type GrpcClientTlsOptions } from "./grpc-client.js";
export type { GrpcCallStatus, GrpcClientCall } from "./grpc-client-call.js";
export { createPki, type IssueOptions, type PemPair, type Pki } from "./pki-lazy.js";
export { bindWithMode, removeStaleSocket } from "./unix-socket.js";
export { defaultTlsPolicy, tlsCipherOrder, tlsPolicyFromGoNames, type TlsPolicy } from "./tls-suites.js";
export { checkCertificatePem } from "./certificate-pem.js";
export { connectThroughProxy, proxyFor, proxyPort, proxySettingsFromEnv, redactedProxy, type ProxySettings } from "./http-proxy.js";
