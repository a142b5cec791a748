// The proxy server's options: upstream's flags (shared/spec/konnectivity.md §2.1) with their
// defaults, plus nodetunnel's additions. Defaulted once, validated here, then frozen.
import { randomUUID } from "node:crypto";
import { TunnelError } from "../protocol/index.js";
import { defaultFlowOptions, type FlowOptions } from "../tunnel/index.js";
import { defaultTlsPolicy, http2Implementations, type Http2Implementation, type TlsPolicy } from "../transport/index.js";
import type { IdentityBindingMode, IdentityMap } from "./agent-auth/index.js";

export type FrontendMode = "grpc" | "http-connect";
export type ProxyStrategy = "default" | "destHost" | "defaultRoute";
export const proxyStrategies: readonly ProxyStrategy[] = ["default", "destHost", "defaultRoute"];

export interface TlsFiles {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** When set, clients must present a certificate signed by it (mTLS). */
  readonly ca?: string | Buffer;
}

export type ListenTarget = { readonly path: string; readonly mode?: number } | { readonly port: number; readonly host?: string };

export interface FrontendConfig {
  readonly mode: FrontendMode;
  /** The flag that configured it, named in errors: "--uds-name" (the default for a path), "--server-port" (for a port) or "--frontend". */
  readonly flag?: string;
  readonly listen: ListenTarget;
  /** TCP only (a Unix socket is protected by its file mode). */
  readonly tls?: TlsFiles;
}

export interface TokenAuthOptions {
  readonly agentNamespace: string;
  readonly agentServiceAccount: string;
  readonly audience: string;
}

export interface ServerOptions {
  readonly serverId: string;
  readonly serverCount: number;
  readonly proxyStrategies: readonly ProxyStrategy[];
  readonly frontends: readonly FrontendConfig[];
  readonly agentListen: { readonly port: number; readonly host?: string };
  /** The agent listener's TLS; `ca` requires and verifies agent client certificates. */
  readonly agentTls?: TlsFiles;
  readonly tokenAuth?: TokenAuthOptions;
  /**
   * Whether agents may only claim identities their credential allows (docs/security.md):
   * "strict", "off", or undefined = enforced for credentials that carry identities.
   */
  readonly identityBinding?: IdentityBindingMode;
  /** `--agent-identity-map`, parsed: identities for credentials that do not name them. */
  readonly identityMap?: IdentityMap;
  /** Consent to run with neither agent mTLS nor token authentication (checked by requireAgentAuthentication). */
  readonly insecureAllowAnyAgent: boolean;
  readonly healthListen?: { readonly port: number; readonly host?: string };
  readonly adminListen?: { readonly port: number; readonly host?: string };
  /** How long a pending dial waits for the agent's DIAL_RSP (upstream --backend-dial-timeout; on here by default, 0 = off). */
  readonly dialTimeoutMs: number;
  /** A client whose CLOSE_REQ the agent does not answer is forgotten after this. */
  readonly closeTimeoutMs: number;
  readonly maxPendingDials: number;
  readonly maxPendingDialsPerAgent: number;
  readonly maxConnections: number;
  /** Dials per second the server accepts (a token bucket with `dialBurst`); 0 turns the limit off. */
  readonly maxDialsPerSecond: number;
  readonly dialBurst: number;
  readonly keepaliveTimeMs: number;
  /** No PING ack within this after a keepalive ping: the agent (or the path) is dead (grpc-go's 20 s). */
  readonly keepaliveTimeoutMs: number;
  readonly frontendKeepaliveTimeMs: number;
  /**
   * The HTTP/2 implementation of the gRPC frontend: "builtin" (transport/http2-session.ts,
   * a few KiB per connection) or "node" (node:http2, ~22 KiB more per connection).
   */
  readonly frontendHttp2: Http2Implementation;
  /**
   * The HTTP/2 implementation of the agent port: "builtin" (~66 KiB per connected agent, measured
   * with 2,000 agents) or "node" (node:http2, ~91 KiB: nghttp2 holds ~23 KiB per session).
   */
  readonly agentHttp2: Http2Implementation;
  /** An HTTP CONNECT client must send its whole request head within this (upstream's ReadHeaderTimeout, 60 s). */
  readonly frontendHeaderTimeoutMs: number;
  readonly gracefulShutdownTimeoutMs: number;
  readonly deleteExistingUdsFile: boolean;
  readonly flow: FlowOptions;
  /** Offer the credit flow-control extension to agents that ask for it. */
  readonly creditFlowControl: boolean;
  /** Append what a failed dial means and what to check to the error text frontends receive (upstream: the text alone). */
  readonly explainDialErrors: boolean;
  /** Lowest TLS version and suites of every TLS listener (upstream's --tls-min-version, --cipher-suites). */
  readonly tlsPolicy: TlsPolicy;
}

