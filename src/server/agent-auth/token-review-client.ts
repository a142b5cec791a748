// One call of the Kubernetes TokenReview API (authentication.k8s.io/v1): "who is the holder of
// this token, for this audience?" (shared/spec/konnectivity.md §2.3). The server's identity needs
// the `system:auth-delegator` ClusterRole.
import { TunnelError } from "../../protocol/index.js";
import { kubeRequest, type KubeResponse } from "../leases/kube-request.js";
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

/**
 * Every agent Connect with a bearer token costs a review, and the agent port takes any TLS client
 * before its token is checked: without a bound, one unauthenticated connection kept hundreds of
 * reviews (each a new HTTPS connection to kube-apiserver) in flight. Upstream's client-go client
 * throttles them (5 QPS by default, --kubeconfig-qps); here they are bounded in flight, and the
 * agents waiting for a turn are bounded too: beyond, a review fails at once (LIMIT) and the agent
 * retries with its backoff. A reconnect storm of thousands of agents still passes within seconds.
 */
export interface TokenReviewLimits {
  /** Reviews sent to the API server at once; more wait their turn. */
  readonly maxInFlight?: number;
  /** Reviews waiting for a turn; beyond, review() fails at once with LIMIT. */
  readonly maxWaiting?: number;
}

export const defaultTokenReviewLimits = { maxInFlight: 32, maxWaiting: 1024 } as const;

const reviewPath = "/apis/authentication.k8s.io/v1/tokenreviews";

export class TokenReviewClient {
  private readonly maxInFlight: number;
  private readonly maxWaiting: number;
  private inFlight = 0;
  /** Reviews waiting for a turn, oldest first; a finishing review hands its turn to the first. */
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly config: KubeClientConfig, private readonly timeoutMs = 10_000, limits: TokenReviewLimits = {}) {
    this.maxInFlight = limits.maxInFlight ?? defaultTokenReviewLimits.maxInFlight;
    this.maxWaiting = limits.maxWaiting ?? defaultTokenReviewLimits.maxWaiting;
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1 || !Number.isInteger(this.maxWaiting) || this.maxWaiting < 0) {
      throw new TunnelError("INVALID_OPTION", `TokenReview limits must be integers, maxInFlight at least 1: ${JSON.stringify(limits)}`);
    }
  }

  get server(): string {
    return this.config.server;
  }

  /**
   * Resolves with the review's status; rejects UNAUTHENTICATED when the API cannot answer within
   * the timeout (waiting for a turn included), LIMIT when too many reviews already wait, and
   * CANCELLED when `signal` aborts.
   */
  async review(token: string, audiences: readonly string[], signal?: AbortSignal): Promise<TokenReviewResult> {
    const deadline = AbortSignal.timeout(this.timeoutMs);
    await this.takeTurn(signal, deadline);
    try {
      return await this.send(token, audiences, signal, deadline);
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    }
  }

  private takeTurn(signal: AbortSignal | undefined, deadline: AbortSignal): Promise<void> {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.maxWaiting) {
      return Promise.reject(new TunnelError("LIMIT",
        `TokenReview at ${this.config.server} not sent: ${this.inFlight} reviews in flight and ${this.waiting.length} waiting for a turn; retry`));
    }
    return new Promise<void>((resolve, reject) => {
      const stop = () => {
        const at = this.waiting.indexOf(turn);
        if (at >= 0) this.waiting.splice(at, 1);
        signal?.removeEventListener("abort", stop);
        deadline.removeEventListener("abort", stop);
        reject(signal?.aborted
          ? new TunnelError("CANCELLED", "TokenReview cancelled")
          : new TunnelError("UNAUTHENTICATED", `TokenReview at ${this.config.server} failed: no turn within ${this.timeoutMs} ms (${this.inFlight} reviews in flight)`));
      };
      // The turn is handed over with the slot: inFlight stays as it is.
      const turn = () => {
        signal?.removeEventListener("abort", stop);
        deadline.removeEventListener("abort", stop);
        resolve();
      };
      if (signal?.aborted) return stop();
      signal?.addEventListener("abort", stop, { once: true });
      deadline.addEventListener("abort", stop, { once: true });
      this.waiting.push(turn);
    });
  }

  private async send(token: string, audiences: readonly string[], signal: AbortSignal | undefined, deadline: AbortSignal): Promise<TokenReviewResult> {
    const c = this.config;
    const body = { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences } };
    const unavailable = (why: string, cause?: unknown) =>
      new TunnelError("UNAUTHENTICATED", `TokenReview at ${c.server} failed: ${why}`, { cause });
    let answer: KubeResponse;
    try {
      answer = await kubeRequest(c, { method: "POST", path: reviewPath, body, signal: signal ? AbortSignal.any([signal, deadline]) : deadline });
    } catch (err) {
      if (deadline.aborted) throw unavailable(`no answer within ${this.timeoutMs} ms`, err);
      if (signal?.aborted) throw new TunnelError("CANCELLED", "TokenReview cancelled", { cause: err });
      throw unavailable((err as Error).message, err);
    }
    const { status, text } = answer;
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
