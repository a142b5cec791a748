// The server's metrics behind a small typed facade, on an injected registry. Upstream's names and
// labels (shared/spec/konnectivity.md §2.6) so existing dashboards and alerts keep working, plus
// nodetunnel's own under nodetunnel_server_*.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Packet } from "../protocol/index.js";
import { streamErrorCodeName } from "../transport/index.js";
import { PacketTally, Tally, collectPackets, collectTallies } from "../tunnel/index.js";
import type { ProxyStrategy } from "./server-options.js";

const P = "konnectivity_network_proxy_server_";

export type DialFailureReason =
  | "no_agent" | "error_response" | "unrecognized_response" | "send_rsp" | "backend_close" | "backend_dial_timeout" | "frontend_close"
  | "limit";
export type Segment = "from_client" | "to_client" | "from_agent" | "to_agent";
const segments: Segment[] = ["from_client", "to_client", "from_agent", "to_agent"];
// Upstream's buckets for both server latency histograms (pkg/server/metrics), so dashboards'
// bucket boundaries (le="0.005", ...) match.
const upstreamLatencyBuckets = [0.000001, 0.00001, 0.0001, 0.005, 0.025, 0.1, 0.5, 2.5, 12.5];

export class ServerMetrics {
  private readonly dialDuration: Histogram;
  private readonly frontendWriteDuration: Histogram;
  private readonly dialFailures: Counter<"reason">;
  private readonly grpcConnections: Gauge<"service_method">;
  private readonly httpConnections: Gauge;
  private readonly readyBackendConnections: Gauge;
  private readonly readyBackends: Gauge<"proxy_strategy">;
  private readonly pendingDials: Gauge;
  private readonly established: Gauge;
  private readonly fullReceiveChannels: Gauge<"service_method">;
  private fullProxyChannels = 0;
  private readonly streamErrors: Counter<"segment" | "code" | "packet_type">;
  /** Per-packet counts, handed to prom-client at scrape time (see packet-tally.ts). */
  private readonly packets = new PacketTally(segments);
  private readonly bytesToAgent = new Tally();
  private readonly bytesFromAgent = new Tally();
  private readonly slowConsumers: Counter;
  private readonly streamHolds: Counter;
  private readonly dialOutcome: Histogram<"outcome" | "cause">;
  private readonly queueBytes: Gauge;
  private readonly budgetPauses: Counter;
  private queuedBytesOf: (() => number) | undefined;
  // Counts that change with every connection or dial, kept as plain numbers and handed to their
  // gauges at scrape time: prom-client's set()/inc() per request were ~3 % of the server's busy
  // time in the bench's HTTP GET row.
  private pendingDialCount = 0;
  private establishedCount = 0;
  private httpConnectionCount = 0;
  private readonly grpcConnectionCounts = new Map<"Proxy" | "Connect", number>();

