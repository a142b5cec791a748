// Upstream accepts any TLS client as an agent when neither --cluster-ca-cert nor token
// authentication is configured (shared/spec/konnectivity.md §1.7). Such an agent can register as
// any node and receive its kubelet traffic, so nodetunnel refuses to start that way unless the
// operator says so explicitly (issue 6 item 1).
import { TunnelError } from "../../protocol/index.js";

export interface AgentAuthenticationSettings {
  readonly agentTls?: { readonly ca?: unknown };
  readonly tokenAuth?: unknown;
  readonly insecureAllowAnyAgent: boolean;
}

/** Throws when agents would be unauthenticated without consent; returns the warning to log when consented. */
export function requireAgentAuthentication(o: AgentAuthenticationSettings): string | undefined {
  if (o.agentTls?.ca !== undefined || o.tokenAuth !== undefined) return undefined;
  if (!o.insecureAllowAnyAgent) {
    throw new TunnelError(
      "INVALID_OPTION",
      "agents would not be authenticated: give --cluster-ca-cert (agent mTLS) or --agent-namespace, --agent-service-account and " +
        "--authentication-audience (token authentication, with --kubeconfig or in-cluster), or, for a lab only, --insecure-allow-any-agent",
    );
  }
  return "--insecure-allow-any-agent: agents are not authenticated; any client that reaches the agent port can register as any node and receive its traffic";
}
