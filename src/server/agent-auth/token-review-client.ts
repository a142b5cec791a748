// One call of the Kubernetes TokenReview API (authentication.k8s.io/v1): "who is the holder of
// this token, for this audience?" (shared/spec/konnectivity.md §2.3). The server's identity needs
// the `system:auth-delegator` ClusterRole.
import https from "node:https";
import { readFile } from "node:fs/promises";
import { TunnelError } from "../../protocol/index.js";
import type { KubeClientConfig } from "./kube-client-config.js";

export interface TokenReviewUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  /** e.g. `authentication.kubernetes.io/node-name` for a token bound to a pod. */
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

export interface TokenReviewResult {
  readonly authenticated: boolean;
  readonly user?: TokenReviewUser;
  readonly audiences: readonly string[];
  /** The API server's reason when not authenticated. */
  readonly error?: string;
}

const reviewPath = "/apis/authentication.k8s.io/v1/tokenreviews";
const maxResponseBytes = 1024 * 1024;

export class TokenReviewClient {
  constructor(private readonly config: KubeClientConfig, private readonly timeoutMs = 10_000) {}

  get server(): string {
    return this.config.server;
  }

  /** Resolves with the review's status; rejects (UNAUTHENTICATED) when the API cannot answer. */
  async review(token: string, audiences: readonly string[], signal?: AbortSignal): Promise<TokenReviewResult> {
    const c = this.config;
    let bearer = c.token;
    if (c.tokenFile) bearer = (await readFile(c.tokenFile, "utf8")).trim();
    const body = JSON.stringify({
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token, audiences },
    });
    const url = new URL(reviewPath, `${c.server}/`);
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const abort = signal ? AbortSignal.any([signal, deadline]) : deadline;
    const unavailable = (why: string, cause?: unknown) =>
      new TunnelError("UNAUTHENTICATED", `TokenReview at ${c.server} failed: ${why}`, { cause });
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request(url, {
        method: "POST",
        ca: c.ca,
        cert: c.cert,
        key: c.key,
        rejectUnauthorized: !c.insecureSkipTlsVerify,
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          "content-length": Buffer.byteLength(body),
          ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        },
        signal: abort,
        agent: false,
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxResponseBytes) {
            req.destroy(unavailable(`response larger than ${maxResponseBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", (err) => reject(unavailable(err.message, err)));
      });
      req.on("error", (err) => {
        if (deadline.aborted) reject(unavailable(`no answer within ${this.timeoutMs} ms`, err));
        else if (signal?.aborted) reject(new TunnelError("CANCELLED", "TokenReview cancelled", { cause: err }));
        else if (err instanceof TunnelError) reject(err);
        else reject(unavailable(err.message, err));
      });
      req.end(body);
    });
    if (status !== 201 && status !== 200) {
      throw unavailable(`HTTP ${status}${status === 401 || status === 403 ? " (does the server's identity have the system:auth-delegator ClusterRole?)" : ""}: ${text.slice(0, 200)}`);
    }
    return parseTokenReviewStatus(text, unavailable);
  }
}

function parseTokenReviewStatus(text: string, unavailable: (why: string) => TunnelError): TokenReviewResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw unavailable("the answer is not JSON");
  }
  const status = (doc as { status?: unknown }).status;
  if (typeof status !== "object" || status === null) throw unavailable("the answer has no status");
  const s = status as { authenticated?: unknown; user?: unknown; audiences?: unknown; error?: unknown };
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
  let user: TokenReviewUser | undefined;
  if (typeof s.user === "object" && s.user !== null) {
    const u = s.user as { username?: unknown; uid?: unknown; groups?: unknown; extra?: unknown };
    const extra: Record<string, string[]> = {};
    if (typeof u.extra === "object" && u.extra !== null) {
      for (const [k, v] of Object.entries(u.extra)) extra[k] = strings(v);
    }
    user = {
      username: typeof u.username === "string" ? u.username : "",
      uid: typeof u.uid === "string" ? u.uid : undefined,
      groups: strings(u.groups),
      extra,
    };
  }
  return {
    authenticated: s.authenticated === true,
    user,
    audiences: strings(s.audiences),
    error: typeof s.error === "string" && s.error !== "" ? s.error : undefined,
  };
}
