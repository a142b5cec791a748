// Peers that speak raw Konnectivity packets over our gRPC client, so a test can play an agent
// (/AgentService/Connect over TLS) or kube-apiserver (/ProxyService/Proxy over a Unix socket)
// and check each rule of shared/spec/konnectivity.md §1.5 packet by packet.
import { once } from "node:events";
import { decodePacket, encodePacket, type Packet } from "../../src/protocol/index.js";
import { GrpcClient, type GrpcCallStatus, type GrpcClientCall, type Metadata, type MetadataInit, type Pki } from "../../src/transport/index.js";
import { PacketQueue } from "./packet-queue.js";

export class RawPeer {
  readonly packets = new PacketQueue();
  /** Resolves with the call's final status (never rejects). */
  readonly status: Promise<GrpcCallStatus>;
  /** Set when the response headers arrived, relative to the packets received then. */
  packetsBeforeHeaders: number | undefined;

  constructor(readonly client: GrpcClient, readonly call: GrpcClientCall) {
    this.status = once(call, "status").then(([s]) => s as GrpcCallStatus);
    call.headers.then(() => (this.packetsBeforeHeaders = this.packets.all.length), () => {});
    call.on("message", (m: Uint8Array) => this.packets.push(decodePacket(m)));
    call.once("close", () => this.packets.end());
  }

  get headers(): Promise<Metadata> {
    return this.call.headers;
  }

  send(p: Packet): void {
    this.call.write(encodePacket(p));
  }

  /** One gRPC message of arbitrary bytes: what no encoder of ours would write. */
  sendBytes(message: Uint8Array): void {
    this.call.write(message);
  }

  /** Half-closes our side (the server sees the stream end). */
  end(): void {
    this.call.end();
  }

  /** Kills the HTTP/2 session under the stream: what a crashed peer looks like. */
  destroy(): void {
    this.client.destroy();
  }
}

/** A fake agent: opens /AgentService/Connect over TLS with `metadata` (agentid etc.). */
export async function connectRawAgent(port: number, pki: Pki, metadata: MetadataInit): Promise<RawPeer> {
  const client = await GrpcClient.connect({ host: "127.0.0.1", port, tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key } });
  return new RawPeer(client, client.openStream("/AgentService/Connect", metadata));
}

/** A fake agent that is registered (headers received) before it returns. */
export async function attachRawAgent(port: number, pki: Pki, agentId: string, identifiers = ""): Promise<RawPeer> {
  const agent = await connectRawAgent(port, pki, { agentid: agentId, agentidentifiers: identifiers });
  await agent.headers;
  return agent;
}

/** A fake kube-apiserver: one /ProxyService/Proxy stream over the gRPC frontend's Unix socket. */
export async function openRawFrontend(path: string): Promise<RawPeer> {
  const client = await GrpcClient.connect({ path });
  const peer = new RawPeer(client, client.openStream("/ProxyService/Proxy", {}));
  void peer.status.then(() => client.close());
  return peer;
}
