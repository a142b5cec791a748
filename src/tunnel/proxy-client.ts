// A client of the gRPC frontend, as kube-apiserver's konnectivity-client drives it: one HTTP/2
// connection and one /ProxyService/Proxy stream per dial, DIAL_REQ → DIAL_RSP, then DATA both
// ways, CLOSE_REQ → CLOSE_RSP. The result is a Duplex, so TLS or HTTP can run over it. Used by
// the demo, the benchmarks and `doctor cluster`.
import { Duplex } from "node:stream";
import {
  TunnelError, closeDial, closeRequest, dataPacket, decodePacket, dialRequest, encodePacket, type Packet,
} from "../protocol/index.js";
import { GrpcClient, grpcFrameHeaderBytes, type GrpcClientCall, type GrpcClientTarget } from "../transport/index.js";
import { randomBytes } from "node:crypto";

export interface ProxyDialOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Reuse one HTTP/2 connection for many dials (kube-apiserver's newer reusable tunnel). */
  readonly client?: GrpcClient;
}

class ProxyStreamDuplex extends Duplex {
  connectID = 0n;

  constructor(private readonly call: GrpcClientCall, private readonly ownsClient: GrpcClient | undefined) {
    super({ allowHalfOpen: false });
  }

  push2(packet: Packet): void {
    if (packet.type === "DATA") {
      if (!this.push(packet.data)) this.call.pause();
    } else if (packet.type === "CLOSE_RSP") {
      this.push(null);
      this.call.end();
    }
  }

  override _read(): void {
    this.call.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.call.writeFramed(encodePacket(dataPacket(this.connectID, chunk), grpcFrameHeaderBytes))) cb();
    else this.call.once("drain", () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.call.write(encodePacket(closeRequest(this.connectID)));
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.call.cancel();
    this.ownsClient?.close();
    cb(err);
  }
}

export async function dialThroughProxy(target: GrpcClientTarget, address: string, options: ProxyDialOptions = {}): Promise<Duplex> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const client = options.client ?? (await GrpcClient.connect(target, { connectTimeoutMs: timeoutMs, signal: options.signal }));
  const owned = options.client ? undefined : client;
  const call = client.openStream("/ProxyService/Proxy", {});
  const random = randomBytes(8).readBigUInt64BE() >> 1n;
  const duplex = new ProxyStreamDuplex(call, owned);
  return await new Promise<Duplex>((resolve, reject) => {
    let established = false;
    const timer = setTimeout(() => fail(new TunnelError("DIAL_TIMEOUT", `dial timeout, backstop (${timeoutMs} ms)`), true), timeoutMs);
    const fail = (err: Error, cancelDial = false) => {
      if (established) return;
      established = true;
      clearTimeout(timer);
      if (cancelDial) call.write(encodePacket(closeDial(random)));
      call.cancel();
      owned?.close();
      reject(err);
    };
    call.on("message", (message: Uint8Array) => {
      let packet: Packet;
      try {
        packet = decodePacket(message);
      } catch (err) {
        if (!established) fail(err as Error);
        else duplex.destroy(err as Error);
        return;
      }
      if (!established) {
        if (packet.type !== "DIAL_RSP" || packet.random !== random) return;
        if (packet.error !== "") return fail(new TunnelError("DIAL_FAILED", packet.error));
        established = true;
        clearTimeout(timer);
        duplex.connectID = packet.connectID;
        resolve(duplex);
        return;
      }
      duplex.push2(packet);
    });
    call.on("status", (s: { code: number; message: string }) => {
      if (!established) fail(new TunnelError("DIAL_FAILED", `stream ended before DIAL_RSP: status ${s.code} ${s.message}`));
      else duplex.push(null);
    });
    call.on("close", () => {
      if (established && !duplex.destroyed) duplex.destroy();
      owned?.close();
    });
    options.signal?.addEventListener("abort", () => fail(new TunnelError("CANCELLED", "dial cancelled"), true), { once: true });
    call.write(encodePacket(dialRequest(address, random)));
  });
}
