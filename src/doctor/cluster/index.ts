// doctor cluster: the server's agents and a dial per node through the tunnel (doctor-cli.md `doctor cluster`).
export { checkCluster } from "./check-cluster.js";
export type { ClusterInputs, ClusterNode } from "./check-cluster.js";
export { classifyConnectResponse, dialOutcomes, dialThroughConnect } from "./dial-through-connect.js";
export type { DialOutcome, DialResult, FrontendAddress } from "./dial-through-connect.js";
export { readServerAgents, readyBackendCount } from "./server-agents.js";
export type { Endpoint, ServerAgents } from "./server-agents.js";
