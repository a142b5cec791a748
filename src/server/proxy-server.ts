// The proxy server's core, without listeners: agents attach their packet channels, frontends ask
// for dials, and this routes packets between them (shared/spec/konnectivity.md §1.5). Everything
// here runs on one event loop, so a DIAL_RSP is handled (and a frontend told "established")
// before any DATA behind it on the same stream: DATA can never overtake DIAL_RSP.
import { randomFillSync } from "node:crypto";
import type { Logger } from "pino";
import {
  TunnelError, closeDial, closeRequest, dialRequest, packetFields, type Packet, type PacketOf,
} from "../protocol/index.js";
import { MemoryBudget, PauseHolds, TunnelConnection, countingSends, type ConnectionSide, type Endpoint, type PacketChannel, type TunnelConnectionOptions } from "../tunnel/index.js";
import { AgentRegistry } from "./agent-registry.js";
import { AgentStream, type AgentStreamInfo } from "./agent-stream.js";
import { DialRateLimiter } from "./dial-rate-limiter.js";
import {
  explainAgentDialError, explainAgentGone, explainDialTimeout, explainNoAgent, type DialFailureContext,
} from "./explain-dial-failure.js";
import type { DialFailureReason, ServerMetrics } from "./server-metrics.js";
import type { ServerOptions } from "./server-options.js";

export interface DialFailure {
  readonly reason: DialFailureReason;
  /** The upstream-compatible error text ("No agent available", the agent's Go dial error, ...). */
  readonly error: string;
  /** What it means and what to do next. */
  readonly explanation: string;
  /** The agent abandoned the dial with DIAL_CLS, which a gRPC frontend receives as such (upstream forwards it). */
  readonly dialClosedByAgent?: boolean;
}

/** The side of a frontend that waits for a dial. Exactly one of its methods is called, once. */
export interface DialRequester {
  /** The agent connected: answer the frontend and return the endpoint to bind, or null if it went away. */
  established(connectID: bigint, agent: AgentStream): Endpoint | null;
  failed(failure: DialFailure): void;
}

export interface DialHandle {
  /** The frontend gave up before the dial completed (sends DIAL_CLS to the agent). */
  cancel(): void;
}

interface PendingDial {
  readonly random: bigint;
  readonly address: string;
  readonly requester: DialRequester;
  readonly agent: AgentStream;
  readonly startedAt: number;
  /** Undefined with --backend-dial-timeout=0 (upstream's default: wait for the agent's answer). */
  readonly timer: NodeJS.Timeout | undefined;
}

/** A dial waiting for its agent's DIAL_RSP, as the dashboard shows it. */
export interface PendingDialInfo {
  readonly address: string;
  readonly agentId: string;
  readonly waitingMs: number;
}

/**
 * Named tracers (NODETUNNEL_TRACE, made by the CLI): loggers that write at debug whatever the
 * main level is. Undefined when off, so the per-packet path costs one check.
 */
export interface ServerTracers {
  readonly packets?: Logger;
  readonly dials?: Logger;
}

export interface RecentFailure {
  readonly at: number;
  readonly address: string;
  readonly agentId: string | null;
  readonly reason: DialFailureReason;
  readonly error: string;
  readonly explanation: string;
}

const RECENT_FAILURES = 50;

export class ProxyServer {
  readonly registry: AgentRegistry<AgentStream>;
  readonly budget: MemoryBudget;
  private readonly pending = new Map<bigint, PendingDial>();
  private readonly failures: RecentFailure[] = [];
  private established = 0;
  private readonly dialLimiter: DialRateLimiter | undefined;
  private closed = false;
  private readonly serverSide: ConnectionSide;
  /** Per agent stream, what its connections report to: one set for all of them, not one each. */
  private readonly connectionHooks = new WeakMap<AgentStream, Pick<TunnelConnectionOptions, "counters" | "onFinished" | "holdStream">>();
  private readonly agentHandlers: { [T in Packet["type"]]: (agent: AgentStream, packet: PacketOf<T>) => void };

  /**
   * Hands a failed dial to its frontend; with --explain-dial-errors=false without the explanation,
   * so the frontend sends the agent's text (or upstream's own) alone, as upstream. The log and the
   * dashboard's recent failures keep it either way.
   */
  private tell(requester: DialRequester, failure: DialFailure): void {
    requester.failed(this.options.explainDialErrors ? failure : { ...failure, explanation: "" });
  }

