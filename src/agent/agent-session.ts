// One agent's stream to one server. The server sends dials; the agent connects to destinations
// and multiplexes every connection on this stream (shared/spec/konnectivity.md §1.5).
// connectIDs are per stream, counting from 1, and a failed dial burns its id, as upstream.
//
//   serving ──drain()──▶ draining (DRAIN sent, new dials refused) ──┐
//      └───────────── stream ends / destroy() ────────────────────────┴──▶ closed (everything released)
import type { Socket } from "node:net";
import type { Logger } from "pino";
import {
  closeResponse, dialResponse, drain, packetFields, type Packet, type PacketOf,
} from "../protocol/index.js";
import { PauseHolds, SendScheduler, SocketEndpoint, countingSends, TunnelConnection, type ConnectionCounters, type ConnectionSide, type FlowOptions, type MemoryBudget, type PacketChannel } from "../tunnel/index.js";
import type { AgentMetrics } from "./agent-metrics.js";
import { DialCancel, DialError, dialDestination, isDialNetwork } from "./dial-destination.js";
import type { DestinationPolicy } from "./destination-policy.js";

export interface AgentSessionOptions {
  readonly agentId: string;
  readonly serverId: string;
  readonly credit: boolean;
  readonly dialTimeoutMs: number;
  readonly flow: FlowOptions;
  readonly policy: DestinationPolicy;
  readonly budget?: MemoryBudget;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  readonly tracers?: AgentTracers;
}

/**
 * Named tracers (NODETUNNEL_TRACE, made by the CLI), as the server's: loggers that write at debug
 * whatever the main level is; undefined when off, so the per-packet path costs one check.
 * packets: every packet to and from the server (type and ids, never payload); dials: each
 * dial's start and end with its outcome and duration.
 */
export interface AgentTracers {
  readonly packets?: Logger;
  readonly dials?: Logger;
}

type State = "serving" | "draining" | "closed";

const agentSide: ConnectionSide = {
  localClose: (connectID, error) => closeResponse(connectID, error),
  peerCloseReply: (connectID) => closeResponse(connectID),
  awaitPeerCloseMs: 0,
};

export class AgentSession {
  readonly serverId: string;
  readonly connectedAt = Date.now();
  private state: State = "serving";
  private nextConnectID = 1n;
  private readonly scheduler: SendScheduler;
  private readonly connections = new Map<bigint, TunnelConnection>();
  private readonly pendingDials = new Map<bigint, DialCancel>();
  private readonly handlers: { [T in Packet["type"]]?: (p: PacketOf<T>) => void };
  private readonly closedCallbacks: Array<(err?: Error) => void> = [];
  private readonly traceDials: Logger | undefined;
  /** Who keeps the server stream paused: the memory budget, connections past the slow-consumer cap. */
  private readonly holds: PauseHolds;
  private readonly holdStream = (): (() => void) => this.holds.hold();

  constructor(private readonly channel: PacketChannel, private readonly o: AgentSessionOptions) {
    this.serverId = o.serverId;
    this.holds = new PauseHolds(channel);
    const tracePackets = o.tracers?.packets?.child({ agentId: o.agentId, serverId: o.serverId });
    this.traceDials = o.tracers?.dials?.child({ agentId: o.agentId, serverId: o.serverId });
    this.scheduler = new SendScheduler(countingSends(channel, (p) => {
      o.metrics.packet("to_server", p.type);
      if (tracePackets) tracePackets.debug(packetFields(p), "packet to server");
    }), o.flow.chunkBytes, o.flow.inFlightBytes);
    this.handlers = {
      DIAL_REQ: (p) => this.onDialRequest(p),
      DATA: (p) => {
        const conn = this.connections.get(p.connectID);
        if (conn) conn.peerData(p.data);
        else if (p.connectID !== 0n) this.send(closeResponse(p.connectID, "unrecognized connectID"));
      },
      CLOSE_REQ: (p) => {
        const conn = this.connections.get(p.connectID);
        if (conn) conn.peerClose();
        else this.send(closeResponse(p.connectID, "Unknown connectID"));
      },
      // Upstream agents ignore DIAL_CLS (#404); cancelling the dial keeps no orphan connection.
      DIAL_CLS: (p) => this.pendingDials.get(p.random)?.cancel(),
      WINDOW_UPDATE: (p) => {
        if (this.o.credit) this.connections.get(p.connectID)?.peerCredit(p.bytes);
      },
    };
    const removeBudgetSource = o.budget?.addSource(this.holds.asPausable());
    channel.start({
      packet: (p) => {
        o.metrics.packet("from_server", p.type);
        if (tracePackets) tracePackets.debug(packetFields(p), "packet from server");
        const h = this.handlers[p.type] as ((p: Packet) => void) | undefined;
        if (h) h(p);
        else o.log.debug({ type: p.type }, "ignoring an unexpected packet from the server");
      },
      drain: () => this.scheduler.onDrain(),
      close: (err) => {
        removeBudgetSource?.();
        o.metrics.streamEnded(err);
        this.release(err);
      },
    });
  }

