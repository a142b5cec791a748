// Error texts → mechanism and causes in order of likelihood. Ordered: the most specific texts
// (konnectivity's own, TLS, auth) before the generic socket errors they may wrap. Sources:
// troubleshooting.md §1.2 (the article's symptoms), §6.2 (error-string → cause map);
// konnectivity.md §1.5-§1.6 (server and client-library texts, CONNECT statuses), §4 (issues).
import type { ErrorContext } from "./extract-context.js";
import type { MechanismDetail } from "./mechanism.js";

export interface ErrorPattern {
  readonly name: string;
  readonly test: RegExp;
  /** The doctor's class; JSON reports it as `mechanismDetail` and its contract value as `mechanism`. */
  readonly mechanism: MechanismDetail;
  /** One sentence: what the text means. */
  readonly meaning: string;
  readonly causes: (ctx: ErrorContext) => readonly string[];
}

/** Per mechanism of a plain dial error, by the leg it happened on (§6.2). */
export function dialCauses(mechanism: MechanismDetail, ctx: ErrorContext): readonly string[] {
  const server = ctx.leg === "server";
  switch (mechanism) {
    case "timeout":
      return server ? ["egress", "snat", "nsg"] : ["nsg", "ufw", "iptables", "nftables", "node-down"];
    case "refused":
      return server ? ["server-down", "egress"] : ["kubelet-down", "iptables", "ufw", "nftables"];
    case "no-route":
      return server ? ["egress"] : ["iptables", "nftables", "node-down"];
    case "reset":
      return server ? ["reset", "tls-inspection", "snat"] : ["kubelet-down", "reset"];
    case "dns":
      return server ? ["dns", "egress"] : ctx.port === 10250 || ctx.nodeName ? ["node-name-dns", "dns"] : ["dns"];
    case "fd-limit":
      return ["fd-limit"];
    case "permission":
      return ["egress-local"];
    default:
      return [];
  }
}

const dial = (mechanism: MechanismDetail) => (ctx: ErrorContext) => dialCauses(mechanism, ctx);

