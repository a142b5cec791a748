// `nodetunnel agent`: the proxy agent, with upstream's flag names and defaults
// (shared/spec/konnectivity.md §2.4), plus a list of servers and --allowed-destinations.
import { Command } from "commander";
import { Registry, collectDefaultMetrics } from "prom-client";
import { startProcessIdleGc } from "./idle-gc.js";
import { NodetunnelAgent, resolveAgentOptions, type AgentOptions, type AgentOptionsInput, type ServerCountSource } from "../agent/index.js";
import { loadKubeClientConfig } from "../server/agent-auth/index.js";
import { ServerLeaseCounter, parseLeaseLabels, parseLeaseNamespace } from "../server/leases/index.js";
import { proxyFor, proxySettingsFromEnv, redactedProxy, type Http2Implementation } from "../transport/index.js";
import type { CliIo } from "./cli-io.js";
import { envOption, ignoredUpstreamOption, klogFlags, readTlsFlagFiles, runCommand, withCliErrors, UsageError } from "./command-support.js";
import { explainListenError, type FlagListener } from "./listen-error.js";
import { agentTracers, createLogger } from "./logger.js";
import { collectDestinations, collectList, parseBoolean, parseDuration, parseInteger } from "./parse-values.js";
import { waitForSignals } from "./server-command.js";
import { TlsFileWatcher, type TlsContents, type TlsFileSet } from "./tls-reload.js";

const ignoredUpstreamFlags = [
  "probe-interval", "sync-forever", "xfr-channel-size", "kube-api-content-type", "enable-profiling", "enable-contention-profiling", "warn-on-channel-limit", ...klogFlags,
];

export interface AgentFlags {
  proxyServerHost: string; proxyServerPort: string; caCert?: string; agentCert?: string; agentKey?: string; alpnProto?: string[];
  healthServerHost: string; healthServerPort: string; adminBindAddress: string; adminServerPort: string;
  agentId?: string; agentIdentifiers: string; syncInterval: string; syncIntervalCap: string; keepaliveTime: string;
  serviceAccountTokenPath?: string; allowedDestinations?: string[]; dialTimeout: string; drainTimeout: string;
  creditFlowControl: string | true; serverHttp2: string; kubeconfig?: string; logLevel?: string;
  countServerLeases?: string | true; leaseNamespace?: string; leaseLabelSelector?: string; leaseLabel?: string; serverCountSource?: string;
  tlsReloadInterval?: string;
}

/** The agent's TLS files, watched for rotation (tls-reload.ts). */
function agentTlsFileSets(f: AgentFlags, options: AgentOptions, agent: NodetunnelAgent): TlsFileSet[] {
  const files: TlsFileSet["files"] = {};
  if (f.caCert) files.ca = { flag: "--ca-cert", path: f.caCert };
  if (f.agentCert) files.cert = { flag: "--agent-cert", path: f.agentCert };
  if (f.agentKey) files.key = { flag: "--agent-key", path: f.agentKey };
  if (Object.keys(files).length === 0) return [];
  const initial = { ca: options.tls?.ca, cert: options.tls?.cert, key: options.tls?.key } as TlsContents;
  return [{ name: "agent", files, initial, apply: (contents) => agent.updateTls(contents) }];
}

/** The agent's listeners with the flags that configure them, for explainListenError. */
function agentListeners(o: AgentOptions): FlagListener[] {
  const listeners: FlagListener[] = [];
  if (o.healthListen) listeners.push({ flag: "--health-server-port", bindFlag: "--health-server-host", ...o.healthListen });
  if (o.adminListen) listeners.push({ flag: "--admin-server-port", bindFlag: "--admin-bind-address", ...o.adminListen });
  return listeners;
}

/** Where the agent's server count comes from, and the leases to count when they are. Exported for tests. */
export function serverCountFromFlags(f: AgentFlags): { source: ServerCountSource; leases?: { namespace: string; selector: string } } {
  const source = f.serverCountSource ?? "default";
  if (source !== "default" && source !== "max") throw new UsageError(`--server-count-source must be default or max, not "${source}"`);
  if (!parseBoolean("--count-server-leases", f.countServerLeases ?? "false")) return { source: "header" };
  // --lease-label is upstream's deprecated spelling of --lease-label-selector.
  const selectorText = f.leaseLabelSelector ?? f.leaseLabel ?? "k8s-app=konnectivity-server";
  let namespace: string;
  let labels: Record<string, string>;
  try {
    namespace = parseLeaseNamespace(f.leaseNamespace ?? "kube-system");
    labels = parseLeaseLabels(selectorText);
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^--lease-label\b/, "--lease-label-selector"));
  }
  return { source: source === "max" ? "max" : "leases", leases: { namespace, selector: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",") } };
}

