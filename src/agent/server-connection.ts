// Opens one agent stream to one server: TLS (ALPN extras before "h2"), /AgentService/Connect with
// the connect metadata, and the server's response headers read before any packet, as upstream
// agents require (shared/spec/konnectivity.md §1.3).
import { readFile } from "node:fs/promises";
import { constants as http2Constants } from "node:http2";
import type { Logger } from "pino";
import {
  FEATURE_CREDIT, MetadataName, TunnelError,
} from "../protocol/index.js";
import { GrpcClient, type GrpcClientCall, type GrpcClientTarget } from "../transport/index.js";
import { GrpcPacketChannel, type CallEnds, type PacketChannel } from "../tunnel/index.js";
import type { AgentOptions, ServerTarget } from "./agent-options.js";

/** A client call's channel ends with a half-close, or cancels the call. */
const clientCallEnds: CallEnds<GrpcClientCall> = {
  finish: (call) => call.end(),
  abort: (call) => call.cancel(),
};

export interface ServerConnection {
  readonly channel: PacketChannel;
  readonly serverId: string;
  readonly serverCount: number;
  readonly credit: boolean;
  readonly alpnProtocol: string | undefined;
  /** Closes the HTTP/2 session under the stream. */
  close(): void;
  /**
   * Calls `listener` once when the server sends a graceful GOAWAY (NO_ERROR): it is going away
   * (grpc-go's GracefulStop), and its stream only serves what it already carries. A GOAWAY with
   * an error code ends the session instead, and with it the stream.
   */
  onGoingAway(listener: () => void): void;
}

/**
 * The token in --service-account-token-path, read again at every connect as upstream does (a
 * projected token rotates). A file that is not there yet or cannot be read is this machine's
 * problem, not the server's: INVALID_OPTION naming the flag (the agent keeps retrying, as the
 * kubelet may mount the token later).
 */
export async function readServiceAccountToken(path: string): Promise<string> {
  let token: string;
  try {
    token = (await readFile(path, "utf8")).trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file (ENOENT); a projected token appears once the kubelet has mounted it"
      : code === "EACCES" ? "permission denied (EACCES); the agent's user must be able to read it"
        : code === "EISDIR" ? "it is a directory (EISDIR); give the token file in it"
          : (code ?? (err as Error).message);
    throw new TunnelError("INVALID_OPTION", `cannot read --service-account-token-path ${path}: ${why}`, { cause: err });
  }
  if (token === "") throw new TunnelError("INVALID_OPTION", `--service-account-token-path ${path} is empty: the server would refuse the agent`);
  return token;
}

export async function connectToServer(target: ServerTarget, o: AgentOptions, signal?: AbortSignal, log?: Logger): Promise<ServerConnection> {
  const grpcTarget: GrpcClientTarget = o.tls
    ? {
        host: target.host,
        port: target.port,
        tls: { ca: o.tls.ca, cert: o.tls.cert, key: o.tls.key, servername: o.tls.servername ?? target.servername, alpn: [...o.tls.alpnProtocols] },
        proxy: target.proxy,
      }
    : { host: target.host, port: target.port, tls: {}, proxy: target.proxy };
  const metadata: Record<string, string> = {
    [MetadataName.agentId]: o.agentId,
    // Verbatim (validated at start-up): upstream's servers compare host values as given.
    [MetadataName.agentIdentifiers]: o.identifiersText,
  };
  if (o.creditFlowControl) metadata[MetadataName.features] = FEATURE_CREDIT;
  if (o.serviceAccountTokenPath) metadata[MetadataName.authorization] = `Bearer ${await readServiceAccountToken(o.serviceAccountTokenPath)}`;
  const client = await GrpcClient.connect(grpcTarget, {
    keepaliveTimeMs: o.keepaliveTimeMs,
    keepaliveTimeoutMs: o.keepaliveTimeoutMs,
    connectTimeoutMs: o.connectTimeoutMs,
    http2: o.serverHttp2,
    signal,
    // The client's own warnings (a keepalive that found the server dead) say why a stream ended.
    logger: log,
  });
  try {
    const call = client.openStream("/AgentService/Connect", metadata);
    const timeout = AbortSignal.timeout(o.connectTimeoutMs);
    const headers = await Promise.race([
      call.headers,
      new Promise<never>((_, reject) => {
        const fail = () => reject(new TunnelError("DIAL_TIMEOUT", `no response headers from ${target.host}:${target.port} within ${o.connectTimeoutMs} ms`));
        if (timeout.aborted) fail();
        timeout.addEventListener("abort", fail, { once: true });
      }),
    ]);
    const ids = headers.get(MetadataName.serverId) ?? [];
    const counts = headers.get(MetadataName.serverCount) ?? [];
    if (ids.length !== 1) throw new TunnelError("PROTOCOL", `server sent ${ids.length} serverid values, expected one`);
    if (counts.length !== 1 || !/^\d+$/.test(counts[0]!)) throw new TunnelError("PROTOCOL", `server sent servercount ${JSON.stringify(counts)}, expected one integer`);
    const features = (headers.get(MetadataName.features) ?? []).join(",").split(",").map((s) => s.trim());
    const credit = o.creditFlowControl && features.includes(FEATURE_CREDIT);
    const channel = new GrpcPacketChannel(call, clientCallEnds, { windowUpdates: credit });
    call.once("close", () => client.close());
    return {
      channel,
      serverId: ids[0]!,
      serverCount: Math.max(1, Number(counts[0])),
      credit,
      alpnProtocol: client.alpnProtocol,
      close: () => client.destroy(),
      onGoingAway: (listener) => {
        // grpc-go's GracefulStop sends two GOAWAYs (the first with the largest stream id): one call.
        const onGoaway = (errorCode: number) => {
          if (errorCode !== http2Constants.NGHTTP2_NO_ERROR) return;
          client.off("goaway", onGoaway);
          listener();
        };
        client.on("goaway", onGoaway);
      },
    };
  } catch (err) {
    client.destroy();
    throw err;
  }
}
