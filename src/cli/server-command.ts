// `nodetunnel server`: the proxy server, with upstream's flag names and defaults
// (shared/spec/konnectivity.md §2.1) so it can replace proxy-server in existing manifests.
import { Command } from "commander";
import { Registry, collectDefaultMetrics } from "prom-client";
import { startProcessIdleGc } from "./idle-gc.js";
import { proxyFor, redactedProxy, tlsPolicyFromGoNames, type Http2Implementation } from "../transport/index.js";
import { LeaseController, parseLeaseLabels, parseLeaseNamespace } from "../server/leases/index.js";
import { isIP } from "node:net";
import type { Logger } from "pino";
import { dashboardRoutes } from "../dashboard/index.js";
import {
  NodetunnelServer, resolveServerOptions, serverSnapshot, type FrontendConfig, type FrontendMode, type ProxyStrategy, type ServerDeps,
  type ServerOptions, type ServerOptionsInput, type TlsFiles,
} from "../server/index.js";
import {
  TokenReviewClient, createTokenAuthenticator, loadKubeClientConfig, parseIdentityMap, requireAgentAuthentication, type IdentityBindingMode, type KubeClientConfig,
} from "../server/agent-auth/index.js";
import type { CliIo } from "./cli-io.js";
import { envOption, ignoredUpstreamOption, klogFlags, readFlagFile, readTlsFlagFiles, runCommand, withCliErrors, UsageError } from "./command-support.js";
import { createLogger, serverTracers } from "./logger.js";
import { collectList, parseBoolean, parseDuration, parseInteger } from "./parse-values.js";
import { explainListenError, type FlagListener } from "./listen-error.js";
import { TlsFileWatcher, type TlsContents, type TlsFileSet, type TlsPart } from "./tls-reload.js";

/** Upstream flags nodetunnel accepts and ignores, so existing manifests start unchanged. */
const ignoredUpstreamFlags = [
  "enable-profiling", "enable-contention-profiling", "xfr-channel-size", "kubeconfig-qps", "kubeconfig-burst", "kube-api-content-type",
  "warn-on-channel-limit", ...klogFlags,
];

export interface ServerFlags {
  mode: string; udsName: string; deleteExistingUdsFile: string | true; serverPort: string; serverBindAddress: string;
  serverCert?: string; serverKey?: string; serverCaCert?: string;
  agentPort: string; agentBindAddress: string; clusterCert?: string; clusterKey?: string; clusterCaCert?: string;
  adminPort: string; adminBindAddress: string; healthPort: string; healthBindAddress: string;
  keepaliveTime: string; keepaliveTimeout: string; frontendKeepaliveTime: string; frontendHeaderTimeout: string; frontendHttp2: string; agentHttp2: string; serverId?: string; serverCount: string; proxyStrategies: string;
  agentNamespace?: string; agentServiceAccount?: string; authenticationAudience?: string; kubeconfig?: string;
  gracefulShutdownTimeout: string; backendDialTimeout: string; frontend?: string[]; maxPendingDials: string; maxConnections: string;
  maxDialRate: string; dialBurst: string;
  creditFlowControl: string | true; explainDialErrors: string | true; logLevel?: string;
  udsMode: string; identityBinding?: string; agentIdentityMap?: string; insecureAllowAnyAgent?: boolean; tokenReviewTimeout: string;
  tlsMinVersion?: string; cipherSuites?: string[];
  enableLeaseController?: string | true; leaseNamespace?: string; leaseLabel?: string;
  tlsReloadInterval?: string;
}

/** A certificate and key read together (both given: "go together" is checked before). */
function tlsFilesFrom(read: { cert?: Buffer; key?: Buffer; ca?: Buffer }): TlsFiles {
  if (!read.cert || !read.key) throw new UsageError("a certificate and its key go together");
  return { cert: read.cert, key: read.key, ca: read.ca };
}