  constructor(
    readonly options: ServerOptions,
    private readonly log: Logger,
    private readonly metrics: ServerMetrics,
    /** host:port agents dial, for explanations (known once the listener is bound). */
    private readonly agentEndpointOf: () => string,
    private readonly tracers: ServerTracers = {},
  ) {
    this.registry = new AgentRegistry(options.proxyStrategies);
    this.dialLimiter = options.maxDialsPerSecond > 0 ? new DialRateLimiter(options.maxDialsPerSecond, options.dialBurst) : undefined;
    this.budget = new MemoryBudget(options.flow.memoryBudgetBytes);
    this.budget.onChange((paused, used) => {
      if (paused) {
        this.metrics.memoryBudgetPaused();
        this.log.warn({ usedBytes: used, limitBytes: this.budget.limitBytes }, "memory budget exceeded: pausing reads from agent streams");
      } else this.log.info({ usedBytes: used }, "memory back under budget: resuming agent streams");
    });
    this.budget.onShed((count, freedBytes) =>
      this.log.warn({ connections: count, freedBytes, limitBytes: this.budget.limitBytes }, "memory budget: closed connections whose readers took nothing, so the agent streams can be read again"));
    this.serverSide = {
      localClose: (connectID) => closeRequest(connectID),
      peerCloseReply: () => null,
      awaitPeerCloseMs: options.closeTimeoutMs,
    };
    this.agentHandlers = {
      DIAL_RSP: (a, p) => this.onDialResponse(a, p),
      DATA: (a, p) => this.onData(a, p),
      CLOSE_RSP: (a, p) => this.onCloseResponse(a, p),
      DIAL_CLS: (a, p) => this.onAgentDialClose(a, p),
      DRAIN: (a) => this.onDrain(a),
      WINDOW_UPDATE: (a, p) => (a.credit ? a.connections.get(p.connectID)?.peerCredit(p.bytes) : undefined),
      CLOSE_REQ: (a, p) => this.log.debug({ agentId: a.agentId, connectID: String(p.connectID) }, "ignoring CLOSE_REQ from an agent"),
      DIAL_REQ: (a) => this.log.warn({ agentId: a.agentId }, "ignoring DIAL_REQ from an agent: agents cannot dial through the server"),
      UNKNOWN: (a, p) => this.log.debug({ agentId: a.agentId, typeValue: p.typeValue }, "ignoring a packet of unknown type"),
    };
  }

  get pendingDialCount(): number {
    return this.pending.size;
  }

  get establishedCount(): number {
    return this.established;
  }

  get isReady(): boolean {
    return this.registry.isReady;
  }

  recentFailures(): readonly RecentFailure[] {
    return this.failures;
  }

  pendingDials(): PendingDialInfo[] {
    const now = performance.now();
    return [...this.pending.values()].map((p) => ({ address: p.address, agentId: p.agent.agentId, waitingMs: now - p.startedAt }));
  }

  /** Registers an agent's stream; its response headers have been sent. */
  attachAgent(channel: PacketChannel, info: AgentStreamInfo): AgentStream {
    // Every packet to the agent (DATA leaves through the scheduler, not through agent.send) is counted here.
    // One child logger per agent stream, shared by its connections (a child per connection cost
    // memory for every idle tunnelled connection).
    const log = this.log.child({ agentId: info.agentId });
    const agent = new AgentStream(countingSends(channel, (p) => this.metrics.packet("to_agent", p.type)), info, this.options.flow, log);
    const holds = new PauseHolds(channel);
    this.connectionHooks.set(agent, this.hooksFor(agent, holds));
    const removeBudgetSource = this.budget.addSource(holds.asPausable());
    const tracePackets = this.tracers.packets?.child({ agentId: agent.agentId });
    this.metrics.grpcStreamOpened("Connect", 1);
    channel.start({
      packet: (p) => {
        this.metrics.packet("from_agent", p.type);
        if (tracePackets) tracePackets.debug(packetFields(p), "packet from agent");
        (this.agentHandlers[p.type] as (a: AgentStream, p: Packet) => void)(agent, p);
      },
      drain: () => agent.scheduler.onDrain(),
      close: (err) => {
        removeBudgetSource();
        this.metrics.grpcStreamOpened("Connect", -1);
        this.metrics.streamEnded("from_agent", err);
        this.detachAgent(agent, err);
      },
    });
    if (this.closed) {
      channel.destroy(new TunnelError("CLOSED", "server is shutting down"));
      return agent;
    }
    // One agent id under two credentials is not a reconnect: a second agent took the id (a copied
    // manifest, or an agent claiming another's). destHost still routes each address to the stream
    // that claims it; an operator should know (--identity-binding=strict binds the id).
    const others = this.registry.streamsOf(agent.agentId).filter((s) => s.authenticatedAs !== info.authenticatedAs).map((s) => s.authenticatedAs);
    this.registry.add(agent);
    this.updateBackendMetrics();
    log.info({ identifiers: info.identifiers, peer: info.peerAddress, credit: info.credit, authenticatedAs: info.authenticatedAs }, "agent connected");
    if (others.length > 0) {
      log.warn({ authenticatedAs: info.authenticatedAs, alsoHeldBy: [...new Set(others)] }, "agent id already held by another credential: two agents share it (--identity-binding=strict binds agent ids to credentials)");
    }
    return agent;
  }