/**
 * The parsed flags, with --lease-label-selector's default dropped when only the old spelling
 * (--lease-label) was given: the default would otherwise always win over it. Exported for tests.
 */
export function agentFlagsAsGiven(cmd: Command): AgentFlags {
  const flags = cmd.opts<AgentFlags>();
  const isSelectorDefault = cmd.getOptionValueSource("leaseLabelSelector") === "default";
  return isSelectorDefault && flags.leaseLabel !== undefined ? { ...flags, leaseLabelSelector: undefined } : flags;
}

export function agentOptionsFromFlags(f: AgentFlags): AgentOptionsInput {
  return {
    agentId: f.agentId,
    identifiers: f.agentIdentifiers,
    proxyServerHost: f.proxyServerHost,
    proxyServerPort: parseInteger("--proxy-server-port", f.proxyServerPort, 1, 65535),
    tls: {
      ...readTlsFlagFiles({ cert: ["--agent-cert", f.agentCert], key: ["--agent-key", f.agentKey], ca: ["--ca-cert", f.caCert] }),
      caFile: f.caCert || undefined,
      alpnProtocols: f.alpnProto ?? [],
    },
    serviceAccountTokenPath: f.serviceAccountTokenPath,
    syncIntervalMs: parseDuration("--sync-interval", f.syncInterval),
    syncIntervalCapMs: parseDuration("--sync-interval-cap", f.syncIntervalCap),
    keepaliveTimeMs: parseDuration("--keepalive-time", f.keepaliveTime),
    dialTimeoutMs: parseDuration("--dial-timeout", f.dialTimeout),
    drainTimeoutMs: parseDuration("--drain-timeout", f.drainTimeout),
    healthListen: { port: parseInteger("--health-server-port", f.healthServerPort, 0, 65535), host: f.healthServerHost || undefined },
    adminListen: { port: parseInteger("--admin-server-port", f.adminServerPort, 0, 65535), host: f.adminBindAddress || undefined },
    allowedDestinations: f.allowedDestinations ?? [],
    creditFlowControl: parseBoolean("--credit-flow-control", f.creditFlowControl),
    serverHttp2: f.serverHttp2 as Http2Implementation,
  };
}