/** The lease controller's settings from the flags, or undefined when it is off. Exported for tests. */
export function leaseSettingsFromFlags(f: Pick<ServerFlags, "enableLeaseController" | "leaseNamespace" | "leaseLabel">): { namespace: string; labels: Record<string, string> } | undefined {
  if (!parseBoolean("--enable-lease-controller", f.enableLeaseController ?? "false")) return undefined;
  try {
    return { namespace: parseLeaseNamespace(f.leaseNamespace ?? "kube-system"), labels: parseLeaseLabels(f.leaseLabel ?? "k8s-app=konnectivity-server") };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Flags → options input; what the operator should hear about (a flag value changed) goes to `notes`. Exported for tests. */
export function serverOptionsFromFlags(f: ServerFlags, notes: string[] = []): ServerOptionsInput {
  const mode = f.mode as FrontendMode;
  if (mode !== "grpc" && mode !== "http-connect") throw new UsageError(`--mode must be grpc or http-connect, not "${f.mode}"`);
  const serverPort = parseInteger("--server-port", f.serverPort, 0, 65535);
  if (!/^0?[0-7]{3}$/.test(f.udsMode)) throw new UsageError(`--uds-mode must be an octal file mode such as 0770, not "${f.udsMode}"`);
  const udsMode = parseInt(f.udsMode, 8);
  if (f.identityBinding !== undefined && f.identityBinding !== "strict" && f.identityBinding !== "off") {
    throw new UsageError(`--identity-binding must be strict or off, not "${f.identityBinding}"`);
  }
  const frontends: FrontendConfig[] = [];
  if ((f.serverCert === undefined) !== (f.serverKey === undefined)) throw new UsageError("--server-cert and --server-key go together");
  const serverTls = f.serverCert || f.serverKey
    ? tlsFilesFrom(readTlsFlagFiles({ cert: ["--server-cert", f.serverCert], key: ["--server-key", f.serverKey], ca: ["--server-ca-cert", f.serverCaCert] }))
    : undefined;
  if (f.udsName) {
    if (serverPort !== 0) throw new UsageError(`--uds-name requires --server-port=0 (got ${serverPort}), as upstream`);
    if (f.serverCert || f.serverKey || f.serverCaCert) throw new UsageError("--uds-name cannot be combined with --server-cert/--server-key/--server-ca-cert");
    frontends.push({ mode, flag: "--uds-name", listen: { path: f.udsName, mode: udsMode } });
  } else if (serverPort !== 0) {
    if (f.serverCaCert && !serverTls) throw new UsageError("--server-ca-cert needs --server-cert and --server-key");
    frontends.push({ mode, flag: "--server-port", listen: { port: serverPort, host: f.serverBindAddress || undefined }, tls: serverTls });
  }
  for (const spec of f.frontend ?? []) frontends.push(parseFrontendFlag(spec, serverTls, udsMode));
  if (frontends.length === 0) throw new UsageError("no frontend: give --uds-name with --server-port=0, a --server-port with --server-cert/--server-key, or --frontend");
  const strategies = f.proxyStrategies.split(",").map((s) => s.trim()).filter(Boolean) as ProxyStrategy[];
  if ((f.clusterCert === undefined) !== (f.clusterKey === undefined)) throw new UsageError("--cluster-cert and --cluster-key go together");
  const agentTls = f.clusterCert || f.clusterKey
    ? tlsFilesFrom(readTlsFlagFiles({ cert: ["--cluster-cert", f.clusterCert], key: ["--cluster-key", f.clusterKey], ca: ["--cluster-ca-cert", f.clusterCaCert] }))
    : undefined;
  if (f.clusterCaCert && !agentTls) throw new UsageError("--cluster-ca-cert needs --cluster-cert and --cluster-key");
  let tls: ReturnType<typeof tlsPolicyFromGoNames>;
  try {
    tls = tlsPolicyFromGoNames(f.tlsMinVersion ?? "", f.cipherSuites ?? []);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  notes.push(...tls.notes);
  const tokenFlags = [f.agentNamespace, f.agentServiceAccount, f.authenticationAudience];
  if (tokenFlags.some(Boolean) && !tokenFlags.every(Boolean)) {
    throw new UsageError("token authentication needs all of --agent-namespace, --agent-service-account and --authentication-audience");
  }
  return {
    serverId: f.serverId,
    serverCount: parseInteger("--server-count", f.serverCount, 1),
    proxyStrategies: strategies,
    frontends,
    agentListen: { port: parseInteger("--agent-port", f.agentPort, 0, 65535), host: f.agentBindAddress || undefined },
    agentTls,
    tokenAuth: f.agentNamespace ? { agentNamespace: f.agentNamespace, agentServiceAccount: f.agentServiceAccount!, audience: f.authenticationAudience! } : undefined,
    healthListen: { port: parseInteger("--health-port", f.healthPort, 0, 65535), host: f.healthBindAddress || undefined },
    adminListen: { port: parseInteger("--admin-port", f.adminPort, 0, 65535), host: f.adminBindAddress || undefined },
    keepaliveTimeMs: parseDuration("--keepalive-time", f.keepaliveTime),
    keepaliveTimeoutMs: parseDuration("--keepalive-timeout", f.keepaliveTimeout),
    frontendHeaderTimeoutMs: parseDuration("--frontend-header-timeout", f.frontendHeaderTimeout),
    frontendKeepaliveTimeMs: parseDuration("--frontend-keepalive-time", f.frontendKeepaliveTime),
    frontendHttp2: f.frontendHttp2 as Http2Implementation,
    agentHttp2: f.agentHttp2 as Http2Implementation,
    gracefulShutdownTimeoutMs: parseDuration("--graceful-shutdown-timeout", f.gracefulShutdownTimeout),
    dialTimeoutMs: parseDuration("--backend-dial-timeout", f.backendDialTimeout),
    maxPendingDials: parseInteger("--max-pending-dials", f.maxPendingDials, 1),
    maxConnections: parseInteger("--max-connections", f.maxConnections, 1),
    maxDialsPerSecond: parseInteger("--max-dial-rate", f.maxDialRate, 0),
    dialBurst: parseInteger("--dial-burst", f.dialBurst, 1),
    deleteExistingUdsFile: parseBoolean("--delete-existing-uds-file", f.deleteExistingUdsFile),
    creditFlowControl: parseBoolean("--credit-flow-control", f.creditFlowControl),
    explainDialErrors: parseBoolean("--explain-dial-errors", f.explainDialErrors),
    identityBinding: f.identityBinding as IdentityBindingMode | undefined,
    identityMap: f.agentIdentityMap ? parseIdentityMap(readFlagFile("--agent-identity-map", f.agentIdentityMap)!.toString("utf8"), `--agent-identity-map ${f.agentIdentityMap}`) : undefined,
    insecureAllowAnyAgent: f.insecureAllowAnyAgent === true,
    tlsPolicy: tls.policy,
  };
}

/**
 * Agent authentication for resolved options: refuses to run with none unless consented
 * (--insecure-allow-any-agent), and builds the TokenReview authenticator for token authentication.
 * Exported for tests.
 */
export async function agentAuthenticationDeps(
  options: ServerOptions, flags: Pick<ServerFlags, "kubeconfig" | "tokenReviewTimeout">, env: CliIo["env"],
): Promise<{ authenticateToken?: ServerDeps["authenticateToken"]; warning?: string; kubeConfig?: KubeClientConfig }> {
  const warning = requireAgentAuthentication(options);
  if (!options.tokenAuth) return { warning };
  const config = await loadKubeClientConfig(flags.kubeconfig, env);
  const client = new TokenReviewClient(config, parseDuration("--token-review-timeout", flags.tokenReviewTimeout));
  return { authenticateToken: createTokenAuthenticator(client, options.tokenAuth), warning, kubeConfig: config };
}

/** Says whether kube-apiserver (TokenReview, leases) is reached through HTTPS_PROXY, as the agent says it of its servers. */
function logApiProxy(log: Logger, config: KubeClientConfig | undefined): void {
  if (!config?.proxy) return;
  const url = new URL(config.server);
  const isProxied = proxyFor(config.proxy, url.hostname.replace(/^\[|\]$/g, ""), Number(url.port || 443)) !== undefined;
  log.info({ proxy: redactedProxy(config.proxy.url), noProxy: config.proxy.noProxy, apiServer: config.server }, isProxied
    ? "HTTPS_PROXY: kube-apiserver is reached through an HTTP CONNECT to the proxy"
    : "HTTPS_PROXY is set, but NO_PROXY (or loopback) excludes kube-apiserver: connecting directly");
}

/** `--frontend grpc=unix:/path`, `--frontend http-connect=tcp:127.0.0.1:8090` or `=tcp:8090` (TLS from --server-cert). */
function parseFrontendFlag(spec: string, tls: FrontendConfig["tls"], udsMode: number): FrontendConfig {
  const m = /^(grpc|http-connect)=(unix|tcp):(.+)$/.exec(spec);
  if (!m) throw new UsageError(`--frontend "${spec}": expected MODE=unix:PATH or MODE=tcp:[HOST:]PORT with MODE grpc or http-connect`);
  const mode = m[1] as FrontendMode;
  if (m[2] === "unix") return { mode, flag: "--frontend", listen: { path: m[3]!, mode: udsMode } };
  const hp = /^(?:(.+):)?(\d+)$/.exec(m[3]!);
  if (!hp || (hp[1] !== undefined && isIP(hp[1].replace(/^\[|\]$/g, "")) === 0 && hp[1] !== "localhost")) {
    throw new UsageError(`--frontend "${spec}": "${m[3]}" is not [HOST:]PORT`);
  }
  return { mode, flag: "--frontend", listen: { port: parseInteger("--frontend port", hp[2]!, 0, 65535), host: hp[1]?.replace(/^\[|\]$/g, "") }, tls };
}

export function serverCommand(io: CliIo): Command {
  const cmd = withCliErrors(new Command("server"), io, "nodetunnel server")
    .description("run the proxy server beside kube-apiserver (Konnectivity proxy-server compatible)")
    .addOption(envOption("--mode <mode>", "frontend protocol: grpc or http-connect", "grpc"))
    .addOption(envOption("--uds-name <path>", "Unix socket for the frontend (requires --server-port=0)", ""))
    .addOption(envOption("--delete-existing-uds-file [bool]", "delete a stale socket file before listening (one a running process serves stops the start instead)", "true"))
    .addOption(envOption("--server-port <port>", "frontend TCP port (0 with --uds-name)", "8090"))
    .addOption(envOption("--server-bind-address <ip>", "frontend bind address (default: all)", ""))
    .addOption(envOption("--server-cert <file>", "frontend TLS certificate"))
    .addOption(envOption("--server-key <file>", "frontend TLS key"))
    .addOption(envOption("--server-ca-cert <file>", "CA for frontend client certificates (mTLS)"))
    .addOption(envOption("--agent-port <port>", "port agents connect to", "8091"))
    .addOption(envOption("--agent-bind-address <ip>", "agent listener bind address (default: all)", ""))
    .addOption(envOption("--cluster-cert <file>", "TLS certificate agents see"))
    .addOption(envOption("--cluster-key <file>", "TLS key for --cluster-cert"))
    .addOption(envOption("--cluster-ca-cert <file>", "CA for agent client certificates (agent mTLS)"))
    .addOption(envOption("--tls-reload-interval <duration>", "read the --cluster-* and --server-* certificate, key and CA files again this often; handshakes after a change use the new files (0: never)", "30s"))
    .addOption(envOption("--admin-port <port>", "admin port (/metrics, dashboard)", "8095"))
    .addOption(envOption("--admin-bind-address <ip>", "admin bind address", "127.0.0.1"))
    .addOption(envOption("--health-port <port>", "health port (/healthz, /readyz, /metrics)", "8092"))
    .addOption(envOption("--health-bind-address <ip>", "health bind address (default: all)", ""))
    .addOption(envOption("--keepalive-time <duration>", "ping agents this often; a dead one is dropped after the keepalive timeout (upstream: 1h)", "30s"))
    .addOption(envOption("--keepalive-timeout <duration>", "drop an agent that does not acknowledge a keepalive PING in this time (grpc-go's default)", "20s"))
    .addOption(envOption("--frontend-keepalive-time <duration>", "ping frontends idle this long", "1h"))
    .addOption(envOption("--frontend-http2 <impl>", "HTTP/2 under the gRPC frontend: builtin (a few KiB per connection) or node (node:http2, ~22 KiB more per connection)", "builtin"))
    .addOption(envOption("--agent-http2 <impl>", "HTTP/2 under the agent port: builtin (~66 KiB per agent) or node (node:http2, ~91 KiB per agent)", "builtin"))
    .addOption(envOption("--frontend-header-timeout <duration>", "an HTTP CONNECT client must send its whole request head within this, or gets 408 (upstream's ReadHeaderTimeout)", "60s"))
    .addOption(envOption("--server-id <id>", "this server's id (default: $PROXY_SERVER_ID or a random UUID)", undefined, "PROXY_SERVER_ID"))
    .addOption(envOption("--server-count <n>", "servers agents should connect to", "1"))
    .addOption(envOption("--proxy-strategies <list>", "agent selection, tried in order: destHost, defaultRoute, default", "default"))
    .addOption(envOption("--agent-namespace <ns>", "namespace of the agents' service account (token authentication)"))
    .addOption(envOption("--agent-service-account <name>", "the agents' service account (token authentication)"))
    .addOption(envOption("--authentication-audience <aud>", "audience of the agents' tokens (token authentication)"))
    .addOption(envOption("--kubeconfig <file>", "kubeconfig for TokenReview (in-cluster when empty)"))
    .addOption(envOption("--token-review-timeout <duration>", "give up on a TokenReview (and refuse the agent) after this", "10s"))
    .addOption(envOption("--identity-binding <mode>", "strict: agents claim only identities their credential allows; off: any (upstream); not given: a certificate with SAN IPs (not loopback) binds the identifiers, an identity-map entry the identifiers and the agent id"))
    .addOption(envOption("--agent-identity-map <file>", "JSON/YAML: node/<name>, pod/<name>, cn/<name> or system:serviceaccount:<ns>:<sa> → allowed identifiers"))
    .option("--insecure-allow-any-agent", "run with neither agent mTLS nor token authentication (labs only; logged as a warning)")
    .addOption(envOption("--uds-mode <octal>", "file mode of Unix socket frontends (no access for others)", "0770"))
    .addOption(envOption("--graceful-shutdown-timeout <duration>", "on SIGTERM, let connections finish this long", "0s"))
    .addOption(envOption("--backend-dial-timeout <duration>", "fail a dial the agent has not answered in this time (upstream: off; here on; 0 turns it off)", "10s"))
    .addOption(envOption("--max-pending-dials <n>", "pending dials the server holds at most", "10000"))
    .addOption(envOption("--max-connections <n>", "established connections the server holds at most", "100000"))
    .addOption(envOption("--max-dial-rate <n>", "dials per second the server accepts (0: no limit); a flood beyond it gets 503", "5000"))
    .addOption(envOption("--dial-burst <n>", "dials accepted at once above the rate", "10000"))
    .addOption(envOption("--enable-lease-controller [bool]", "hold a Lease per server and delete expired ones, so agents with --count-server-leases count the servers (needs --kubeconfig or in-cluster credentials)", "false"))
    .addOption(envOption("--lease-namespace <ns>", "namespace of the servers' Leases", "kube-system"))
    .addOption(envOption("--lease-label <labels>", "labels of the servers' Leases, key=value[,key=value]", "k8s-app=konnectivity-server"))
    .addOption(envOption("--tls-min-version <version>", "lowest TLS version of the agent port and TLS frontends: VersionTLS12 or VersionTLS13 (VersionTLS10/11 are raised to 1.2)", ""))
    .addOption(envOption("--cipher-suites <list>", "TLS 1.2 suites of the agent port and TLS frontends, Go's names, comma-separated or repeated (TLS 1.3's stay on; default: Node's)").argParser(collectList))
    .addOption(envOption("--credit-flow-control [bool]", "offer per-connection credit flow control to nodetunnel agents", "true"))
    .addOption(envOption("--explain-dial-errors [bool]", "append what a failed dial means and what to check to the error frontends receive (false: the agent's text alone, as upstream)", "true"))
    .option("--frontend <mode=unix:path|tcp:[host:]port>", "an additional frontend (repeatable), e.g. grpc=unix:/run/nt.sock", collectList)
    .addOption(envOption("--log-level <level>", "trace, debug, info, warn, error", undefined, "NODETUNNEL_LOG_LEVEL"));
  for (const name of ignoredUpstreamFlags) cmd.addOption(ignoredUpstreamOption(name));
  cmd.addHelpText("after", `
Examples:
  # beside kube-apiserver, gRPC frontend on a Unix socket (kube-apiserver EgressSelectorConfiguration: GRPC + uds)
  nodetunnel server --uds-name=/etc/kubernetes/konnectivity-server/konnectivity-server.socket --server-port=0 \\
    --agent-port=8132 --admin-port=8133 --health-port=8134 --cluster-cert=server.crt --cluster-key=server.key \\
    --proxy-strategies=destHost,default --agent-namespace=kube-system --agent-service-account=konnectivity-agent \\
    --authentication-audience=system:konnectivity-server --kubeconfig=/etc/kubernetes/konnectivity-server.conf
  # HTTP CONNECT over mTLS TCP
  nodetunnel server --mode=http-connect --server-port=8131 --server-cert=s.crt --server-key=s.key --server-ca-cert=ca.crt ...

Most flags can also be set as NODETUNNEL_<FLAG> (e.g. NODETUNNEL_AGENT_PORT=8132; docs/flags.md lists which).
Environment: HTTPS_PROXY (or https_proxy) reaches kube-apiserver (TokenReview, Leases) through an HTTP CONNECT proxy, NO_PROXY (or no_proxy) excepted, as upstream's client-go does.
Signals: the first SIGTERM/SIGINT drains (graceful shutdown), the second exits at once.`);
  cmd.action(async (flags: ServerFlags) => {
    await runCommand(io, "nodetunnel server", async () => {
      for (const name of ignoredUpstreamFlags) {
        const key = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
        if ((flags as unknown as Record<string, unknown>)[key] !== undefined) io.stderr.write(`nodetunnel server: --${name} is accepted for compatibility and ignored\n`);
      }
      const notes: string[] = [];
      const options = resolveServerOptions(serverOptionsFromFlags(flags, notes));
      for (const note of notes) io.stderr.write(`nodetunnel server: ${note}\n`);
      const tlsReloadMs = parseDuration("--tls-reload-interval", flags.tlsReloadInterval ?? "30s");
      const log = createLogger(io, { level: flags.logLevel });
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      const leaseSettings = leaseSettingsFromFlags(flags);
      const auth = await agentAuthenticationDeps(options, flags, io.env);
      const leaseConfig = leaseSettings ? await loadKubeClientConfig(flags.kubeconfig, io.env, undefined, "--enable-lease-controller") : undefined;
      if (auth.warning) log.warn(auth.warning);
      logApiProxy(log, auth.kubeConfig ?? leaseConfig);
      // The dashboard reads the server it is served by (only asked once the server listens).
      const adminRoutes = dashboardRoutes(() => serverSnapshot(server.proxy));
      const server = await NodetunnelServer.start(options, { log, registry, adminRoutes, tracers: serverTracers(io, log), authenticateToken: auth.authenticateToken })
        .catch((err: unknown) => {
          throw explainListenError(err, serverListeners(options)) ?? err;
        });
      const idleGc = startProcessIdleGc(log);
      const tlsFiles = new TlsFileWatcher(serverTlsFileSets(flags, options, server), tlsReloadMs, log, registry);
      tlsFiles.start();
      const leases = leaseSettings && leaseConfig ? new LeaseController(leaseConfig, { serverId: options.serverId, ...leaseSettings }, log, registry) : undefined;
      leases?.start();
      await waitForSignals(io, async (first) => {
        if (first) {
          log.info({ deadlineMs: options.gracefulShutdownTimeoutMs }, "shutting down: draining");
          await server.close();
        } else server.destroy();
      });
      leases?.stop();
      tlsFiles.stop();
      idleGc.stop();
    });
  });
  return cmd;
}

/** Every listener of the server with the flags that configure it, for explainListenError. Exported for tests. */
export function serverListeners(o: ServerOptions): FlagListener[] {
  const listeners: FlagListener[] = [{ flag: "--agent-port", bindFlag: "--agent-bind-address", ...o.agentListen }];
  if (o.healthListen) listeners.push({ flag: "--health-port", bindFlag: "--health-bind-address", ...o.healthListen });
  if (o.adminListen) listeners.push({ flag: "--admin-port", bindFlag: "--admin-bind-address", ...o.adminListen });
  for (const f of o.frontends) {
    const isFrontendFlag = f.flag === "--frontend";
    if ("path" in f.listen) {
      listeners.push({ flag: f.flag ?? "--uds-name", path: f.listen.path, value: isFrontendFlag ? `${f.mode}=unix:${f.listen.path}` : undefined });
    } else {
      const { port, host } = f.listen;
      listeners.push(isFrontendFlag
        ? { flag: "--frontend", port, host, value: `${f.mode}=tcp:${host === undefined ? "" : `${host}:`}${port}` }
        : { flag: f.flag ?? "--server-port", bindFlag: "--server-bind-address", port, host });
    }
  }
  return listeners;
}

/** The server's TLS files, watched for rotation (tls-reload.ts): the agent port's and the TLS frontends'. */
function serverTlsFileSets(f: ServerFlags, options: ServerOptions, server: NodetunnelServer): TlsFileSet[] {
  const sets: TlsFileSet[] = [];
  const set = (name: string, listener: "agent" | "frontends", files: Array<[TlsPart, string, string | undefined]>, initial: TlsFiles) => {
    const watched: TlsFileSet["files"] = {};
    for (const [part, flag, path] of files) if (path) watched[part] = { flag, path };
    sets.push({ name, files: watched, initial: initial as TlsContents, apply: (contents) => server.reloadTls(listener, contents as TlsFiles) });
  };
  if (options.agentTls) {
    set("agent-port", "agent", [["cert", "--cluster-cert", f.clusterCert], ["key", "--cluster-key", f.clusterKey], ["ca", "--cluster-ca-cert", f.clusterCaCert]], options.agentTls);
  }
  const frontendTls = options.frontends.find((fr) => fr.tls)?.tls;
  if (frontendTls) {
    set("frontends", "frontends", [["cert", "--server-cert", f.serverCert], ["key", "--server-key", f.serverKey], ["ca", "--server-ca-cert", f.serverCaCert]], frontendTls);
  }
  return sets;
}

/** Resolves after the first signal's handler finished (or a second signal arrived). */
export async function waitForSignals(io: CliIo, onSignal: (first: boolean) => Promise<void> | void): Promise<void> {
  if (!io.onSignal) return;
  await new Promise<void>((resolve) => {
    let count = 0;
    const remove = io.onSignal!(() => {
      count++;
      if (count === 1) {
        void Promise.resolve(onSignal(true)).finally(() => {
          remove();
          resolve();
        });
      } else {
        void onSignal(false);
        remove();
        io.exit(1);
        resolve();
      }
    });
  });
}