  constructor(registry: Registry) {
    const r = [registry];
    this.dialDuration = new Histogram({
      name: P + "dial_duration_seconds", help: "Latency of dial to the remote endpoint in seconds", registers: r,
      buckets: upstreamLatencyBuckets,
    });
    this.frontendWriteDuration = new Histogram({
      name: P + "frontend_write_duration_seconds", help: "Latency of write to the frontend in seconds", registers: r, buckets: upstreamLatencyBuckets,
    });
    this.dialFailures = new Counter({ name: P + "dial_failure_count", help: "Number of dial failures observed, by reason", labelNames: ["reason"], registers: r });
    this.grpcConnections = new Gauge({
      name: P + "grpc_connections", help: "Number of current gRPC connections, by service method", labelNames: ["service_method"], registers: r,
      collect: () => {
        for (const [method, n] of this.grpcConnectionCounts) this.grpcConnections.labels(method).set(n);
      },
    });
    this.httpConnections = new Gauge({
      name: P + "http_connections", help: "Number of current HTTP CONNECT connections", registers: r,
      collect: () => this.httpConnections.set(this.httpConnectionCount),
    });
    this.readyBackendConnections = new Gauge({ name: P + "ready_backend_connections", help: "Number of konnectivity agent connected to the proxy server (deprecated)", registers: r });
    this.readyBackends = new Gauge({ name: P + "ready_backends", help: "Number of agents usable by each proxy strategy", labelNames: ["proxy_strategy"], registers: r });
    this.pendingDials = new Gauge({
      name: P + "pending_backend_dials", help: "Current number of pending backend dial requests", registers: r,
      collect: () => this.pendingDials.set(this.pendingDialCount),
    });
    this.established = new Gauge({
      name: P + "established_connections", help: "Current number of established end-to-end connections", registers: r,
      collect: () => this.established.set(this.establishedCount),
    });
    // A gRPC frontend stream (Proxy) whose connection's queue to the agent is full stops being
    // read. Agent streams (Connect) are never held back as a whole: each connection's sender is
    // throttled or closed instead, so that series stays 0.
    this.fullReceiveChannels = new Gauge({
      name: P + "full_receive_channels", help: "Number of current connections with a full receive channel", labelNames: ["service_method"], registers: r,
      collect: () => {
        this.fullReceiveChannels.labels("Proxy").set(this.fullProxyChannels);
        this.fullReceiveChannels.labels("Connect").set(0);
      },
    });
    new Counter({
      name: P + "stream_packets_total", help: "Count of packets processed, by segment and packet type", labelNames: ["segment", "packet_type"], registers: r,
      collect: collectPackets(this.packets),
    });
    this.streamErrors = new Counter({ name: P + "stream_errors_total", help: "Count of gRPC stream errors, by segment, code and packet type", labelNames: ["segment", "code", "packet_type"], registers: r });
    new Counter({
      name: "nodetunnel_server_bytes_total", help: "Payload bytes relayed, by direction", labelNames: ["direction"], registers: r,
      collect: collectTallies({ to_agent: this.bytesToAgent, from_agent: this.bytesFromAgent }),
    });
    this.slowConsumers = new Counter({ name: "nodetunnel_server_slow_consumer_closes_total", help: "Connections closed because their reader fell behind the hard cap", registers: r });
    this.streamHolds = new Counter({ name: "nodetunnel_server_slow_reader_stream_pauses_total", help: "Times a reader past the slow-consumer cap paused reading its agent stream (agents without the credit extension)", registers: r });
    this.dialOutcome = new Histogram({
      name: "nodetunnel_server_dial_duration_seconds", help: "Dial duration through the tunnel by outcome and cause", labelNames: ["outcome", "cause"], registers: r,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.queueBytes = new Gauge({
      name: "nodetunnel_server_queued_bytes", help: "Bytes waiting in per-connection queues and endpoint buffers", registers: r,
      collect: () => {
        if (this.queuedBytesOf) this.queueBytes.set(this.queuedBytesOf());
      },
    });
    this.budgetPauses = new Counter({ name: "nodetunnel_server_memory_budget_pauses_total", help: "Times the global memory budget paused reading agent streams", registers: r });
  }

  packet(segment: Segment, type: Packet["type"]): void {
    this.packets.add(segment, type);
  }

  /** A gRPC stream (an agent's or a frontend's) ended with `err`: counted as upstream counts a receive error. */
  streamEnded(segment: "from_agent" | "from_client", err: Error | undefined): void {
    const code = streamErrorCodeName(err);
    if (code !== null) this.streamErrors.labels(segment, code, "Unknown").inc();
  }

  /** How long handing DATA to a frontend took. It never blocks here (the data waits in the connection's queue instead), unlike upstream's Send. */
  frontendWritten(seconds: number): void {
    this.frontendWriteDuration.observe(seconds);
  }

  dialSucceeded(seconds: number): void {
    this.dialDuration.observe(seconds);
    this.dialOutcome.labels("success", "none").observe(seconds);
  }

  dialFailed(reason: DialFailureReason, cause: string, seconds: number): void {
    if (reason !== "limit") this.dialFailures.labels(reason).inc();
    this.dialOutcome.labels("failure", cause).observe(seconds);
  }

  grpcStreamOpened(method: "Proxy" | "Connect", delta: 1 | -1): void {
    this.grpcConnectionCounts.set(method, (this.grpcConnectionCounts.get(method) ?? 0) + delta);
  }

  httpConnectionOpened(delta: 1 | -1): void {
    this.httpConnectionCount += delta;
  }

  setBackends(agentCount: number, perStrategy: ReadonlyMap<ProxyStrategy, number>): void {
    this.readyBackendConnections.set(agentCount);
    for (const [s, n] of perStrategy) this.readyBackends.labels(s).set(n);
  }

  setPendingDials(n: number): void {
    this.pendingDialCount = n;
  }

  setEstablished(n: number): void {
    this.establishedCount = n;
  }

  setQueuedBytes(n: number): void {
    this.queueBytes.set(n);
  }

  /** Reads the queued bytes at each scrape instead of tracking every change. */
  observeQueuedBytes(read: () => number): void {
    this.queuedBytesOf = read;
  }

  /** A gRPC frontend stream stopped (+1) or went back to (-1) being read because its connection's queue is full. */
  fullReceiveChannel(delta: 1 | -1): void {
    this.fullProxyChannels += delta;
  }

  bytesRelayed(direction: "to_agent" | "from_agent", n: number): void {
    (direction === "to_agent" ? this.bytesToAgent : this.bytesFromAgent).add(n);
  }

  slowConsumer(): void {
    this.slowConsumers.inc();
  }

  streamHeld(): void {
    this.streamHolds.inc();
  }

  memoryBudgetPaused(): void {
    this.budgetPauses.inc();
  }
}
