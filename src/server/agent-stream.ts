// One agent's stream to this server (/AgentService/Connect): everything routed to that agent is
// multiplexed on it, and everything it owns (pending dials, connections) dies with it.
import type { Logger } from "pino";
import type { AgentIdentifiers, Packet } from "../protocol/index.js";
import { SendScheduler, type FlowOptions, type PacketChannel, type TunnelConnection } from "../tunnel/index.js";
import type { RegisteredAgent } from "./agent-registry.js";

export interface AgentStreamInfo {
  readonly agentId: string;
  readonly identifiers: AgentIdentifiers;
  /** Both sides offered the credit flow-control extension. */
  readonly credit: boolean;
  readonly peerAddress: string;
  /** How the agent proved who it is: "mtls:<CN>", "token:<user>", or "none". */
  readonly authenticatedAs: string;
}

export class AgentStream implements RegisteredAgent {
  readonly agentId: string;
  readonly identifiers: AgentIdentifiers;
  readonly credit: boolean;
  readonly peerAddress: string;
  readonly authenticatedAs: string;
  readonly connectedAt = Date.now();
  readonly scheduler: SendScheduler;
  readonly connections = new Map<bigint, TunnelConnection>();
  readonly pendingDials = new Set<bigint>();
  isDraining = false;
  isClosed = false;
  bytesToAgent = 0;
  bytesFromAgent = 0;

  constructor(readonly channel: PacketChannel, info: AgentStreamInfo, flow: Pick<FlowOptions, "chunkBytes" | "inFlightBytes">, readonly log: Logger) {
    this.agentId = info.agentId;
    this.identifiers = info.identifiers;
    this.credit = info.credit;
    this.peerAddress = info.peerAddress;
    this.authenticatedAs = info.authenticatedAs;
    this.scheduler = new SendScheduler(channel, flow.chunkBytes, flow.inFlightBytes);
  }

  send(packet: Packet): void {
    this.scheduler.sendControl(packet);
  }
}
