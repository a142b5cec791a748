// The live half of `doctor node`: reads the firewall state and sockets of the machine it runs on
// and probes the server and the local agent, reporting progress as it goes. Read-only: it runs
// iptables-save (and iptables-legacy-save beside iptables-nft), ufw status verbose, nft list
// ruleset, ss -tan and reads /proc/net/tcp{,6}.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import http from "node:http";
import { checkEgress } from "../egress/index.js";
import type { EgressTarget, ProbeResult } from "../egress/index.js";
import { formatHostPort } from "../egress/index.js";
import { isIP } from "node:net";
import type { AgentHealth, Collected, NodeState, RouteToServer } from "./check-node.js";

export interface CollectOptions {
  /** The tunnel server's agent endpoint, probed like `doctor egress --server`. */
  readonly server?: EgressTarget;
  readonly alpn?: string;
  /** The local agent's health endpoint (GET /readyz); null skips it. */
  readonly agentHealth: EgressTarget | null;
  readonly timeoutMs: number;
  readonly progress?: (line: string) => void;
}

const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function readCommand(argv: readonly string[], timeoutMs = 10_000): Promise<Collected> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { PATH, LC_ALL: "C" } }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        resolve({ ok: false, reason: code === "ENOENT" ? `${argv[0]} not found` : (String(stderr).trim() || err.message).split("\n")[0]! });
      } else resolve({ ok: true, text: String(stdout), ...(String(stderr) === "" ? {} : { stderr: String(stderr) }) });
    });
  });
}

// One deadline for the whole exchange (`--timeout`: "deadline for each probe"): http.get's
// `timeout` is an idle timeout, which an endpoint that drips a byte now and then never trips.
export function getReadyz(target: EgressTarget, timeoutMs: number): Promise<AgentHealth> {
  const name = `http://${formatHostPort(target)}`;
  return new Promise((resolve) => {
    let timedOut = false;
    const req = http.get({ host: target.host, port: target.port, path: "/readyz" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { if (body.length < 4096) body += c; });
      res.on("end", () => {
        clearTimeout(deadline);
        resolve(res.statusCode === 200 ? { kind: "ready", target: name } : { kind: "not-ready", target: name, status: res.statusCode ?? 0, body });
      });
    });
    const deadline = setTimeout(() => {
      timedOut = true;
      req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" }));
    }, timeoutMs);
    deadline.unref();
    req.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(deadline);
      resolve(timedOut
        ? { kind: "timeout", target: name, timeoutMs }
        : { kind: "absent", target: name, reason: err.code === "ECONNREFUSED" ? "connection refused" : err.code ?? err.message });
    });
  });
}

/**
 * `ip -o route get <host>`'s interface and source address ("10.225.0.4 via 10.224.0.1 dev eth0 src
 * 10.224.0.5 uid 0"); null when it names no interface (an unreachable or prohibited route).
 */
export function parseRouteGet(host: string, text: string): RouteToServer | null {
  const line = text.split("\n")[0] ?? "";
  if (/^(unreachable|prohibit|blackhole|throw)\b/.test(line)) return null;
  const dev = /\bdev (\S+)/.exec(line)?.[1];
  if (!dev) return null;
  const src = /\bsrc (\S+)/.exec(line)?.[1];
  return { host, dev, src: src !== undefined && isIP(src) !== 0 ? src : null };
}

/** The node's primary address and interface: those of the default route. */
export async function defaultRouteAddress(): Promise<{ ip: string; iface: string } | null> {
  const route = await readCommand(["ip", "-4", "-o", "route", "show", "default"]);
  const dev = route.ok ? /\bdev (\S+)/.exec(route.text)?.[1] : undefined;
  if (!dev) return null;
  const addr = await readCommand(["ip", "-4", "-o", "addr", "show", "dev", dev]);
  const ip = addr.ok ? /\binet (\d+\.\d+\.\d+\.\d+)\//.exec(addr.text)?.[1] : undefined;
  return ip ? { ip, iface: dev } : null;
}

export async function collectNodeState(o: CollectOptions): Promise<NodeState> {
  const say = o.progress ?? (() => {});
  say("reading iptables-save");
  const iptablesSave = await readCommand(["iptables-save"]);
  say("reading ip6tables-save");
  const ip6tablesSave = await readCommand(["ip6tables-save"]);
  // With iptables-nft (the nf_tables backend) iptables-save shows only its own rules, while the
  // legacy backend's tables, where loaded, filter as well (troubleshooting.md §4.4): read those
  // too. iptables-nft warns of them on stderr, but only where it finds them itself; its version
  // line says which backend it is.
  const legacy: { iptablesLegacySave?: Collected; ip6tablesLegacySave?: Collected } = {};
  const version = await readCommand(["iptables-save", "--version"]);
  for (const [tool, dump, key] of [["iptables", iptablesSave, "iptablesLegacySave"], ["ip6tables", ip6tablesSave, "ip6tablesLegacySave"]] as const) {
    const warned = dump.ok && /^#\s*Warning:\s*ip6?tables-legacy tables present/m.test(dump.stderr ?? "");
    if (!warned && !(version.ok && /\(nf_tables\)/.test(version.text))) continue;
    say(`reading ${tool}-legacy-save`);
    legacy[key] = await readCommand([`${tool}-legacy-save`]);
  }
  say("reading ufw status verbose");
  const ufwStatus = await readCommand(["ufw", "status", "verbose"]);
  say("reading nft list ruleset");
  const nftRuleset = await readCommand(["nft", "list", "ruleset"]);
  say("reading the listening sockets (/proc/net/tcp, /proc/net/tcp6)");
  const procNetTcp = (await Promise.all(["/proc/net/tcp", "/proc/net/tcp6"].map((f) => readFile(f, "utf8").catch(() => "")))).filter((t) => t !== "");
  let egress = null;
  let serverRoute: RouteToServer | undefined;
  if (o.server) {
    say(`probing the server ${formatHostPort(o.server)} (timeout ${o.timeoutMs} ms)`);
    egress = await checkEgress({ targets: [o.server], timeoutMs: o.timeoutMs, ...(o.alpn ? { alpn: o.alpn } : {}) });
    // The kernel's own choice of interface and source address for the address dialled (no
    // packet is sent): what the node's OUTPUT rules see of the agent's connection.
    const address = isIP(o.server.host) !== 0 ? o.server.host : (egress.probes as readonly ProbeResult[] | undefined)?.[0]?.address;
    if (address) {
      say(`reading the route to ${address} (ip route get)`);
      const route = await readCommand(["ip", "-o", "route", "get", address]);
      serverRoute = route.ok ? parseRouteGet(address, route.text) ?? undefined : undefined;
    }
  }
  let agentHealth: AgentHealth = { kind: "skipped" };
  if (o.agentHealth) {
    say(`asking the local agent ${formatHostPort(o.agentHealth)}/readyz`);
    agentHealth = await getReadyz(o.agentHealth, o.timeoutMs);
  }
  say("reading connections (ss -tan)");
  const ssTan = await readCommand(["ss", "-tan"]);
  return { iptablesSave, ip6tablesSave, ...legacy, ufwStatus, nftRuleset, procNetTcp, egress, agentHealth, ssTan, ...(serverRoute ? { serverRoute } : {}) };
}
