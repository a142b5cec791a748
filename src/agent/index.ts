export { AgentMetrics } from "./agent-metrics.js";
export { AgentSession, type AgentSessionOptions } from "./agent-session.js";
export { DestinationPolicy } from "./destination-policy.js";
export { DialError, dialDestination } from "./dial-destination.js";
