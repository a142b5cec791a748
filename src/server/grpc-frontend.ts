// The gRPC frontend (/ProxyService/Proxy): kube-apiserver's konnectivity-client opens one
// stream per proxied connection and drives it with packets (shared/spec/konnectivity.md §1.5).
//
//   waiting ──DIAL_REQ──▶ dialing ──DIAL_RSP ok──▶ established ──close──▶ done
//                           └──failure / DIAL_CLS / stream end──────────────▶ done
import type { Logger } from "pino";
import {
  closeDial, closeResponse, dataPacket, dialResponse, isTunnelError, type Packet, type PacketOf,
} from "../protocol/index.js";
import { receivedDataFrame, type ChannelHandlers, type Endpoint, type EndpointHandlers, type PacketChannel } from "../tunnel/index.js";
import { withExplanation } from "./explain-dial-failure.js";
import type { DialFailure, DialHandle, DialRequester, ProxyServer } from "./proxy-server.js";
import type { ServerMetrics } from "./server-metrics.js";

/** Above this backlog a frontend stream gets copies of the agent's DATA, not views of what was received. */
const inPlaceMaxBacklogBytes = 4 * 1024 * 1024;

/** Upstream's text when a frontend's DATA names another connection than the stream's. */
const mismatchedIds = "mismatched connection IDs";

type State =
  | { readonly kind: "waiting" }
  | { readonly kind: "dialing"; readonly random: bigint; readonly handle: DialHandle | null }
  | { readonly kind: "established"; readonly connectID: bigint; readonly endpoint: FrontendStreamEndpoint }
  | { readonly kind: "done" };

/** The frontend stream seen as the local end of a tunnelled connection. */
class FrontendStreamEndpoint implements Endpoint {
  handlers: EndpointHandlers | undefined;
  private ended = false;
  /** Not read because the connection's queue to the agent is full (full_receive_channels). */
  private paused = false;

  constructor(private readonly channel: PacketChannel, private readonly connectID: bigint, private readonly metrics: ServerMetrics) {}

  start(handlers: EndpointHandlers): void {
    this.handlers = handlers;
  }

  write(chunk: Uint8Array): boolean {
    this.metrics.packet("to_client", "DATA");
    // The agent's DATA message as it came, when it still lies whole in the received bytes: a
    // view that keeps the whole received buffer, so only while this stream's backlog is small
    // (the caps count bytes queued, not the buffers they keep).
    const frame = this.channel.sendFramed && this.channel.writableLength < inPlaceMaxBacklogBytes && receivedDataFrame(chunk);
    return frame ? this.channel.sendFramed!(frame) : this.channel.send(dataPacket(this.connectID, chunk));
  }

  get writableLength(): number {
    return this.channel.writableLength;
  }

  pause(): void {
    this.channel.pause();
    if (!this.paused && !this.ended) {
      this.paused = true;
      this.metrics.fullReceiveChannel(1);
    }
  }

  resume(): void {
    this.channel.resume();
    this.unpaused();
  }

  /** The frontend's stream is gone: it counts as full no longer. */
  frontendClosed(): void {
    this.unpaused();
  }

  private unpaused(): void {
    if (!this.paused) return;
    this.paused = false;
    this.metrics.fullReceiveChannel(-1);
  }

  /** The agent closed: forward its CLOSE_RSP (with the agent's error text) and end the stream, as upstream does. */
  end(peerError = ""): void {
    this.finish(peerError);
  }

  destroy(err?: Error): void {
    // An agent that went away closes its connections with an empty CLOSE_RSP, as upstream's server
    // does (konnectivity.md §1.5); nodetunnel's own reasons (a slow consumer, a server shutting
    // down) are said in the error.
    this.finish(isTunnelError(err, "AGENT_GONE") ? "" : err?.message ?? "connection closed");
  }

  /** A second connectID on the stream: CLOSE_RSP for ours too, at once, and the stream ends. */
  mismatched(): void {
    this.finish(mismatchedIds);
  }

  private finish(error: string): void {
    if (this.ended) return;
    this.ended = true;
    this.unpaused();
    this.metrics.packet("to_client", "CLOSE_RSP");
    this.channel.send(closeResponse(this.connectID, error));
    this.channel.end(0);
  }
}

/**
 * One frontend stream. A class with methods rather than closures: a frontend holds one stream per
 * proxied connection, and ten closures each add up to ~0.7 KiB per connection.
 */
class GrpcFrontendStream implements ChannelHandlers, DialRequester {
  private state: State = { kind: "waiting" };

  constructor(
    private readonly channel: PacketChannel,
    private readonly server: ProxyServer,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
  ) {}

  private send(p: Packet): void {
    this.metrics.packet("to_client", p.type);
    this.channel.send(p);
  }

  // ---- ChannelHandlers ----

