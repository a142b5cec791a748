// gRPC metadata keys of the agent stream (upstream proto/header/header.go), lower-case as on the wire.

export const MetadataName = {
  /** agent → server: the agent's id; exactly one value. */
  agentId: "agentid",
  /** agent → server: URL-query-encoded identifiers (see agent-identifiers.ts); at most one value. */
  agentIdentifiers: "agentidentifiers",
  /** agent → server: `Bearer <service-account token>` when token authentication is used. */
  authorization: "authorization",
  /** server → agent, in the response headers before any packet: the server's id. */
  serverId: "serverid",
  /** server → agent: how many servers the agent should connect to. */
  serverCount: "servercount",
  /**
   * nodetunnel extension, both directions: the features a peer offers (comma list). A feature is
   * used only when both the agent's request and the server's response headers list it. Upstream
   * peers ignore unknown metadata, so it is safe to send. See docs/protocol.md.
   */
  features: "nodetunnel-features",
} as const;

/** Credit-based per-connection flow control (WINDOW_UPDATE packets). */
export const FEATURE_CREDIT = "credit-v1";
