// `nodetunnel demo` (what `npm start` runs): on loopback, with certificates made in memory, a
// server (HTTP CONNECT on TCP, gRPC on a Unix socket), three agents with node identities and
// three kubelet-like HTTPS endpoints; requests go through both frontends and a table shows
// them, including a node without an agent. Runs until Ctrl-C, then cleans up.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { Command } from "commander";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions } from "../agent/index.js";
import { startFakeKubelet, type FakeKubelet } from "../lab/index.js";
import { dashboardRoutes } from "../dashboard/index.js";
import { NodetunnelServer, resolveServerOptions, serverSnapshot } from "../server/index.js";
import { createPki, type Pki } from "../transport/index.js";
import { dialThroughProxy } from "../tunnel/index.js";
import { terminalColumns, useColor, type CliIo } from "./cli-io.js";
import { runCommand, withCliErrors } from "./command-support.js";
import { createLogger, serverTracers } from "./logger.js";
import { waitForSignals } from "./server-command.js";

interface DemoNode {
  readonly name: string;
  readonly ip: string;
  kubelet?: FakeKubelet;
  port: number;
}

export interface DemoRow {
  readonly node: string;
  readonly frontend: "http-connect" | "grpc";
  readonly ok: boolean;
  readonly status: string;
  readonly latencyMs: number;
}