export function agentCommand(io: CliIo): Command {
  const cmd = withCliErrors(new Command("agent"), io, "nodetunnel agent")
    .description("run the proxy agent on a node (Konnectivity proxy-agent compatible): dials out to the servers, dials kubelets and pods for them")
    .addOption(envOption("--proxy-server-host <hosts>", "server address; a comma list of servers, or a DNS name with several addresses, for HA", "127.0.0.1"))
    .addOption(envOption("--proxy-server-port <port>", "server's agent port", "8091"))
    .addOption(envOption("--ca-cert <file>", "CA that signed the server's certificate"))
    .addOption(envOption("--agent-cert <file>", "client certificate (mTLS)"))
    .addOption(envOption("--agent-key <file>", "client key (mTLS)"))
    .addOption(envOption("--tls-reload-interval <duration>", "read --ca-cert, --agent-cert and --agent-key again this often; connections opened after a change use the new files (0: never)", "30s"))
    .option("--alpn-proto <proto>", "extra ALPN protocol offered before h2 (repeatable), e.g. konnectivity", collectList)
    .addOption(envOption("--health-server-host <ip>", "health bind address (default: all)", ""))
    .addOption(envOption("--health-server-port <port>", "health port (/healthz, /readyz, /metrics)", "8093"))
    .addOption(envOption("--admin-bind-address <ip>", "admin bind address", "127.0.0.1"))
    .addOption(envOption("--admin-server-port <port>", "admin port", "8094"))
    .addOption(envOption("--agent-id <id>", "this agent's id (default: $PROXY_AGENT_ID or a random UUID)", undefined, "PROXY_AGENT_ID"))
    .addOption(envOption("--agent-identifiers <query>", "identities for destHost/defaultRoute routing, e.g. ipv4=10.224.0.5&host=node-1", ""))
    .addOption(envOption("--sync-interval <duration>", "first reconnect backoff step", "1s"))
    .addOption(envOption("--sync-interval-cap <duration>", "longest reconnect backoff", "10s"))
    .addOption(envOption("--keepalive-time <duration>", "ping the server when idle this long", "1h"))
    .addOption(envOption("--service-account-token-path <file>", "token sent as 'authorization: Bearer' (re-read at every connect)"))
    .option("--allowed-destinations <cidr[:ports]>", "only dial these (repeatable or comma-separated): CIDR, CIDR:PORT, CIDR:LOW-HIGH, CIDR:P1,P2, [v6CIDR]:PORT", collectDestinations)
    .addOption(envOption("--dial-timeout <duration>", "destination dial timeout", "5s"))
    .addOption(envOption("--drain-timeout <duration>", "after the first SIGTERM, how long connections may finish", "60s"))
    .addOption(envOption("--credit-flow-control [bool]", "offer per-connection credit flow control to nodetunnel servers", "true"))
    .addOption(envOption("--server-http2 <impl>", "HTTP/2 under the link to each server: builtin (less CPU per MB) or node (node:http2)", "builtin"))
    .addOption(envOption("--count-server-leases [bool]", "count the servers by their Leases (servers with --enable-lease-controller) instead of their servercount header", "false"))
    .addOption(envOption("--lease-namespace <ns>", "namespace of the servers' Leases", "kube-system"))
    .addOption(envOption("--lease-label-selector <selector>", "labels of the servers' Leases, key=value[,key=value]", "k8s-app=konnectivity-server"))
    .addOption(envOption("--lease-label <selector>", "deprecated spelling of --lease-label-selector (upstream's)"))
    .addOption(envOption("--server-count-source <source>", "with --count-server-leases: default (the leases) or max (the larger of leases and servercount header)", "default"))
    .addOption(envOption("--kubeconfig <file>", "kubeconfig for counting leases (in-cluster when empty)"))
    .addOption(envOption("--log-level <level>", "trace, debug, info, warn, error", undefined, "NODETUNNEL_LOG_LEVEL"));
  for (const name of ignoredUpstreamFlags) cmd.addOption(ignoredUpstreamOption(name));
  cmd.addHelpText("after", `
Examples:
  # as a DaemonSet: one agent per node, routed by node IP (server: --proxy-strategies=destHost,default)
  nodetunnel agent --proxy-server-host=konnectivity.example --proxy-server-port=8132 --ca-cert=/ca.crt \\
    --agent-identifiers="ipv4=$HOST_IP" --service-account-token-path=/var/run/secrets/tokens/konnectivity-agent-token
  # HA without a load balancer: every server listed
  nodetunnel agent --proxy-server-host=10.0.0.10,10.0.0.11,10.0.0.12 --proxy-server-port=8132 --ca-cert=/ca.crt
  # least privilege: only kubelets
  nodetunnel agent ... --allowed-destinations=10.224.0.0/16:10250

Environment: HTTPS_PROXY (or https_proxy) reaches the servers through an HTTP CONNECT proxy, NO_PROXY (or no_proxy) excepted, as upstream's agent does.

Signals: the first SIGTERM sends DRAIN (servers send new dials to other agents where they can; a dial that still comes is served, as upstream) and lets connections finish for --drain-timeout; the second stops.`);
  cmd.action(async () => {
    const flags = agentFlagsAsGiven(cmd);
    await runCommand(io, "nodetunnel agent", async () => {
      for (const name of ignoredUpstreamFlags) {
        const key = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
        if ((flags as unknown as Record<string, unknown>)[key] !== undefined) io.stderr.write(`nodetunnel agent: --${name} is accepted for compatibility and ignored\n`);
      }
      const count = serverCountFromFlags(flags);
      const proxy = proxySettingsFromEnv(io.env);
      const tlsReloadMs = parseDuration("--tls-reload-interval", flags.tlsReloadInterval ?? "30s");
      const options = resolveAgentOptions({ ...agentOptionsFromFlags(flags), serverCountSource: count.source, proxy });
      const log = createLogger(io, { level: flags.logLevel });
      if (proxy) {
        const proxied = options.servers.filter((s) => proxyFor(proxy, s.host, s.port)).map((s) => `${s.host}:${s.port}`);
        log.info({ proxy: redactedProxy(proxy.url), noProxy: proxy.noProxy, proxied }, proxied.length > 0
          ? "HTTPS_PROXY: servers are reached through an HTTP CONNECT to the proxy"
          : "HTTPS_PROXY is set, but NO_PROXY (or loopback) excludes every server: connecting directly");
      }
      if (!options.tls?.ca) log.warn("no --ca-cert: the server's certificate is checked against the system's CAs");
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      const counter = count.leases
        ? new ServerLeaseCounter(await loadKubeClientConfig(flags.kubeconfig, io.env, undefined, "--count-server-leases"), count.leases, registry)
        : undefined;
      const agent = await NodetunnelAgent.start(options, { log, registry, tracers: agentTracers(io, log), countServerLeases: counter && (() => counter.count()) })
        .catch((err: unknown) => {
          throw explainListenError(err, agentListeners(options)) ?? err;
        });
      const idleGc = startProcessIdleGc(log);
      const tlsFiles = new TlsFileWatcher(agentTlsFileSets(flags, options, agent), tlsReloadMs, log, registry);
      tlsFiles.start();
      await waitForSignals(io, async (first) => {
        if (first) await agent.drain();
        else agent.destroy();
      });
      tlsFiles.stop();
      idleGc.stop();
    });
  });
  return cmd;
}
