// The gRPC frontend (/ProxyService/Proxy): kube-apiserver's konnectivity-client opens one
// stream per proxied connection and drives it with packets (shared/spec/konnectivity.md §1.5).
//
//   waiting ──DIAL_REQ──▶ dialing ──DIAL_RSP ok──▶ established ──close──▶ done
//                           └──failure / DIAL_CLS / stream end──────────────▶ done
import type { Logger } from "pino";
import {
  closeDial, closeResponse, dataPacket, dialResponse, type Packet, type PacketOf,
} from "../protocol/index.js";
import type { Endpoint, EndpointHandlers, PacketChannel } from "../tunnel/index.js";
import { withExplanation } from "./explain-dial-failure.js";
import type { DialHandle, ProxyServer } from "./proxy-server.js";
import type { ServerMetrics } from "./server-metrics.js";

type State =
  | { readonly kind: "waiting" }
  | { readonly kind: "dialing"; readonly random: bigint; readonly handle: DialHandle | null }
  | { readonly kind: "established"; readonly connectID: bigint; readonly endpoint: FrontendStreamEndpoint }
  | { readonly kind: "done" };

/** The frontend stream seen as the local end of a tunnelled connection. */
class FrontendStreamEndpoint implements Endpoint {
  handlers: EndpointHandlers | undefined;
  private ended = false;

  constructor(private readonly channel: PacketChannel, private readonly connectID: bigint, private readonly metrics: ServerMetrics) {}

  start(handlers: EndpointHandlers): void {
    this.handlers = handlers;
  }

  write(chunk: Uint8Array): boolean {
    this.metrics.packet("to_client", "DATA");
    return this.channel.send(dataPacket(this.connectID, chunk));
  }

  get writableLength(): number {
    return this.channel.writableLength;
  }

  pause(): void {
    this.channel.pause();
  }

  resume(): void {
    this.channel.resume();
  }

  /** The agent closed: forward CLOSE_RSP and end the stream, as upstream does. */
  end(): void {
    this.finish("");
  }

  destroy(err?: Error): void {
    this.finish(err?.message ?? "connection closed");
  }

  private finish(error: string): void {
    if (this.ended) return;
    this.ended = true;
    this.metrics.packet("to_client", "CLOSE_RSP");
    this.channel.send(closeResponse(this.connectID, error));
    this.channel.end(0);
  }
}

export function serveGrpcFrontend(channel: PacketChannel, server: ProxyServer, metrics: ServerMetrics, log: Logger): void {
  let state: State = { kind: "waiting" };
  metrics.grpcStreamOpened("Proxy", 1);
  const send = (p: Packet) => {
    metrics.packet("to_client", p.type);
    channel.send(p);
  };

  const onDialRequest = (p: PacketOf<"DIAL_REQ">) => {
    if (state.kind !== "waiting") {
      send(dialResponse(p.random, 0n, "a Proxy stream carries one connection; open a new stream for another dial"));
      return;
    }
    if (p.protocol !== "tcp") {
      send(dialResponse(p.random, 0n, `protocol "${p.protocol}" is not supported: only tcp`));
      state = { kind: "done" };
      channel.end(0);
      return;
    }
    const random = p.random;
    state = { kind: "dialing", random, handle: null };
    const handle = server.dial(p.address, {
      established: (connectID) => {
        if (state.kind !== "dialing") return null;
        send(dialResponse(random, connectID));
        const endpoint = new FrontendStreamEndpoint(channel, connectID, metrics);
        state = { kind: "established", connectID, endpoint };
        return endpoint;
      },
      failed: (f) => {
        if (state.kind !== "dialing") return;
        state = { kind: "done" };
        send(f.dialClosedByAgent ? closeDial(random) : dialResponse(random, 0n, withExplanation(f.error, f.explanation)));
        // Upstream stops serving the stream after a failed dial; the client closes it.
        channel.end(0);
      },
    }, random);
    if (state.kind === "dialing") state = { kind: "dialing", random, handle };
  };

  const handlers: { [T in Packet["type"]]?: (p: PacketOf<T>) => void } = {
    DIAL_REQ: onDialRequest,
    DATA: (p) => {
      if (state.kind === "established" && p.connectID === state.connectID) state.endpoint.handlers?.localData(p.data);
      else if (state.kind === "established") {
        // A second connectID on one stream: upstream closes both.
        send(closeResponse(p.connectID, "connectID does not belong to this stream"));
        state.endpoint.handlers?.localEnd();
      } else send(closeResponse(p.connectID, "backend not initialized"));
    },
    CLOSE_REQ: (p) => {
      if (state.kind === "established" && p.connectID === state.connectID) state.endpoint.handlers?.localEnd();
      else send(closeResponse(p.connectID, "backend uninitialized"));
    },
    DIAL_CLS: (p) => {
      if (state.kind === "dialing" && p.random === state.random) {
        state.handle?.cancel();
        state = { kind: "done" };
        channel.end(0);
      }
    },
  };

  channel.start({
    packet: (p) => {
      metrics.packet("from_client", p.type);
      const h = handlers[p.type] as ((p: Packet) => void) | undefined;
      if (h) h(p);
      else log.debug({ type: p.type }, "ignoring an unexpected packet from a frontend");
    },
    drain: () => {
      if (state.kind === "established") state.endpoint.handlers?.localDrain();
    },
    close: (err) => {
      metrics.grpcStreamOpened("Proxy", -1);
      if (state.kind === "dialing") state.handle?.cancel();
      else if (state.kind === "established") state.endpoint.handlers?.localEnd(err);
      state = { kind: "done" };
    },
  });
}
