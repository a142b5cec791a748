// One dial through the server's HTTP CONNECT frontend, as kube-apiserver's egress selector makes
// it (shared/spec/konnectivity.md §1.6), classified by what came back: the status line and the
// body the tunnel wrote (which names the mechanism: "i/o timeout", "connection refused", ...).
import { connect, type Socket } from "node:net";
import { mechanismOfText } from "../../protocol/index.js";

export type FrontendAddress = { readonly host: string; readonly port: number } | { readonly path: string };

export const dialOutcomes = ["ok", "no-agent", "timeout", "refused", "no-route", "limit", "frontend-down", "error"] as const;
export type DialOutcome = (typeof dialOutcomes)[number];

export interface DialResult {
  readonly target: string;
  readonly outcome: DialOutcome;
  /** The CONNECT response's status, null when none came. */
  readonly status: number | null;
  /** The first line of the frontend's error body (the tunnel's explanation), or our own reason. */
  readonly message: string;
  readonly elapsedMs: number;
  /**
   * "http2": the frontend answered with an HTTP/2 frame (a gRPC frontend's SETTINGS or GOAWAY),
   * not an HTTP/1.1 status line; absent otherwise.
   */
  readonly frontendSpeaks?: "http2";
}

// An HTTP/2 server's first frame on a connection: 9 bytes of header (24-bit length, type, flags,
// stream 0), SETTINGS (4) before anything else, or GOAWAY (7) for a connection that did not start
// with the HTTP/2 preface, as a CONNECT request does not (RFC 9113 §3.4, §6.5, §6.8).
export function isHttp2Answer(bytes: Uint8Array): boolean {
  if (bytes.length < 9 || bytes[0] !== 0) return false;
  const type = bytes[3];
  const streamZero = bytes[5] === 0 && bytes[6] === 0 && bytes[7] === 0 && bytes[8] === 0;
  return (type === 4 || type === 7) && streamZero;
}

export function classifyConnectResponse(status: number, body: string): DialOutcome {
  if (status === 200) return "ok";
  if (/no tunnels? available|no agent available|no connected agent/i.test(body)) return "no-agent";
  switch (mechanismOfText(body.split(" — ")[0]!)) {
    case "timeout":
      return "timeout";
    case "refused":
      return "refused";
    case "no-route":
      return "no-route";
    default:
      if (status === 504) return "timeout";
      if (status === 503) return "limit";
      return "error";
  }
}

export function dialThroughConnect(frontend: FrontendAddress, target: string, timeoutMs: number): Promise<DialResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let head = Buffer.alloc(0);
    let status: number | null = null;
    let done = false;
    let bodyTimer: NodeJS.Timeout | undefined;
    const finish = (outcome: DialOutcome, message: string, speaks?: "http2") => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(bodyTimer);
      socket.destroy();
      resolve({ target, outcome, status, message: message.trim().split("\n")[0]!.slice(0, 500), elapsedMs: elapsed(), ...(speaks ? { frontendSpeaks: speaks } : {}) });
    };
    const timer = setTimeout(() => finish("timeout", `no answer from the frontend within ${timeoutMs} ms (the dial is still pending in the tunnel)`), timeoutMs);
    const socket: Socket = "path" in frontend ? connect({ path: frontend.path }) : connect({ host: frontend.host, port: frontend.port });
    socket.once("connect", () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nUser-Agent: nodetunnel-doctor\r\n\r\n`));
    socket.on("data", (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      // A gRPC frontend answers in HTTP/2 and closes: no status line will come.
      if (status === null && isHttp2Answer(head)) {
        finish("frontend-down", "the frontend answered in HTTP/2 (a gRPC frontend), not HTTP CONNECT", "http2");
        return;
      }
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      status ??= Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.toString("latin1"))?.[1] ?? 0);
      // 200: the tunnel reached the kubelet; nothing more to read (the doctor sends no bytes to it).
      if (status === 200) finish("ok", "connection established");
      // An error body has no length; the frontend closes after it, but do not rely on that.
      else {
        clearTimeout(bodyTimer);
        bodyTimer = setTimeout(settle, 300);
      }
    });
    const settle = () => {
      if (status === null) {
        finish("frontend-down", "the frontend closed the connection without an answer");
        return;
      }
      const body = head.subarray(head.indexOf("\r\n\r\n") + 4).toString("utf8");
      finish(classifyConnectResponse(status, body), body || `HTTP ${status}`);
    };
    socket.on("end", settle);
    socket.on("close", settle);
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (status !== null) settle();
      else finish("frontend-down", `cannot reach the frontend: ${err.code ?? err.message}`);
    });
  });
}
