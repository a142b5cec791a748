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
    // An API server that ignored spec.audiences answers with other ones; that is not a yes for ours.
    if (result.audiences.length > 0 && !result.audiences.includes(options.audience)) {
      throw new TunnelError("UNAUTHENTICATED", `token is for audiences ${result.audiences.join(", ")}, not ${options.audience}`);
    }
    if (result.user.username !== expected) {
      throw new TunnelError("PERMISSION_DENIED", `token belongs to ${result.user.username || "(no user name)"}, not ${expected} (--agent-namespace/--agent-service-account)`);
    }
    return result.user;
  };
}
