// Agent token authentication as upstream does it (shared/spec/konnectivity.md §2.3): a TokenReview
// with the configured audience must say `authenticated`, for the user
// `system:serviceaccount:<--agent-namespace>:<--agent-service-account>`. Each failure names its
// reason, which the server sends back to the agent and logs.
import { TunnelError } from "../../protocol/index.js";
import type { TokenReviewClient, TokenReviewUser } from "./token-review-client.js";

export interface TokenAuthenticatorOptions {
  readonly agentNamespace: string;
  readonly agentServiceAccount: string;
  readonly audience: string;
}

export type TokenAuthenticator = (token: string, signal?: AbortSignal) => Promise<TokenReviewUser>;

export const serviceAccountUsername = (namespace: string, name: string): string => `system:serviceaccount:${namespace}:${name}`;

export function createTokenAuthenticator(
  client: Pick<TokenReviewClient, "review">,
  options: TokenAuthenticatorOptions,
): TokenAuthenticator {
  const expected = serviceAccountUsername(options.agentNamespace, options.agentServiceAccount);
  return async (token, signal) => {
    if (token.trim() === "") throw new TunnelError("UNAUTHENTICATED", "empty bearer token");
    const result = await client.review(token, [options.audience], signal);
    if (!result.authenticated || !result.user) {
      throw new TunnelError("UNAUTHENTICATED", `not authenticated by TokenReview${result.error ? `: ${result.error}` : ""} (audience ${options.audience})`);
    }
    // status.audiences must name ours (TokenReviewStatus, authentication.k8s.io/v1: a client that
    // sets spec.audiences validates it). Empty with authenticated=true means "valid for the API
    // server's own audience", the answer of a TokenReview server that ignored spec.audiences: a
    // token kube-apiserver accepts (any service-account token) is not one issued for this server.
    if (!result.audiences.includes(options.audience)) {
      throw new TunnelError("UNAUTHENTICATED", result.audiences.length > 0
        ? `token is for audiences ${result.audiences.join(", ")}, not ${options.audience}`
        : `the TokenReview did not confirm the audience ${options.audience} (status.audiences is empty: the API server checked the token against its own audience)`);
    }
    if (result.user.username !== expected) {
      throw new TunnelError("PERMISSION_DENIED", `token belongs to ${result.user.username || "(no user name)"}, not ${expected} (--agent-namespace/--agent-service-account)`);
    }
    return result.user;
  };
}