export type ServerOptionsInput = Partial<Omit<ServerOptions, "flow">> & { flow?: Partial<FlowOptions> };

const defaults: Omit<ServerOptions, "serverId" | "frontends"> = {
  serverCount: 1,
  proxyStrategies: ["default"],
  agentListen: { port: 8091 },
  dialTimeoutMs: 10_000,
  closeTimeoutMs: 10_000,
  maxPendingDials: 10_000,
  maxPendingDialsPerAgent: 5_000,
  maxConnections: 100_000,
  maxDialsPerSecond: 5_000,
  dialBurst: 10_000,
  // Upstream pings agents after 1 h; a dead or half-open agent then keeps receiving dials that
  // hang (upstream #152). 30 s finds it within a minute; grpc-go agents accept server pings at
  // any rate (only servers enforce a minimum), so this is safe with upstream agents.
  keepaliveTimeMs: 30_000,
  keepaliveTimeoutMs: 20_000,
  frontendKeepaliveTimeMs: 60 * 60 * 1000,
  frontendHttp2: "builtin",
  agentHttp2: "builtin",
  frontendHeaderTimeoutMs: 60_000,
  gracefulShutdownTimeoutMs: 0,
  deleteExistingUdsFile: true,
  insecureAllowAnyAgent: false,
  flow: defaultFlowOptions,
  creditFlowControl: true,
  explainDialErrors: true,
  tlsPolicy: defaultTlsPolicy,
};

const invalid = (message: string): never => {
  throw new TunnelError("INVALID_OPTION", message);
};

const checkPort = (name: string, port: number) => {
  if (!Number.isInteger(port) || port < 0 || port > 65535) invalid(`${name} must be a port number from 0 to 65535, not ${port}`);
};

const checkPositive = (name: string, value: number, allowZero = false) => {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) invalid(`${name} must be a positive number, not ${value}`);
};