export const errorPatterns: readonly ErrorPattern[] = [
  // nodetunnel's own error codes (src/protocol/tunnel-error.ts).
  { name: "nodetunnel NO_AGENT", test: /\bNO_AGENT\b/, mechanism: "no-agent", meaning: "No agent can serve this destination.", causes: () => ["egress", "agent-down", "snat", "agent-auth"] },
  { name: "nodetunnel AGENT_GONE / DRAINING", test: /\b(?:AGENT_GONE|DRAINING)\b/, mechanism: "no-agent", meaning: "The agent serving this connection went away or is draining.", causes: () => ["agent-down", "reset", "snat"] },
  { name: "nodetunnel DIAL_TIMEOUT", test: /\bDIAL_TIMEOUT\b/, mechanism: "timeout", meaning: "The agent did not answer the dial in time.", causes: (c) => ["agent-scale", ...dialCauses("timeout", c)] },
  { name: "nodetunnel DESTINATION_DENIED", test: /\bDESTINATION_DENIED\b/, mechanism: "permission", meaning: "The agent's destination policy refused the address.", causes: () => ["agent-policy"] },
  { name: "nodetunnel SLOW_CONSUMER", test: /\bSLOW_CONSUMER\b/, mechanism: "reset", meaning: "The tunnel closed one connection whose reader fell too far behind.", causes: () => ["slow-consumer"] },
  { name: "nodetunnel UNAUTHENTICATED / PERMISSION_DENIED", test: /\b(?:UNAUTHENTICATED|PERMISSION_DENIED)\b/, mechanism: "auth", meaning: "The tunnel server rejected the agent's credentials.", causes: () => ["agent-auth"] },

  // Plain HTTP where TLS was expected (the article's third symptom, §1.2; §1.4: no cause given there).
  { name: "HTTP response to HTTPS client", test: /server gave HTTP response to HTTPS client|first record does not look like a TLS handshake/i, mechanism: "not-tls",
    meaning: "Something that speaks plain HTTP answered where TLS was expected.",
    causes: (c) => c.leg === "server" ? ["proxy", "egress"] : ["port-hijack", "proxy"] },

  // Konnectivity server and client-library texts (konnectivity.md §1.5, §1.6, §2.5).
  { name: "No agent available", test: /no agent available|currently no tunnels available|no connection to any proxy agent/i, mechanism: "no-agent",
    meaning: "The tunnel server has no agent connected that can serve this destination.",
    causes: () => ["egress", "agent-down", "snat", "agent-auth"] },
  { name: "agent not connected to any server", test: /no servers connected|server-connected failed/i, mechanism: "no-agent",
    meaning: "The agent is running but not connected to any tunnel server.",
    causes: () => ["egress", "agent-auth", "snat", "tls-inspection"] },
  { name: "dial timeout, backstop", test: /dial timeout, backstop/i, mechanism: "timeout",
    meaning: "kube-apiserver waited 30 s for the dial answer: the agent or the server is stuck, not the node (the agent's own dial gives up after 5 s).",
    causes: () => ["agent-scale", "agent-down", "server-down"] },
  { name: "dial timeout, context", test: /dial timeout, context/i, mechanism: "timeout",
    meaning: "The caller's deadline expired before the tunnel answered the dial.",
    causes: (c) => ["agent-scale", "agent-down", ...dialCauses("timeout", c).slice(0, 2)] },
  { name: "backend dial timeout", test: /timed out waiting for backend dial|backend dial timeout/i, mechanism: "timeout",
    meaning: "The tunnel server's --backend-dial-timeout expired waiting for the agent.",
    causes: () => ["agent-scale", "agent-down"] },
  { name: "Backend context error", test: /backend context error/i, mechanism: "no-agent",
    meaning: "The agent's stream ended before it answered the dial.",
    causes: () => ["agent-down", "reset", "snat"] },
  { name: "Failed to tunnel dial request", test: /failed to tunnel dial request/i, mechanism: "no-agent",
    meaning: "The tunnel server could not send the dial to the agent.",
    causes: () => ["agent-down", "agent-scale"] },
  { name: "connection-ID race", test: /unrecognized connectID|unknown connectID|backend (?:not initialized|uninitialized)/i, mechanism: "reset",
    meaning: "A packet arrived for a connection that is already closed or never opened.",
    causes: () => ["close-race"] },
  { name: "kube-apiserver cannot reach the tunnel server's socket", test: /dial unix \S+: connect: (?:no such file or directory|connection refused)/i, mechanism: "refused",
    meaning: "kube-apiserver cannot open the tunnel server's Unix socket: the server is not running or uses another path.",
    causes: () => ["server-down"] },

  { name: "error dialing backend: EOF", test: /error dialing backend: (?:unexpected )?EOF/i, mechanism: "reset",
    meaning: "The egress path (tunnel server or agent) closed the connection before the dial completed.",
    causes: () => ["agent-down", "server-down", "kubelet-down"] },

  // TLS.
  { name: "x509 unknown authority", test: /x509: certificate signed by unknown authority/i, mechanism: "tls",
    meaning: "The peer's certificate is signed by a CA the client does not trust.",
    causes: (c) => c.leg === "destination" ? ["ca-mismatch", "proxy"] : ["tls-inspection", "ca-mismatch"] },
  { name: "x509 expired", test: /x509: certificate has expired or is not yet valid/i, mechanism: "tls", meaning: "A certificate is outside its validity period.", causes: () => ["cert-expired"] },
  { name: "x509 name mismatch", test: /x509: certificate is valid for .*, not |x509: cannot validate certificate for/i, mechanism: "tls", meaning: "The certificate does not name the dialled address.", causes: () => ["cert-name", "proxy"] },
  { name: "TLS bad certificate", test: /remote error: tls: (?:bad certificate|unknown certificate authority|certificate required|expired certificate)/i, mechanism: "tls",
    meaning: "The server refused the client's certificate.", causes: () => ["client-cert", "tls-inspection"] },
  { name: "TLS no ALPN", test: /no application protocol/i, mechanism: "tls", meaning: "Client and server share no ALPN protocol.", causes: () => ["alpn", "tls-inspection"] },
  { name: "TLS handshake failure", test: /tls: handshake failure|remote error: tls:|tls: protocol version not supported|ssl_error|SSL routines/i, mechanism: "tls",
    meaning: "The TLS handshake failed.", causes: () => ["tls-inspection", "alpn", "client-cert"] },
  { name: "TLS handshake timeout", test: /TLS handshake timeout/i, mechanism: "tls",
    meaning: "TCP connected but the TLS handshake never finished: a stuck peer or a middlebox.",
    causes: (c) => c.leg === "server" ? ["tls-inspection", "egress", "snat"] : ["agent-down", "tls-inspection", "snat"] },

  // Authentication and authorization.
  { name: "You must be logged in", test: /you must be logged in to the server/i, mechanism: "auth",
    meaning: "Credentials were rejected (401).",
    causes: (c) => /pods\/(?:log|exec|attach|portforward)|containerLogs|\( ?pods/i.test(c.raw) ? ["kubelet-auth", "user-credentials"] : ["user-credentials", "kubelet-auth"] },
  { name: "Forbidden for the kubelet client", test: /Forbidden \(user=\S+, verb=\S+, resource=nodes/i, mechanism: "auth",
    meaning: "The kubelet refused kube-apiserver's request (403).", causes: () => ["kubelet-authz"] },
  { name: "Forbidden", test: /\bforbidden\b|PermissionDenied|code = PermissionDenied/i, mechanism: "auth",
    meaning: "The request was understood but not permitted (403).",
    causes: (c) => c.leg === "server" || /rpc error/i.test(c.raw) ? ["agent-auth"] : ["rbac", "kubelet-authz"] },
  { name: "Unauthorized", test: /\bunauthori[sz]ed\b|code = Unauthenticated/i, mechanism: "auth",
    meaning: "Credentials were missing or rejected (401).",
    causes: (c) => c.leg === "server" || /rpc error|agent/i.test(c.raw) ? ["agent-auth"] : ["user-credentials", "agent-auth"] },

  // Socket errors, Go's new and old wording and curl's (§6.2; Go before 1.8 said `getsockopt:`).
  { name: "too many open files", test: /too many open files|EMFILE|ENFILE/, mechanism: "fd-limit", meaning: "A process ran out of file descriptors.", causes: dial("fd-limit") },
  { name: "timeout", test: /i\/o timeout|connection timed out|operation timed out|context deadline exceeded|ETIMEDOUT|timed out after|Connection timed out/i, mechanism: "timeout",
    meaning: "The SYN got no answer: a silent drop (NSG deny, ufw deny or DROP policy, iptables DROP) or a black-holed route.", causes: dial("timeout") },
  { name: "connection refused", test: /connection refused|ECONNREFUSED/i, mechanism: "refused",
    meaning: "The peer answered with RST or ICMP port-unreachable: a REJECT rule, or nothing listening.", causes: dial("refused") },
  { name: "no route to host", test: /no route to host|network is unreachable|host is unreachable|EHOSTUNREACH|ENETUNREACH/i, mechanism: "no-route",
    meaning: "An ICMP host-unreachable/-prohibited came back (a REJECT with icmp-host-prohibited), or ARP/routing failed.", causes: dial("no-route") },
  { name: "connection reset", test: /connection reset by peer|ECONNRESET|\bEOF\b/, mechanism: "reset", meaning: "The connection was reset or closed mid-way.", causes: dial("reset") },
  { name: "DNS", test: /no such host|server misbehaving|could not resolve (?:host|proxy)|ENOTFOUND|EAI_AGAIN|name or service not known|Temporary failure in name resolution/i, mechanism: "dns",
    meaning: "A name could not be resolved.", causes: dial("dns") },
  { name: "permission denied", test: /connect: (?:permission denied|operation not permitted)|EACCES|EPERM/, mechanism: "permission",
    meaning: "The sending host's own firewall refused the connection locally.", causes: dial("permission") },

  // HTTP CONNECT status with no body (konnectivity.md §1.6 status mapping; KAS `proxy error from ...`; curl).
  { name: "CONNECT 500", test: /(?:code|HTTP code|response) 500\b/i, mechanism: "no-agent",
    meaning: "The tunnel server answered CONNECT with 500: no agent for the destination.", causes: () => ["egress", "agent-down", "snat"] },
  { name: "CONNECT 504", test: /(?:code|HTTP code|response) 504\b/i, mechanism: "timeout",
    meaning: "The tunnel server answered CONNECT with 504: the agent's dial timed out.", causes: (c) => [...dialCauses("timeout", { ...c, leg: "destination" }), "agent-scale"] },
  { name: "CONNECT 503", test: /(?:code|HTTP code|response) 503\b/i, mechanism: "fd-limit",
    meaning: "The tunnel server answered CONNECT with 503: the agent ran out of file descriptors.", causes: () => ["fd-limit"] },
  { name: "CONNECT 502", test: /(?:code|HTTP code|response) 502\b/i, mechanism: "refused",
    meaning: "The tunnel server answered CONNECT with 502: the agent's dial failed other than by timeout (most often refused; also unreachable, reset, DNS) or the agent went away.",
    causes: (c) => [...dialCauses("refused", { ...c, leg: "destination" }), "agent-down"] },

  // A bare `error dialing backend` with no tail: the tunnel itself failed.
  { name: "error dialing backend", test: /error dialing backend/i, mechanism: "no-agent",
    meaning: "kube-apiserver could not open a connection to the node through its egress path.", causes: () => ["agent-down", "server-down", "egress"] },
];
