// doctor node: the live checks of one node in one report (doctor-cli.md `doctor node`).
export { checkNode, worstStatus } from "./check-node.js";
export type { AgentHealth, Collected, NodeOptions, NodeState } from "./check-node.js";
export { collectNodeState, defaultRouteAddress, getReadyz, readCommand } from "./collect-node-state.js";
export type { CollectOptions } from "./collect-node-state.js";
export { listensOn, parseProcNetTcp } from "./parse-proc-net-tcp.js";
export type { Listener } from "./parse-proc-net-tcp.js";
