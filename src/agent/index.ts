export { AgentMetrics } from "./agent-metrics.js";
export { AgentSession, type AgentSessionOptions, type AgentTracers } from "./agent-session.js";
export { DestinationPolicy } from "./destination-policy.js";
export { DialCancel, DialError, dialDestination } from "./dial-destination.js";
export { resolveAgentOptions, type AgentOptions, type AgentOptionsInput, type ServerCountSource, type ServerTarget } from "./agent-options.js";
export { NodetunnelAgent, backoffMs, type AgentDeps, type AgentStatus } from "./nodetunnel-agent.js";
export { connectToServer, type ServerConnection } from "./server-connection.js";
