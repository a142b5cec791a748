// The agent's options: upstream's flags (shared/spec/konnectivity.md §2.4) and defaults, plus
// nodetunnel's: a list of servers, --allowed-destinations, the credit extension. Defaulted
// once, validated here, then frozen.
import { randomUUID } from "node:crypto";
import { isIPv6 } from "node:net";
import { TunnelError, parseAgentIdentifiers, type AgentIdentifiers } from "../protocol/index.js";
import { http2Implementations, type Http2Implementation, type ProxySettings } from "../transport/index.js";
import { defaultFlowOptions, type FlowOptions } from "../tunnel/index.js";
import { DestinationPolicy } from "./destination-policy.js";

export interface ServerTarget {
  readonly host: string;
  readonly port: number;
  /**
   * The name the server's certificate must carry when `host` is one of the addresses a DNS name
   * resolved to (an address is not what the certificate names).
   */
  readonly servername?: string;
  /**
   * The HTTP proxy to reach it through, decided on the configured name (HTTPS_PROXY, NO_PROXY)
   * before any lookup: an address the name resolves to is not what NO_PROXY lists.
   */
  readonly proxy?: URL;
}

export interface AgentOptions {
  readonly agentId: string;
  readonly identifiers: AgentIdentifiers;
  /** --agent-identifiers as given: sent verbatim in the `agentidentifiers` metadata, as upstream's agent does. */
  readonly identifiersText: string;
  /** Servers to connect to: one address (a load balancer, as upstream), several, or a DNS name with several addresses. */
  readonly servers: readonly ServerTarget[];
  readonly tls?: {
    readonly ca?: string | Buffer;
    /** Where `ca` was read from (--ca-cert), named when the server's certificate does not verify. */
    readonly caFile?: string;
    readonly cert?: string | Buffer;
    readonly key?: string | Buffer;
    /** Offered before "h2" (AKS routes its port 443 by ALPN "konnectivity"). */
    readonly alpnProtocols: readonly string[];
    readonly servername?: string;
  };
  /**
   * HTTPS_PROXY and NO_PROXY (transport/http-proxy.ts): servers not excluded are reached through
   * an HTTP CONNECT to this proxy, as upstream's agent (grpc-go) reaches them.
   */
  readonly proxy?: ProxySettings;
  /** Read again at every (re)connect, as upstream: projected tokens rotate. */
  readonly serviceAccountTokenPath?: string;
  readonly syncIntervalMs: number;
  readonly syncIntervalCapMs: number;
  readonly keepaliveTimeMs: number;
  /** No PING ack within this after a keepalive ping: the server (or the path) is dead (grpc-go's 20 s). */
  readonly keepaliveTimeoutMs: number;
  readonly dialTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** After DRAIN, how long existing connections may run before the agent stops. */
  readonly drainTimeoutMs: number;
  readonly healthListen?: { readonly port: number; readonly host?: string };
  readonly adminListen?: { readonly port: number; readonly host?: string };
  readonly policy: DestinationPolicy;
  readonly flow: FlowOptions;
  readonly creditFlowControl: boolean;
  /**
   * The HTTP/2 client under each server link: "builtin" (transport/http2-session.ts, less CPU per
   * MB, reads while it writes) or "node" (node:http2).
   */
  readonly serverHttp2: Http2Implementation;
  /**
   * Where the number of servers to hold comes from (upstream's --count-server-leases and
   * --server-count-source): "header" (the servers' `servercount`), "leases" (their valid Leases),
   * or "max" (the larger of the two).
   */
  readonly serverCountSource: ServerCountSource;
  /** How often the leases are counted when they are. */
  readonly leaseCountIntervalMs: number;
}

export type ServerCountSource = "header" | "leases" | "max";

export interface AgentOptionsInput extends Partial<Omit<AgentOptions, "identifiers" | "identifiersText" | "policy" | "flow" | "servers">> {
  readonly identifiers?: string;
  readonly allowedDestinations?: readonly string[];
  /** `host[,host...]`, each optionally `host:port`. */
  readonly proxyServerHost?: string;
  readonly proxyServerPort?: number;
  readonly flow?: Partial<FlowOptions>;
}