  /** Starts a dial. The requester hears back exactly once (possibly before this returns). */
  dial(address: string, requester: DialRequester, random: bigint = randomInt63()): DialHandle | null {
    const startedAt = performance.now();
    const ctx = (): DialFailureContext => ({ address, agentEndpoint: this.agentEndpointOf() });
    const fail = (reason: DialFailureReason, error: string, explanation: string, agentId: string | null) => {
      this.tracers.dials?.debug({ address, agentId, outcome: "failed", reason, ms: performance.now() - startedAt }, "dial end");
      this.recordFailure({ at: Date.now(), address, agentId, reason, error, explanation });
      this.metrics.dialFailed(reason, reason, (performance.now() - startedAt) / 1000);
      this.log.warn({ address, agentId, reason, error }, `dial failed: ${explanation}`);
      this.tell(requester, { reason, error, explanation });
    };
    if (this.closed) {
      fail("limit", "server is shutting down", "retry against another server", null);
      return null;
    }
    const picked = this.registry.pick(address);
    if (!picked) {
      fail("no_agent", "No agent available", explainNoAgent(ctx()), null);
      return null;
    }
    const agent = picked.agent;
    if (this.pending.size >= this.options.maxPendingDials || agent.pendingDials.size >= this.options.maxPendingDialsPerAgent) {
      fail("limit", "too many pending dials", `more than ${this.options.maxPendingDials} dials wait for agents (or ${this.options.maxPendingDialsPerAgent} for agent ${agent.agentId}); retry shortly`, agent.agentId);
      return null;
    }
    if (this.dialLimiter && !this.dialLimiter.tryTake()) {
      fail("limit", "too many dials", `more than ${this.options.maxDialsPerSecond} dials per second (burst ${this.options.dialBurst}) reached this server; retry shortly, or raise --max-dial-rate`, agent.agentId);
      return null;
    }
    // Pending dials count: each may become a connection, and a frontend that opens dials faster
    // than agents answer them would otherwise pass the limit by up to --max-pending-dials.
    if (this.established + this.pending.size >= this.options.maxConnections) {
      fail("limit", "too many open connections", `the server holds its maximum of ${this.options.maxConnections} connections (${this.established} open, ${this.pending.size} being dialled)`, agent.agentId);
      return null;
    }
    if (this.pending.has(random)) random = randomInt63();
    const timer = this.options.dialTimeoutMs === 0 ? undefined : setTimeout(() => {
      const p = this.takePending(random);
      if (!p) return;
      agent.send(closeDial(random));
      this.metrics.dialFailed("backend_dial_timeout", "dial_timeout", (performance.now() - startedAt) / 1000);
      const explanation = explainDialTimeout(this.options.dialTimeoutMs, agent.agentId);
      this.tracers.dials?.debug({ address, agentId: agent.agentId, dialID: String(random), outcome: "failed", reason: "backend_dial_timeout", ms: performance.now() - startedAt }, "dial end");
      this.recordFailure({ at: Date.now(), address, agentId: agent.agentId, reason: "backend_dial_timeout", error: "timed out waiting for backend dial", explanation });
      this.log.warn({ address, agentId: agent.agentId }, `dial timed out: ${explanation}`);
      this.tell(requester, { reason: "backend_dial_timeout", error: "timed out waiting for backend dial", explanation });
    }, this.options.dialTimeoutMs);
    timer?.unref();
    this.pending.set(random, { random, address, requester, agent, startedAt, timer });
    agent.pendingDials.add(random);
    this.metrics.setPendingDials(this.pending.size);
    agent.send(dialRequest(address, random));
    this.log.debug({ address, agentId: agent.agentId, strategy: picked.strategy, dialID: String(random) }, "dial sent to agent");
    this.tracers.dials?.debug({ address, agentId: agent.agentId, strategy: picked.strategy, dialID: String(random) }, "dial start");
    return {
      cancel: () => {
        const p = this.takePending(random);
        if (!p) return;
        this.metrics.dialFailed("frontend_close", "frontend_close", (performance.now() - startedAt) / 1000);
        this.tracers.dials?.debug({ address, agentId: agent.agentId, dialID: String(random), outcome: "cancelled", ms: performance.now() - startedAt }, "dial end");
        agent.send(closeDial(random));
      },
    };
  }

