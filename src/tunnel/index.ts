export { Deque } from "./deque.js";
export { SocketEndpoint, type Endpoint, type EndpointHandlers } from "./endpoint.js";
export { defaultFlowOptions, type FlowOptions } from "./flow-options.js";
export { MemoryBudget, type Pausable } from "./memory-budget.js";
export { PauseHolds } from "./pause-holds.js";
export { GrpcPacketChannel, countingSends, createChannelPair, dropPooledFrames, receivedDataFrame, type CallEnds, type ChannelHandlers, type MessageCall, type PacketChannel } from "./packet-channel.js";
export { OutboundQueue, SendScheduler } from "./send-scheduler.js";
export {
  TunnelConnection, type ConnectionCounters, type ConnectionSide, type FinishReason, type TunnelConnectionOptions,
} from "./tunnel-connection.js";
export { dialThroughProxy, type ProxyDialOptions } from "./proxy-client.js";
export { PacketTally, Tally, collectPackets, collectTallies, type LabelledCounter } from "./packet-tally.js";