const invalid = (message: string): never => {
  throw new TunnelError("INVALID_OPTION", message);
};

export function resolveAgentOptions(input: AgentOptionsInput): AgentOptions {
  const port = input.proxyServerPort ?? 8091;
  if (!Number.isInteger(port) || port < 1 || port > 65535) invalid(`--proxy-server-port must be from 1 to 65535, not ${port}`);
  const hosts = (input.proxyServerHost ?? "127.0.0.1").split(",").map((h) => h.trim()).filter((h) => h !== "");
  if (hosts.length === 0) invalid("--proxy-server-host must name at least one server");
  const servers = hosts.map((h): ServerTarget => {
    // A bare IPv6 address, as upstream takes it (it joins host and port with net.JoinHostPort).
    if (isIPv6(h)) return { host: h, port };
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(h) ?? /^([^:]+)(?::(\d+))?$/.exec(h);
    if (!m) return invalid(`--proxy-server-host: "${h}" is not host, host:port, an IPv6 address or [IPv6]:port`);
    const p = m[2] === undefined ? port : Number(m[2]);
    if (p < 1 || p > 65535) invalid(`--proxy-server-host: port ${p} of "${h}" is out of range`);
    return { host: m[1]!, port: p };
  });
  let identifiers: AgentIdentifiers;
  try {
    identifiers = parseAgentIdentifiers(input.identifiers ?? "", { strict: true });
  } catch (err) {
    return invalid(`--agent-identifiers: ${(err as Error).message.replace(/^agent identifiers: /, "")}`);
  }
  const flow = { ...defaultFlowOptions, ...input.flow };
  const o: AgentOptions = {
    agentId: input.agentId || randomUUID(),
    identifiers,
    identifiersText: input.identifiers ?? "",
    servers,
    tls: input.tls,
    proxy: input.proxy,
    serviceAccountTokenPath: input.serviceAccountTokenPath || undefined,
    syncIntervalMs: input.syncIntervalMs ?? 1000,
    syncIntervalCapMs: input.syncIntervalCapMs ?? 10_000,
    keepaliveTimeMs: input.keepaliveTimeMs ?? 60 * 60 * 1000,
    keepaliveTimeoutMs: input.keepaliveTimeoutMs ?? 20_000,
    dialTimeoutMs: input.dialTimeoutMs ?? 5000,
    connectTimeoutMs: input.connectTimeoutMs ?? 10_000,
    drainTimeoutMs: input.drainTimeoutMs ?? 60_000,
    healthListen: input.healthListen,
    adminListen: input.adminListen,
    policy: DestinationPolicy.parse(input.allowedDestinations ?? []),
    flow,
    creditFlowControl: input.creditFlowControl ?? true,
    serverHttp2: checkServerHttp2(input.serverHttp2 ?? "builtin"),
    serverCountSource: input.serverCountSource ?? "header",
    leaseCountIntervalMs: input.leaseCountIntervalMs ?? 5_000,
  };
  if (o.syncIntervalMs <= 0) invalid("--sync-interval must be positive");
  if (o.syncIntervalCapMs < o.syncIntervalMs) invalid("--sync-interval-cap must be at least --sync-interval");
  if (o.dialTimeoutMs <= 0) invalid("--dial-timeout must be positive");
  if (o.keepaliveTimeoutMs <= 0) invalid("the keepalive timeout must be positive");
  if (o.tls && (o.tls.cert === undefined) !== (o.tls.key === undefined)) invalid("--agent-cert and --agent-key go together");
  for (const l of [o.healthListen, o.adminListen]) {
    if (l && (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535)) invalid(`port ${l.port} is out of range`);
  }
  return Object.freeze(o);
}

function checkServerHttp2(value: string): Http2Implementation {
  if (!(http2Implementations as readonly string[]).includes(value)) {
    return invalid(`--server-http2 must be one of ${http2Implementations.join(", ")}, not ${JSON.stringify(value)}`);
  }
  return value as Http2Implementation;
}