  packet(p: Packet): void {
    this.metrics.packet("from_client", p.type);
    const h = packetHandlers[p.type] as ((s: GrpcFrontendStream, p: Packet) => void) | undefined;
    if (h) h(this, p);
    else this.log.debug({ type: p.type }, "ignoring an unexpected packet from a frontend");
  }

  drain(): void {
    if (this.state.kind === "established") this.state.endpoint.handlers?.localDrain();
  }

  close(err?: Error): void {
    this.metrics.grpcStreamOpened("Proxy", -1);
    this.metrics.streamEnded("from_client", err);
    if (this.state.kind === "dialing") this.state.handle?.cancel();
    else if (this.state.kind === "established") {
      this.state.endpoint.frontendClosed();
      this.state.endpoint.handlers?.localEnd(err);
    }
    this.state = { kind: "done" };
  }

  // ---- DialRequester ----

  established(connectID: bigint): Endpoint | null {
    if (this.state.kind !== "dialing") return null;
    this.send(dialResponse(this.state.random, connectID));
    const endpoint = new FrontendStreamEndpoint(this.channel, connectID, this.metrics);
    this.state = { kind: "established", connectID, endpoint };
    return endpoint;
  }

  failed(f: DialFailure): void {
    if (this.state.kind !== "dialing") return;
    const random = this.state.random;
    this.state = { kind: "done" };
    this.send(f.dialClosedByAgent ? closeDial(random) : dialResponse(random, 0n, withExplanation(f.error, f.explanation)));
    // Upstream stops serving the stream after a failed dial; the client closes it.
    this.channel.end(0);
  }

  // ---- packets ----

  dialRequest(p: PacketOf<"DIAL_REQ">): void {
    if (this.state.kind !== "waiting") {
      this.send(dialResponse(p.random, 0n, "a Proxy stream carries one connection; open a new stream for another dial"));
      return;
    }
    if (p.protocol !== "tcp") {
      this.send(dialResponse(p.random, 0n, `protocol "${p.protocol}" is not supported: only tcp`));
      this.state = { kind: "done" };
      this.channel.end(0);
      return;
    }
    const random = p.random;
    this.state = { kind: "dialing", random, handle: null };
    const handle = this.server.dial(p.address, this, random);
    if (this.state.kind === "dialing") this.state = { kind: "dialing", random, handle };
  }

  data(p: PacketOf<"DATA">): void {
    const state = this.state;
    if (state.kind === "waiting") {
      // Upstream answers DATA before any DIAL_REQ and stops serving the stream.
      this.send(closeResponse(p.connectID, "backend not initialized"));
      this.state = { kind: "done" };
      this.channel.end(0);
      return;
    }
    // DATA without a connectID is dropped (konnectivity.md §1.2), as upstream logs and goes on.
    if (p.connectID === 0n) return;
    if (state.kind === "established" && p.connectID === state.connectID) state.endpoint.handlers?.localData(p.data);
    else if (state.kind === "established") {
      // A second connectID on one stream: as upstream, the frontend gets CLOSE_RSP for both and the
      // stream ends. The agent is told to close only this stream's own connection: the other ID
      // may be another client's connection, which upstream would close too.
      this.log.debug({ connectID: String(state.connectID), other: String(p.connectID) }, "a frontend stream sent DATA for another connectID: closing it");
      this.send(closeResponse(p.connectID, mismatchedIds));
      this.state = { kind: "done" };
      state.endpoint.mismatched();
      state.endpoint.handlers?.localEnd();
    } else this.send(closeResponse(p.connectID, "backend not initialized"));
  }

  closeRequest(p: PacketOf<"CLOSE_REQ">): void {
    if (this.state.kind === "established" && p.connectID === this.state.connectID) this.state.endpoint.handlers?.localEnd();
    else this.send(closeResponse(p.connectID, "backend uninitialized"));
  }

  dialClose(p: PacketOf<"DIAL_CLS">): void {
    if (this.state.kind === "dialing" && p.random === this.state.random) {
      this.state.handle?.cancel();
      this.state = { kind: "done" };
      this.channel.end(0);
    }
  }
}

const packetHandlers: { [T in Packet["type"]]?: (s: GrpcFrontendStream, p: PacketOf<T>) => void } = {
  DIAL_REQ: (s, p) => s.dialRequest(p),
  DATA: (s, p) => s.data(p),
  CLOSE_REQ: (s, p) => s.closeRequest(p),
  DIAL_CLS: (s, p) => s.dialClose(p),
};

export function serveGrpcFrontend(channel: PacketChannel, server: ProxyServer, metrics: ServerMetrics, log: Logger): void {
  metrics.grpcStreamOpened("Proxy", 1);
  channel.start(new GrpcFrontendStream(channel, server, metrics, log));
}
