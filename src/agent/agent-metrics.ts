// The agent's metrics behind a typed facade on an injected registry: upstream's names
// (shared/spec/konnectivity.md §2.6) plus nodetunnel_agent_*.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Packet } from "../protocol/index.js";
import { streamErrorCodeName } from "../transport/index.js";
import { PacketTally, Tally, collectPackets, collectTallies } from "../tunnel/index.js";

const P = "konnectivity_network_proxy_agent_";
type Segment = "from_server" | "to_server";
const segments: Segment[] = ["from_server", "to_server"];

export class AgentMetrics {
  private readonly dialDuration: Histogram;
  private readonly dialFailures: Counter<"reason">;
  private readonly openServerConnections: Gauge;
  private readonly knownServerCount: Gauge;
  private readonly openEndpointConnections: Gauge;
  private readonly serverConnectionFailures: Counter<"direction">;
  /** Per-packet counts, handed to prom-client at scrape time (see packet-tally.ts). */
  private readonly packets = new PacketTally(segments);
  private readonly streamErrors: Counter<"segment" | "code" | "packet_type">;
  private readonly bytesToServer = new Tally();
  private readonly bytesFromServer = new Tally();
  private readonly slowConsumers: Counter;
  private readonly streamHolds: Counter;
  private readonly deniedDestinations: Counter;
  /** Changes with every connection: a plain number handed to the gauge at scrape time. */
  private endpointConnectionCount = 0;

  constructor(registry: Registry) {
    const r = [registry];
    this.dialDuration = new Histogram({
      name: P + "dial_duration_seconds", help: "Latency of dial to the remote endpoint in seconds", registers: r,
      buckets: [0.005, 0.025, 0.1, 0.5, 2.5, 10, 30], // upstream's (pkg/agent/metrics)
    });
    this.dialFailures = new Counter({ name: P + "endpoint_dial_failure_total", help: "Number of failures dialing the remote endpoint, by reason", labelNames: ["reason"], registers: r });
    this.openServerConnections = new Gauge({ name: P + "open_server_connections", help: "Current number of open server connections", registers: r });
    this.knownServerCount = new Gauge({ name: P + "known_server_count", help: "Current known server count", registers: r });
    this.openEndpointConnections = new Gauge({
      name: P + "open_endpoint_connections", help: "Current number of open endpoint connections", registers: r,
      collect: () => this.openEndpointConnections.set(this.endpointConnectionCount),
    });
    this.serverConnectionFailures = new Counter({ name: P + "server_connection_failure_count", help: "Count of failures to connect to the proxy server (deprecated)", labelNames: ["direction"], registers: r });
    new Counter({
      name: P + "stream_packets_total", help: "Count of packets processed, by segment and packet type", labelNames: ["segment", "packet_type"], registers: r,
      collect: collectPackets(this.packets),
    });
    this.streamErrors = new Counter({ name: P + "stream_errors_total", help: "Count of gRPC stream errors", labelNames: ["segment", "code", "packet_type"], registers: r });
    new Counter({
      name: "nodetunnel_agent_bytes_total", help: "Payload bytes relayed, by direction", labelNames: ["direction"], registers: r,
      collect: collectTallies({ to_server: this.bytesToServer, from_server: this.bytesFromServer }),
    });
    this.slowConsumers = new Counter({ name: "nodetunnel_agent_slow_consumer_closes_total", help: "Connections closed because their destination fell behind the hard cap", registers: r });
    this.streamHolds = new Counter({ name: "nodetunnel_agent_slow_reader_stream_pauses_total", help: "Times a destination past the slow-consumer cap paused reading its server stream (servers without the credit extension)", registers: r });
    this.deniedDestinations = new Counter({ name: "nodetunnel_agent_denied_destinations_total", help: "Dials refused by --allowed-destinations", registers: r });
  }

  packet(segment: Segment, type: Packet["type"]): void {
    this.packets.add(segment, type);
  }

  /** The stream to a server ended with `err`: counted as upstream counts a receive error. */
  streamEnded(err: Error | undefined): void {
    const code = streamErrorCodeName(err);
    if (code !== null) this.streamErrors.labels("from_server", code, "Unknown").inc();
  }

  dialSucceeded(seconds: number): void {
    this.dialDuration.observe(seconds);
  }

  dialFailed(kind: "timeout" | "denied" | "cancelled" | "other"): void {
    if (kind === "denied") this.deniedDestinations.inc();
    else if (kind !== "cancelled") this.dialFailures.labels(kind === "timeout" ? "timeout" : "unknown").inc();
  }

  setOpenServerConnections(n: number): void {
    this.openServerConnections.set(n);
  }

  setKnownServerCount(n: number): void {
    this.knownServerCount.set(n);
  }

  endpointConnections(delta: 1 | -1): void {
    this.endpointConnectionCount += delta;
  }

  serverConnectionFailed(): void {
    this.serverConnectionFailures.labels("to_server").inc();
  }

  bytesRelayed(direction: "to_server" | "from_server", n: number): void {
    (direction === "to_server" ? this.bytesToServer : this.bytesFromServer).add(n);
  }

  slowConsumer(): void {
    this.slowConsumers.inc();
  }

  streamHeld(): void {
    this.streamHolds.inc();
  }
}
