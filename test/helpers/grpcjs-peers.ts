// @grpc/grpc-js as the reference gRPC peer (DESIGN.md): a kube-apiserver-like client of
// /ProxyService/Proxy and a Konnectivity-like server of /AgentService/Connect. Packets are
// encoded and decoded by protobufjs from proto/konnectivity.proto, not by our codec, so these
// peers check our wire format independently.
import * as grpc from "@grpc/grpc-js";
import type { Packet } from "../../src/protocol/index.js";
import { PacketQueue } from "./packet-queue.js";
import { decodeWithProtobufjs, encodeWithProtobufjs } from "./protobufjs-reference.js";

export { decodeWithProtobufjs, encodeWithProtobufjs };

const identity = (b: Buffer) => b;
const bidi = (path: string, originalName: string) => ({
  path, originalName, requestStream: true, responseStream: true,
  requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
}) as const;
const proxyService = { Proxy: bidi("/ProxyService/Proxy", "proxy") } satisfies grpc.ServiceDefinition;
const agentService = { Connect: bidi("/AgentService/Connect", "connect") } satisfies grpc.ServiceDefinition;
const ProxyClient = grpc.makeGenericClientConstructor(proxyService, "ProxyService");
type ProxyStub = grpc.Client & { Proxy(md?: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer> };

/** One grpc-js /ProxyService/Proxy stream, as kube-apiserver's konnectivity-client opens per dial. */
export class GrpcJsFrontend {
  readonly packets = new PacketQueue();
  readonly status: Promise<grpc.StatusObject>;
  private readonly stream: grpc.ClientDuplexStream<Buffer, Buffer>;

  constructor(private readonly stub: ProxyStub) {
    this.stream = stub.Proxy(new grpc.Metadata());
    this.stream.on("data", (m: Buffer) => this.packets.push(decodeWithProtobufjs(m)));
    this.stream.on("error", () => {}); // the status says it
    this.status = new Promise((resolve) => this.stream.once("status", resolve));
    void this.status.then(() => this.packets.end());
  }

  static open(udsPath: string): GrpcJsFrontend {
    return new GrpcJsFrontend(new ProxyClient(`unix://${udsPath}`, grpc.credentials.createInsecure()) as unknown as ProxyStub);
  }

  send(p: Packet): void {
    this.stream.write(encodeWithProtobufjs(p));
  }

  end(): void {
    this.stream.end();
  }

  cancel(): void {
    this.stream.cancel();
  }

  close(): void {
    this.stream.cancel();
    this.stub.close();
  }
}

/** One agent stream as a grpc-js Konnectivity-like server sees it. */
export class GrpcJsAgentCall {
  readonly packets = new PacketQueue();
  /** The request metadata as grpc-js parsed it, key → values. */
  readonly metadata: Record<string, string[]>;

  constructor(readonly call: grpc.ServerDuplexStream<Buffer, Buffer>) {
    const md = call.metadata.getMap();
    this.metadata = Object.fromEntries(Object.keys(md).map((k) => [k, call.metadata.get(k).map(String)]));
    call.on("data", (m: Buffer) => this.packets.push(decodeWithProtobufjs(m)));
    call.on("error", () => {});
    call.on("end", () => this.packets.end());
    call.on("close", () => this.packets.end());
    call.on("cancelled", () => this.packets.end());
  }

  sendHeaders(serverId: string, serverCount: number): void {
    const md = new grpc.Metadata();
    md.set("serverID", serverId);
    md.set("serverCount", String(serverCount));
    this.call.sendMetadata(md);
  }

  send(p: Packet): void {
    this.call.write(encodeWithProtobufjs(p));
  }

  end(): void {
    this.call.end();
  }
}

export interface GrpcJsAgentServer {
  readonly port: number;
  /** Agent streams in the order they arrived. */
  readonly calls: GrpcJsAgentCall[];
  /** Resolves with the next agent stream (or one already waiting). */
  nextCall(timeoutMs?: number): Promise<GrpcJsAgentCall>;
  /** Kills the server and every stream (what a crashed server looks like to agents). */
  kill(): void;
}

/**
 * A Konnectivity-like server on grpc-js over TLS (client certificates requested). With
 * `autoHeaders` it sends serverid/servercount at once, as upstream does; otherwise the test
 * sends them with call.sendHeaders().
 */
export async function startGrpcJsAgentServer(o: {
  ca: string; cert: string; key: string; port?: number; autoHeaders?: { serverId: string; serverCount: number };
}): Promise<GrpcJsAgentServer> {
  const server = new grpc.Server();
  const calls: GrpcJsAgentCall[] = [];
  let taken = 0;
  let wake: (() => void) | undefined;
  server.addService(agentService, {
    Connect: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      const c = new GrpcJsAgentCall(call);
      if (o.autoHeaders) c.sendHeaders(o.autoHeaders.serverId, o.autoHeaders.serverCount);
      calls.push(c);
      wake?.();
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(Buffer.from(o.ca), [{ private_key: Buffer.from(o.key), cert_chain: Buffer.from(o.cert) }], false);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${o.port ?? 0}`, credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return {
    port,
    calls,
    async nextCall(timeoutMs = 5000) {
      const until = Date.now() + timeoutMs;
      while (calls.length <= taken) {
        const left = until - Date.now();
        if (left <= 0) throw new Error(`no agent stream within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      return calls[taken++]!;
    },
    kill() {
      server.forceShutdown();
    },
  };
}
