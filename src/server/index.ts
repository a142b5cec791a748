export { AgentRegistry, type RegisteredAgent } from "./agent-registry.js";
export { AgentStream, type AgentStreamInfo } from "./agent-stream.js";
export { serveGrpcFrontend } from "./grpc-frontend.js";
export { createHttpConnectFrontend, failureResponse, statusForAgentError } from "./http-connect-frontend.js";
export {
  ProxyServer, randomInt63, type DialFailure, type DialHandle, type DialRequester, type PendingDialInfo, type RecentFailure, type ServerTracers,
} from "./proxy-server.js";
export { ServerMetrics, type DialFailureReason } from "./server-metrics.js";
export {
  proxyStrategies, resolveServerOptions, type FrontendConfig, type FrontendMode, type ListenTarget, type ProxyStrategy,
  type ServerOptions, type ServerOptionsInput, type TlsFiles,
} from "./server-options.js";
export { NodetunnelServer, type BoundFrontend, type ServerAddresses, type ServerDeps } from "./nodetunnel-server.js";
export { healthRoutes, text, type RouteHandler } from "./health-endpoints.js";
export { serverSnapshot, type AgentSnapshot, type ConnectionSnapshot, type ServerSnapshot } from "./server-snapshot.js";