  /** Stops taking work: new dials and agents are refused; agents are left to the caller to close. */
  close(): void {
    this.closed = true;
  }

  /** Fails everything now. */
  destroy(): void {
    this.closed = true;
    for (const agent of this.registry.all()) agent.channel.destroy(new TunnelError("CLOSED", "server shut down"));
  }

  // ---- agent packets ----

  private onDialResponse(agent: AgentStream, p: PacketOf<"DIAL_RSP">): void {
    const pending = this.pending.get(p.random);
    if (!pending || pending.agent !== agent) {
      // The frontend gave up (or never existed): don't leak the agent's connection (#404).
      if (p.connectID !== 0n) agent.send(closeRequest(p.connectID));
      this.metrics.dialFailed("unrecognized_response", "unrecognized_response", 0);
      return;
    }
    this.takePending(p.random);
    const seconds = (performance.now() - pending.startedAt) / 1000;
    this.tracers.dials?.debug(
      { address: pending.address, agentId: agent.agentId, dialID: String(p.random), connectID: String(p.connectID), outcome: p.error === "" ? "established" : "failed", error: p.error || undefined, ms: seconds * 1000 },
      "dial end",
    );
    if (p.error !== "") {
      const explanation = explainAgentDialError(p.error, { address: pending.address, agentEndpoint: this.agentEndpointOf() });
      this.metrics.dialFailed("error_response", "agent_error", seconds);
      this.recordFailure({ at: Date.now(), address: pending.address, agentId: agent.agentId, reason: "error_response", error: p.error, explanation });
      this.log.warn({ address: pending.address, agentId: agent.agentId, error: p.error }, `dial failed at the agent: ${explanation}`);
      this.tell(pending.requester, { reason: "error_response", error: p.error, explanation });
      return;
    }
    if (p.connectID === 0n) {
      // DATA with connection ID 0 is dropped (konnectivity.md §1.2): such a connection could carry nothing.
      this.log.error({ agentId: agent.agentId }, "agent answered a dial with connection ID 0 and no error; refusing the dial");
      this.tell(pending.requester, { reason: "unrecognized_response", error: "agent answered the dial with connection id 0", explanation: "the agent is misbehaving; restart it" });
      return;
    }
    if (agent.connections.has(p.connectID)) {
      this.log.error({ agentId: agent.agentId, connectID: String(p.connectID) }, "agent reused a live connectID; refusing the dial");
      this.tell(pending.requester, { reason: "unrecognized_response", error: "agent reused a connection id", explanation: "the agent is misbehaving; restart it" });
      return;
    }
    const endpoint = pending.requester.established(p.connectID, agent);
    if (endpoint === null) {
      agent.send(closeRequest(p.connectID));
      return;
    }
    this.metrics.dialSucceeded(seconds);
    const conn = new TunnelConnection({
      connectID: p.connectID,
      endpoint,
      scheduler: agent.scheduler,
      flow: this.options.flow,
      credit: agent.credit,
      side: this.serverSide,
      budget: this.budget,
      log: agent.log,
      ...this.connectionHooks.get(agent)!,
    });
    agent.connections.set(p.connectID, conn);
    this.established++;
    this.metrics.setEstablished(this.established);
    conn.start();
  }

  private hooksFor(agent: AgentStream, holds: PauseHolds): Pick<TunnelConnectionOptions, "counters" | "onFinished" | "holdStream"> {
    return {
      holdStream: () => holds.hold(),
      counters: {
        bytesToPeer: (n) => {
          agent.bytesToAgent += n;
          this.metrics.bytesRelayed("to_agent", n);
        },
        bytesFromPeer: (n) => {
          agent.bytesFromAgent += n;
          this.metrics.bytesRelayed("from_agent", n);
        },
        slowConsumer: () => this.metrics.slowConsumer(),
        streamHeld: () => this.metrics.streamHeld(),
        endpointWritten: (seconds) => this.metrics.frontendWritten(seconds),
      },
      onFinished: (c) => {
        if (agent.connections.get(c.connectID) === c) {
          agent.connections.delete(c.connectID);
          this.established--;
          this.metrics.setEstablished(this.established);
        }
      },
    };
  }