  get isClosed(): boolean {
    return this.state === "closed";
  }

  get isDraining(): boolean {
    return this.state === "draining";
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get pendingDialCount(): number {
    return this.pendingDials.size;
  }

  onClosed(cb: (err?: Error) => void): void {
    this.closedCallbacks.push(cb);
  }

  /**
   * Tells the server to avoid this agent for new dials. Dials still come when the server has no
   * other agent for the address (konnectivity.md §1.5: it falls back to a draining one), and are
   * served, as upstream's agent serves them; existing connections go on.
   */
  drain(): void {
    if (this.state !== "serving") return;
    this.state = "draining";
    this.send(drain());
  }

  /** Ends the stream gracefully (after draining, once connections finished). */
  end(): void {
    if (this.state === "closed") return;
    this.channel.end();
  }

  destroy(err?: Error): void {
    if (this.state === "closed") return;
    this.channel.destroy(err);
    this.release(err);
  }

  private send(p: Packet): void {
    this.scheduler.sendControl(p);
  }

  private onDialRequest(p: PacketOf<"DIAL_REQ">): void {
    const random = p.random;
    // Upstream takes the connection ID before it dials, so every DIAL_REQ uses one, a refused one too.
    const connectID = this.nextConnectID++;
    if (!isDialNetwork(p.protocol)) {
      // Go's net.Dial names no address for a network it does not know ("" included); only TCP is
      // served (tcp4 and tcp6 too, as net.Dial takes them; kube-apiserver sends "tcp").
      this.send(dialResponse(random, 0n, `dial${p.protocol === "" ? "" : ` ${p.protocol}`}: unknown network ${p.protocol}`));
      return;
    }
    if (this.state === "draining") this.o.log.debug({ address: p.address }, "draining, but the server sent a dial (no other agent for it): serving it");
    const cancel = new DialCancel();
    this.pendingDials.set(random, cancel);
    const started = performance.now();
    const traceDials = this.traceDials;
    traceDials?.debug({ address: p.address, dialID: String(random) }, "dial start");
    dialDestination(p.address, { timeoutMs: this.o.dialTimeoutMs, policy: this.o.policy, cancel, network: p.protocol }).then(
      (socket) => {
        this.pendingDials.delete(random);
        if (this.state === "closed" || cancel.cancelled) {
          socket.destroy();
          return;
        }
        this.o.metrics.dialSucceeded((performance.now() - started) / 1000);
        traceDials?.debug({ address: p.address, dialID: String(random), connectID: String(connectID), outcome: "established", ms: performance.now() - started }, "dial end");
        // DIAL_RSP goes out as a control packet before the connection can queue any DATA.
        this.send(dialResponse(random, connectID));
        this.startConnection(connectID, socket);
      },
      (err: unknown) => {
        this.pendingDials.delete(random);
        const e = err instanceof DialError ? err : new DialError(`dial tcp ${p.address}: ${String(err)}`, "other", err);
        this.o.metrics.dialFailed(e.kind);
        traceDials?.debug({ address: p.address, dialID: String(random), outcome: e.kind === "cancelled" ? "cancelled" : "failed", error: e.goText, ms: performance.now() - started }, "dial end");
        if (e.kind === "cancelled" || this.state === "closed") return; // the server gave up on it
        this.o.log.info({ address: p.address, error: e.goText }, "dial failed");
        this.send(dialResponse(random, 0n, e.goText));
      },
    );
  }

  // Shared by all of this session's connections (a set of closures each cost memory per idle connection).
  private readonly counters: ConnectionCounters = {
    bytesToPeer: (n) => this.o.metrics.bytesRelayed("to_server", n),
    bytesFromPeer: (n) => this.o.metrics.bytesRelayed("from_server", n),
    slowConsumer: () => this.o.metrics.slowConsumer(),
    streamHeld: () => this.o.metrics.streamHeld(),
  };

  private readonly connectionFinished = (c: TunnelConnection): void => {
    if (this.connections.get(c.connectID) === c) {
      this.connections.delete(c.connectID);
      this.o.metrics.endpointConnections(-1);
    }
  };

  private startConnection(connectID: bigint, socket: Socket): void {
    this.o.metrics.endpointConnections(1);
    const conn = new TunnelConnection({
      connectID,
      endpoint: new SocketEndpoint(socket),
      scheduler: this.scheduler,
      flow: this.o.flow,
      credit: this.o.credit,
      side: agentSide,
      budget: this.o.budget,
      log: this.o.log,
      counters: this.counters,
      holdStream: this.holdStream,
      onFinished: this.connectionFinished,
    });
    this.connections.set(connectID, conn);
    conn.start();
  }

  private release(err?: Error): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.scheduler.close();
    for (const c of this.pendingDials.values()) c.cancel();
    this.pendingDials.clear();
    for (const conn of [...this.connections.values()]) conn.destroy(err);
    for (const cb of this.closedCallbacks) cb(err);
  }
}