export function resolveServerOptions(input: ServerOptionsInput): ServerOptions {
  const o: ServerOptions = {
    ...defaults,
    ...input,
    serverId: input.serverId || randomUUID(),
    frontends: input.frontends ?? [],
    flow: { ...defaults.flow, ...input.flow },
  };

  if (!Number.isInteger(o.serverCount) || o.serverCount < 1) invalid(`--server-count must be an integer of at least 1, not ${o.serverCount}`);
  if (o.proxyStrategies.length === 0) invalid("--proxy-strategies must name at least one strategy");
  for (const s of o.proxyStrategies) {
    if (!proxyStrategies.includes(s)) invalid(`--proxy-strategies: unknown strategy "${s}" (known: ${proxyStrategies.join(", ")})`);
  }
  if (new Set(o.proxyStrategies).size !== o.proxyStrategies.length) invalid(`--proxy-strategies lists a strategy twice: ${o.proxyStrategies.join(",")}`);
  if (o.frontends.length === 0) invalid("no frontend: give --uds-name, or --server-port with --server-cert/--server-key");
  // Two frontends on one socket path would meet at start as "another process serves it".
  const byPath = new Map<string, FrontendConfig>();
  for (const f of o.frontends) {
    if ("port" in f.listen) continue;
    const first = byPath.get(f.listen.path);
    if (first) invalid(`${first.flag ?? "--uds-name"} (${first.mode}) and ${f.flag ?? "--uds-name"} (${f.mode}) both listen on ${f.listen.path}: give each frontend its own socket`);
    byPath.set(f.listen.path, f);
  }
  for (const f of o.frontends) {
    if ("port" in f.listen) {
      checkPort(`--server-port (${f.mode})`, f.listen.port);
      // Cleartext TCP only on loopback (the demo, tests, a sidecar sharing the pod's network).
      if (!f.tls && !isLoopback(f.listen.host)) {
        invalid(`a TCP ${f.mode} frontend needs TLS unless it binds to loopback: give --server-cert and --server-key (and --server-ca-cert for mTLS), or use --uds-name`);
      }
      // Without client certificates, anyone who reaches the port could dial every node (upstream
      // requires --server-ca-cert in TCP mode).
      if (f.tls && f.tls.ca === undefined && !isLoopback(f.listen.host)) {
        invalid(`a TCP ${f.mode} frontend off loopback needs --server-ca-cert: kube-apiserver presents a client certificate, and without checking it anyone who reaches the port can dial every node`);
      }
    } else {
      if (f.listen.path === "") invalid("--uds-name must not be empty");
      if (f.tls) invalid("--uds-name cannot be combined with --server-cert/--server-key/--server-ca-cert (a Unix socket frontend has no TLS)");
      // The socket's mode is its only access control: never world-accessible, always usable by its owner.
      if (f.listen.mode !== undefined && (!Number.isInteger(f.listen.mode) || f.listen.mode < 0 || f.listen.mode > 0o777 || (f.listen.mode & 0o007) !== 0 || (f.listen.mode & 0o600) !== 0o600)) {
        invalid(`--uds-mode must be an octal file mode from 0600 to 0770 without access for others, not ${f.listen.mode.toString(8)}`);
      }
    }
  }
  checkPort("--agent-port", o.agentListen.port);

  if (o.healthListen) checkPort("--health-port", o.healthListen.port);
  if (o.adminListen) checkPort("--admin-port", o.adminListen.port);
  if (o.agentTls && o.tokenAuth && o.agentTls.ca) {
    invalid("--cluster-ca-cert (agent mTLS) and --agent-namespace/--agent-service-account/--authentication-audience (token authentication) are mutually exclusive");
  }
  if (o.identityBinding !== undefined && o.identityBinding !== "strict" && o.identityBinding !== "off") {
    invalid(`--identity-binding must be strict or off, not "${String(o.identityBinding)}"`);
  }
  if (o.tokenAuth) {
    const t = o.tokenAuth;
    if (!t.agentNamespace || !t.agentServiceAccount || !t.audience) {
      invalid("token authentication needs all of --agent-namespace, --agent-service-account and --authentication-audience");
    }
  }
  checkPositive("--backend-dial-timeout", o.dialTimeoutMs, true); // 0: off, as upstream
  checkPositive("--close-timeout", o.closeTimeoutMs);
  checkPositive("--max-pending-dials", o.maxPendingDials);
  checkPositive("--max-pending-dials-per-agent", o.maxPendingDialsPerAgent);
  checkPositive("--max-connections", o.maxConnections);
  checkPositive("--max-dial-rate", o.maxDialsPerSecond, true);
  checkPositive("--dial-burst", o.dialBurst);
  checkPositive("--keepalive-time", o.keepaliveTimeMs, true);
  checkPositive("--keepalive-timeout", o.keepaliveTimeoutMs);
  checkPositive("--frontend-header-timeout", o.frontendHeaderTimeoutMs);
  for (const [flag, value] of [["--frontend-http2", o.frontendHttp2], ["--agent-http2", o.agentHttp2]] as const) {
    if (!(http2Implementations as readonly string[]).includes(value)) {
      invalid(`${flag} must be one of ${http2Implementations.join(", ")}, not ${JSON.stringify(value)}`);
    }
  }
  checkPositive("--graceful-shutdown-timeout", o.gracefulShutdownTimeoutMs, true);
  const f = o.flow;
  if (f.chunkBytes < 1024 || f.chunkBytes > 1024 * 1024) invalid(`chunk size must be between 1 KiB and 1 MiB, not ${f.chunkBytes}`);
  if (f.maxQueueBytes < f.chunkBytes) invalid("the per-connection queue must hold at least one chunk");
  if (f.inFlightBytes < f.chunkBytes) invalid("the bytes in flight on an agent stream must be at least one chunk");
  if (f.slowConsumerBytes < f.creditWindowBytes) invalid("the slow-consumer cap must be at least the credit window");
  if (!(f.slowConsumerGraceMs >= 0)) invalid(`the slow-consumer grace period must be 0 or more milliseconds, not ${f.slowConsumerGraceMs}`);
  return Object.freeze({ ...o, frontends: Object.freeze([...o.frontends]), proxyStrategies: Object.freeze([...o.proxyStrategies]), flow: Object.freeze(f) });
}

export function isLoopback(host: string | undefined): boolean {
  return host !== undefined && (host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host));
}