  private onData(agent: AgentStream, p: PacketOf<"DATA">): void {
    const conn = agent.connections.get(p.connectID);
    if (conn) conn.peerData(p.data);
    else if (p.connectID !== 0n) agent.send(closeRequest(p.connectID));
  }

  private onCloseResponse(agent: AgentStream, p: PacketOf<"CLOSE_RSP">): void {
    const conn = agent.connections.get(p.connectID);
    if (!conn) return;
    if (p.error) this.log.debug({ agentId: agent.agentId, connectID: String(p.connectID), error: p.error }, "agent closed a connection with an error");
    conn.peerClose(p.error);
  }

  private onAgentDialClose(agent: AgentStream, p: PacketOf<"DIAL_CLS">): void {
    const pending = this.pending.get(p.random);
    if (!pending || pending.agent !== agent) return;
    this.takePending(p.random);
    this.metrics.dialFailed("backend_close", "dial_closed", (performance.now() - pending.startedAt) / 1000);
    this.tracers.dials?.debug({ address: pending.address, agentId: agent.agentId, dialID: String(p.random), outcome: "failed", reason: "backend_close" }, "dial end");
    this.tell(pending.requester, { reason: "backend_close", error: "dial closed", explanation: `agent ${agent.agentId} abandoned the dial (it is shutting down); retry`, dialClosedByAgent: true });
  }

  private onDrain(agent: AgentStream): void {
    if (agent.isDraining) return;
    agent.isDraining = true;
    this.registry.drained(agent);
    this.log.info({ agentId: agent.agentId }, "agent is draining: new dials go to other agents when possible");
    this.updateBackendMetrics();
  }

  private detachAgent(agent: AgentStream, err?: Error): void {
    if (agent.isClosed) return;
    agent.isClosed = true;
    agent.scheduler.close();
    this.registry.remove(agent);
    this.updateBackendMetrics();
    // What the stream took with it, for the log line below.
    const cut = { connections: agent.connections.size, pendingDials: agent.pendingDials.size };
    // Pending dials fail at once, with a reason (upstream #126 leaves them to a 30 s backstop).
    for (const random of [...agent.pendingDials]) {
      const p = this.takePending(random);
      if (!p) continue;
      const explanation = explainAgentGone(agent.agentId);
      this.tracers.dials?.debug({ address: p.address, agentId: agent.agentId, dialID: String(random), outcome: "failed", reason: "backend_close" }, "dial end");
      this.metrics.dialFailed("backend_close", "agent_gone", (performance.now() - p.startedAt) / 1000);
      this.recordFailure({ at: Date.now(), address: p.address, agentId: agent.agentId, reason: "backend_close", error: "agent disconnected", explanation });
      this.tell(p.requester, { reason: "backend_close", error: "agent disconnected", explanation });
    }
    const gone = new TunnelError("AGENT_GONE", `agent ${agent.agentId} disconnected`);
    for (const conn of [...agent.connections.values()]) conn.destroy(gone);
    this.log.info({ agentId: agent.agentId, reason: err?.message, ...cut, authenticatedAs: agent.authenticatedAs }, "agent disconnected");
  }

  private takePending(random: bigint): PendingDial | undefined {
    const p = this.pending.get(random);
    if (!p) return undefined;
    this.pending.delete(random);
    p.agent.pendingDials.delete(random);
    clearTimeout(p.timer);
    this.metrics.setPendingDials(this.pending.size);
    return p;
  }

  private recordFailure(f: RecentFailure): void {
    this.failures.unshift(f);
    if (this.failures.length > RECENT_FAILURES) this.failures.length = RECENT_FAILURES;
  }

  private updateBackendMetrics(): void {
    // Only the configured strategies, as upstream has a backend manager for each of those alone:
    // a series for another would count the same agents again in sum(ready_backends).
    const perStrategy = new Map(this.options.proxyStrategies.map((s) => [s, this.registry.countFor(s)] as const));
    this.metrics.setBackends(this.registry.agentCount, perStrategy);
  }
}


// Random bytes for dial IDs, filled 512 IDs at a time: randomBytes(8) per dial was 2.7 % of the
// server's busy time with a new tunnel per HTTP request.
const randomPool = Buffer.allocUnsafe(8 * 512);
let randomOffset = randomPool.length;

/** A random positive int64, as Go's rand.Int63(). */
export function randomInt63(): bigint {
  if (randomOffset === randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const value = randomPool.readBigUInt64BE(randomOffset) >> 1n;
  randomOffset += 8;
  return value;
}
