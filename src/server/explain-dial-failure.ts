// The tunnel explains itself: a failed dial names its mechanism and the next step, in the text
// the frontend receives and in the server's log (issue: "the tunnel explains itself"). The
// wording of the mechanisms follows the doctor's (src/protocol/net-error.ts).
import { mechanismOfText, splitHostPort } from "../protocol/index.js";

export interface DialFailureContext {
  readonly address: string;
  /** host:port agents use to reach this server, for the egress hint. */
  readonly agentEndpoint: string;
}

export function explainAgentDialError(agentError: string, ctx: DialFailureContext): string {
  const target = splitHostPort(ctx.address);
  const port = target?.port ?? "the port";
  const node = target?.host ?? ctx.address;
  switch (mechanismOfText(agentError)) {
    case "timeout":
      return `the agent reached nothing at ${ctx.address} before its dial timeout; a firewall on the node or in the network drops port ${port} (NSG, ufw, iptables): run 'nodetunnel doctor node' on ${node}`;
    case "refused":
      return `${node} refused the connection: nothing listens on port ${port} (is the kubelet running?) or a firewall REJECTs it: run 'nodetunnel doctor node' on ${node}`;
    case "no-route":
      return `the agent has no route to ${node}, or a firewall answers with an ICMP unreachable: check the node is up and run 'nodetunnel doctor node' on ${node}`;
    case "dns":
      return `the agent could not resolve ${node}: use the node's IP address (kube-apiserver --kubelet-preferred-address-types=InternalIP) or fix DNS on the agent's node`;
    case "fd-limit":
      return "the agent ran out of file descriptors: raise its open-files limit or spread load over more agents";
    case "permission":
      return `the agent's own node forbids the connection (an OUTPUT rule or policy): run 'nodetunnel doctor node' on the agent's node`;
    default:
      if (/not allowed|denied by policy|allowed-destinations/i.test(agentError)) {
        return `the agent's --allowed-destinations policy refuses ${ctx.address}: widen it if this destination is legitimate`;
      }
      return `the agent could not connect to ${ctx.address}: run 'nodetunnel doctor explain "<this message>"' for the likely causes`;
  }
}

export function explainNoAgent(ctx: DialFailureContext): string {
  const node = splitHostPort(ctx.address)?.host ?? ctx.address;
  return `no connected agent serves ${node}; is the agent on that node running, and is egress from it to ${ctx.agentEndpoint} open? run 'nodetunnel doctor egress --server ${ctx.agentEndpoint}' on the node, or 'nodetunnel doctor cluster' here`;
}

export function explainAgentGone(agentId: string): string {
  return `agent ${agentId} disconnected before the dial completed; it will reconnect, retry the request`;
}

export function explainDialTimeout(timeoutMs: number, agentId: string): string {
  return `agent ${agentId} did not answer the dial within ${timeoutMs} ms; the agent may be overloaded or its stream stalled: check its health endpoint and logs`;
}

/** Appends an explanation the way every nodetunnel error text does: `<error> — <explanation>`; none: the error alone. */
export const withExplanation = (error: string, explanation: string): string => (explanation === "" ? error : `${error} — ${explanation}`);
