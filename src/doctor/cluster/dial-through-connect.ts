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
    let head = "";
    let status: number | null = null;
    let done = false;
    let bodyTimer: NodeJS.Timeout | undefined;
    const finish = (outcome: DialOutcome, message: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(bodyTimer);
      socket.destroy();
      resolve({ target, outcome, status, message: message.trim().split("\n")[0]!.slice(0, 500), elapsedMs: elapsed() });
    };
    const timer = setTimeout(() => finish("timeout", `no answer from the frontend within ${timeoutMs} ms (the dial is still pending in the tunnel)`), timeoutMs);
    const socket: Socket = "path" in frontend ? connect({ path: frontend.path }) : connect({ host: frontend.host, port: frontend.port });
    socket.setEncoding("utf8");
    socket.once("connect", () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nUser-Agent: nodetunnel-doctor\r\n\r\n`));
    socket.on("data", (chunk: string) => {
      head += chunk;
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      status ??= Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
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
      const body = head.slice(head.indexOf("\r\n\r\n") + 4);
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