/** Fetches a kubelet URL through the tunnel socket: TLS to the kubelet, then an HTTP GET. */
async function getOverTunnel(socket: Duplex, pki: Pki, node: DemoNode, path: string): Promise<{ status: number; body: string }> {
  const secure = tls.connect({ socket, ca: pki.ca, servername: node.name });
  await new Promise<void>((resolve, reject) => {
    secure.once("secureConnect", resolve);
    secure.once("error", reject);
  });
  secure.write(`GET ${path} HTTP/1.1\r\nHost: ${node.ip}:${node.port}\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  for await (const c of secure) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}

async function connectThrough(port: number, target: string): Promise<{ socket: net.Socket; head: string; body: string }> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  let buf = Buffer.alloc(0);
  while (!buf.includes("\r\n\r\n")) {
    const chunk = await new Promise<Buffer | null>((resolve) => {
      socket.once("data", resolve);
      socket.once("end", () => resolve(null));
    });
    if (chunk === null) break;
    buf = Buffer.concat([buf, chunk]);
  }
  socket.pause();
  const i = buf.indexOf("\r\n\r\n");
  let body = i >= 0 ? buf.subarray(i + 4).toString() : "";
  const head = i >= 0 ? buf.subarray(0, i).toString() : buf.toString();
  if (!head.startsWith("HTTP/1.1 200")) {
    socket.resume();
    for await (const c of socket) body += String(c);
  }
  return { socket, head, body };
}

export async function runDemoRequests(o: { pki: Pki; nodes: readonly DemoNode[]; connectPort: number; grpcSocket: string }): Promise<DemoRow[]> {
  const rows: DemoRow[] = [];
  for (const node of o.nodes) {
    const target = `${node.ip}:${node.port}`;
    const path = `/containerLogs/default/web-${node.name.slice(5)}/app`;
    for (const frontend of ["http-connect", "grpc"] as const) {
      const started = performance.now();
      try {
        let socket: Duplex;
        if (frontend === "http-connect") {
          const r = await connectThrough(o.connectPort, target);
          if (!r.head.startsWith("HTTP/1.1 200")) {
            rows.push({ node: node.name, frontend, ok: false, status: `${r.head.split("\r\n")[0]!.slice(9)}: ${r.body.trim()}`, latencyMs: performance.now() - started });
            r.socket.destroy();
            continue;
          }
          socket = r.socket;
        } else {
          socket = await dialThroughProxy({ path: o.grpcSocket }, target, { timeoutMs: 10_000 });
        }
        const res = await getOverTunnel(socket, o.pki, node, path);
        const lines = res.body.trim().split("\n").length;
        rows.push({ node: node.name, frontend, ok: res.status === 200, status: `${res.status} from the kubelet, ${lines} log lines`, latencyMs: performance.now() - started });
      } catch (err) {
        rows.push({ node: node.name, frontend, ok: false, status: (err as Error).message, latencyMs: performance.now() - started });
      }
    }
  }
  return rows;
}

/** Splits text at spaces into lines of at most `width` characters; a longer word gets a line of its own. */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return line ? [...lines, line] : lines.length ? lines : [""];
}

/**
 * The demo's table. A status longer than the room left on a `width`-column line wraps onto
 * lines of its own under the status column: the failure text is the point of node-4's rows,
 * so none of it is cut.
 */
export function formatDemoTable(rows: readonly DemoRow[], color: boolean, width = 100): string {
  const paint = (ok: boolean, s: string) => (color ? `\x1b[${ok ? 32 : 31}m${s}\x1b[0m` : s);
  const indent = " ".repeat(8 + 1 + 13 + 1 + 9 + 2);
  const lines = [`${"node".padEnd(8)} ${"frontend".padEnd(13)} ${"latency".padStart(9)}  status`];
  for (const r of rows) {
    const [first, ...rest] = wrapWords(r.status, Math.max(40, width - indent.length));
    lines.push(`${r.node.padEnd(8)} ${r.frontend.padEnd(13)} ${(r.latencyMs.toFixed(1) + " ms").padStart(9)}  ${paint(r.ok, first!)}`);
    for (const more of rest) lines.push(indent + paint(r.ok, more));
  }
  return lines.join("\n") + "\n";
}

export function demoCommand(io: CliIo): Command {
  return withCliErrors(new Command("demo"), io, "nodetunnel demo")
    .description("bring up a server, three agents and kubelet-like endpoints on loopback and show traffic flowing through the tunnel")
    .option("--once", "run the requests, print the table and exit (no waiting for Ctrl-C)")
    .option("--log-level <level>", "server and agent log level (failures show in the table)", "error")
    .addHelpText("after", "\nExample:\n  npm start            # the same as: nodetunnel demo\n  nodetunnel demo --once")
    .action(async (flags: { once?: boolean; logLevel: string }) => {
      await runCommand(io, "nodetunnel demo", async () => {
        const out = (s: string) => io.stdout.write(s);
        const log = createLogger(io, { level: flags.logLevel });
        const dir = mkdtempSync(join(tmpdir(), "nodetunnel-demo-"));
        const cleanups: Array<() => Promise<void> | void> = [() => rmSync(dir, { recursive: true, force: true })];
        try {
          out("Creating a CA and certificates in memory...\n");
          const pki = await createPki({ serverIps: ["127.0.0.1"], serverNames: ["localhost"] });
          writeFileSync(join(dir, "ca.crt"), pki.ca);
          const nodes: DemoNode[] = [1, 2, 3, 4].map((n) => ({ name: `node-${n}`, ip: `127.0.1.${n}`, port: 10250 }));
          for (const node of nodes.slice(0, 3)) {
            const leaf = await pki.issue(node.name, { dns: [node.name], ips: [node.ip] });
            node.kubelet = await startFakeKubelet({ nodeName: node.name, cert: leaf.cert, key: leaf.key, host: node.ip, port: 10250 })
              .catch(() => startFakeKubelet({ nodeName: node.name, cert: leaf.cert, key: leaf.key, host: node.ip, port: 0 }));
            node.port = node.kubelet.port;
            cleanups.push(() => node.kubelet!.close());
          }
          const grpcSocket = join(dir, "konnectivity-server.socket");
          const registry = new Registry();
          const adminRoutes = dashboardRoutes(() => serverSnapshot(server.proxy));
          const server = await NodetunnelServer.start(
            resolveServerOptions({
              serverId: "demo-server",
              frontends: [
                { mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } },
                { mode: "grpc", listen: { path: grpcSocket } },
              ],
              agentListen: { port: 0, host: "127.0.0.1" },
              agentTls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca },
              healthListen: { port: 0, host: "127.0.0.1" },
              adminListen: { port: 0, host: "127.0.0.1" },
              proxyStrategies: ["destHost"],
            }),
            { log, registry, adminRoutes, tracers: serverTracers(io, log) },
          );
          cleanups.push(() => server.destroy());
          const addr = server.addresses;
          const connectPort = addr.frontends.find((f) => f.mode === "http-connect")!.port!;
          out(`Server: HTTP CONNECT on 127.0.0.1:${connectPort}, gRPC on ${grpcSocket}, agents on 127.0.0.1:${addr.agentPort} (mTLS)\n`);
          for (const node of nodes.slice(0, 3)) {
            const client = await pki.issue(node.name, { client: true });
            const agent = await NodetunnelAgent.start(
              resolveAgentOptions({
                agentId: node.name,
                identifiers: `host=${node.name}&ipv4=${node.ip}`,
                proxyServerHost: "127.0.0.1",
                proxyServerPort: addr.agentPort,
                tls: { ca: pki.ca, cert: client.cert, key: client.key, alpnProtocols: [] },
                healthListen: { port: 0, host: "127.0.0.1" },
              }),
              { log, registry: new Registry() },
            );
            cleanups.push(() => agent.destroy());
            await agent.waitForServers(1, 10_000);
            out(`Agent ${node.name} connected (identity ipv4=${node.ip}); kubelet-like endpoint on ${node.ip}:${node.port}\n`);
          }
          out(`node-4 (${nodes[3]!.ip}) has no agent: its requests show the failure you would see.\n\n`);
          const rows = await runDemoRequests({ pki, nodes, connectPort, grpcSocket });
          out(formatDemoTable(rows, useColor(io), terminalColumns(io)));
          if (!rows.filter((r) => r.node !== "node-4").every((r) => r.ok)) io.exit(1);
          // With --once everything below is gone when the command returns (the directory with
          // ca.crt too): no commands or addresses that would not work.
          if (flags.once) return;
          const n1 = nodes[0]!;
          out(`
Try it by hand (curl as the HTTP CONNECT client, TLS to the kubelet inside the tunnel):
  curl --proxytunnel -x http://127.0.0.1:${connectPort} --cacert ${join(dir, "ca.crt")} https://${n1.ip}:${n1.port}/containerLogs/default/web-1/app
Metrics (upstream names):  curl -s http://127.0.0.1:${addr.healthPort}/metrics | grep konnectivity_network_proxy_server
Readiness:                 curl -s http://127.0.0.1:${addr.healthPort}/readyz
Dashboard:                 http://127.0.0.1:${addr.adminPort}/
`);
          out("\nRunning until Ctrl-C.\n");
          await waitForSignals(io, () => {});
        } finally {
          for (const c of cleanups.reverse()) await c();
        }
      });
    });
}
