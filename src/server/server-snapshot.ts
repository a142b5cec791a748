// What the admin dashboard shows (issue 7 item 3), as plain JSON-able data: taken from a
// ProxyServer in one synchronous pass, so the numbers are consistent with each other. Ids are
// strings (connectIDs are int64 on the wire) and times are epoch milliseconds.
import type { AgentIdentifiers } from "../protocol/index.js";
import type { PendingDialInfo, ProxyServer, RecentFailure } from "./proxy-server.js";

export interface AgentSnapshot {
  readonly agentId: string;
  readonly identifiers: AgentIdentifiers;
  readonly peerAddress: string;
  readonly authenticatedAs: string;
  readonly connectedAt: number;
  readonly connections: number;
  readonly pendingDials: number;
  readonly bytesToAgent: number;
  readonly bytesFromAgent: number;
  readonly isDraining: boolean;
  readonly credit: boolean;
}

export interface ConnectionSnapshot {
  readonly agentId: string;
  readonly connectID: string;
  readonly startedAt: number;
  readonly ageMs: number;
  readonly bytesToAgent: number;
  readonly bytesFromAgent: number;
  /** Waiting to go to the agent, and written to the frontend but not yet flushed. */
  readonly queuedBytes: number;
  readonly bufferedBytes: number;
  /** Its reader fell past the slow-consumer cap (an agent without credit): the agent's stream is paused for it. */
  readonly pausesAgentStream: boolean;
}

export interface ServerSnapshot {
  readonly takenAt: number;
  readonly serverId: string;
  readonly serverCount: number;
  readonly isReady: boolean;
  readonly counts: {
    readonly agents: number;
    readonly agentStreams: number;
    readonly connections: number;
    readonly pendingDials: number;
    readonly recentFailures: number;
  };
  readonly agents: readonly AgentSnapshot[];
  readonly connections: readonly ConnectionSnapshot[];
  readonly pendingDials: readonly PendingDialInfo[];
  /** Newest first, with the diagnosis the tunnel gave the frontend. */
  readonly recentFailures: readonly RecentFailure[];
  readonly memory: { readonly usedBytes: number; readonly limitBytes: number; readonly isPaused: boolean };
}

export function serverSnapshot(proxy: ProxyServer, now: number = Date.now()): ServerSnapshot {
  const streams = proxy.registry.all();
  const agents: AgentSnapshot[] = [];
  const connections: ConnectionSnapshot[] = [];
  for (const a of streams) {
    agents.push({
      agentId: a.agentId,
      identifiers: a.identifiers,
      peerAddress: a.peerAddress,
      authenticatedAs: a.authenticatedAs,
      connectedAt: a.connectedAt,
      connections: a.connections.size,
      pendingDials: a.pendingDials.size,
      bytesToAgent: a.bytesToAgent,
      bytesFromAgent: a.bytesFromAgent,
      isDraining: a.isDraining,
      credit: a.credit,
    });
    for (const c of a.connections.values()) {
      connections.push({
        agentId: a.agentId,
        connectID: String(c.connectID),
        startedAt: c.startedAt,
        ageMs: Math.max(0, now - c.startedAt),
        bytesToAgent: c.bytesToPeer,
        bytesFromAgent: c.bytesFromPeer,
        queuedBytes: c.queuedBytes,
        bufferedBytes: c.bufferedBytes,
        pausesAgentStream: c.isHoldingStream,
      });
    }
  }
  const pendingDials = proxy.pendingDials();
  const recentFailures = [...proxy.recentFailures()];
  return {
    takenAt: now,
    serverId: proxy.options.serverId,
    serverCount: proxy.options.serverCount,
    isReady: proxy.isReady,
    counts: {
      agents: proxy.registry.agentCount,
      agentStreams: streams.length,
      connections: connections.length,
      pendingDials: pendingDials.length,
      recentFailures: recentFailures.length,
    },
    agents,
    connections,
    pendingDials,
    recentFailures,
    memory: { usedBytes: proxy.budget.usedBytes, limitBytes: proxy.budget.limitBytes, isPaused: proxy.budget.isPaused },
  };
}
