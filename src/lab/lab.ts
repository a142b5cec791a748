// `lab up`, `lab down`, `lab status`: the lab's life. `up` records every resource before creating
// it and tears a half-built lab down on failure; `down` is idempotent and also works from the
// namespaces alone when the state file is gone.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  AGENT_HEALTH_PORT, AGENT_PORT, CONTROL_PLANE_IP, HTTP_CONNECT_PORT, KUBELET_PORT, SERVER_ADMIN_PORT, SERVER_HEALTH_PORT,
  findNode, ownedNamespacePattern, planLab, type LabNode, type LabPlan, type LabPlanInput,
} from "./lab-plan.js";
import { describeExit, killNamespacePids, startProcess, stopProcesses, isOurs, type ProcessExit, type StartedProcess } from "./lab-processes.js";
import { STATE_ROOT, readState, stateDir, writeState, type LabProcess, type LabState } from "./lab-state.js";
import { addBlackholes, buildRouter, checkRangesFree, describePlan, removeBlackholes } from "./lab-topology.js";
import { onNode, prepareNodeEtc } from "./node-exec.js";
import { run } from "./run-command.js";

export type Progress = (line: string) => void;

export interface PemPair { readonly cert: string; readonly key: string }

/** Certificates made by the caller (the CLI owns createPki; the lab may not import the transport). */
export interface LabCertificates {
  readonly ca: string;
  /** The server's agent-facing certificate, valid for the control plane's address. */
  readonly server: PemPair;
  /** The agents' client certificate. */
  readonly client: PemPair;
  /** A serving certificate per node name, valid for the node's address. */
  readonly kubelets: Readonly<Record<string, PemPair>>;
}

export interface LabRuntime {
  /** The repository root: bin/nodetunnel.js and src/lab/*-main.ts are run from there. */
  readonly repoRoot: string;
  /** The node binary to run them with. */
  readonly nodeBin: string;
  readonly progress?: Progress;
  /** Aborting it (the CLI does on SIGINT/SIGTERM) stops `lab up` between steps; it then tears down what it built. */
  readonly signal?: AbortSignal;
}

const REQUIRED_TOOLS = ["ip", "iptables", "iptables-save", "ufw", "conntrack", "unshare", "curl", "ss", "mount"];

/** Root and the Debian tools the lab drives; a clear message otherwise. */
export async function checkPrerequisites(uid: number): Promise<void> {
  if (uid !== 0) throw new Error("the lab needs root (it creates network namespaces and firewall rules inside them): run it with sudo");
  const missing: string[] = [];
  for (const tool of REQUIRED_TOOLS) {
    if ((await run(["sh", "-c", `command -v ${tool}`], { allowFailure: true })).code !== 0) missing.push(tool);
  }
  if (missing.length > 0) {
    throw new Error(`the lab needs ${missing.join(", ")}: apt-get install iproute2 iptables ufw conntrack curl util-linux mount`);
  }
}

export async function labUp(input: LabPlanInput, certs: LabCertificates, rt: LabRuntime): Promise<LabState> {
  const progress = rt.progress ?? (() => {});
  const signal = rt.signal ?? new AbortController().signal;
  signal.throwIfAborted();
  const plan = planLab(input);
  const old = readState(plan.prefix);
  if (old !== null || (await ownedNamespaces(plan.prefix)).length > 0) {
    throw new Error(`a lab with prefix ${plan.prefix} exists already: run 'nodetunnel lab down${plan.prefix === "nt" ? "" : " --prefix " + plan.prefix}' first`);
  }
  await checkRangesFree();
  const state: LabState = {
    version: 1, plan, repoRoot: rt.repoRoot, nodeBin: rt.nodeBin, namespaces: [], routes: [], processes: [], faults: {}, ready: false,
  };
  writeState(state);
  try {
    mkdirSync(join(stateDir(plan.prefix), "logs"), { recursive: true, mode: 0o700 });
    writePki(plan, certs);
    progress("blackholing the lab's address ranges in the root namespace");
    await addBlackholes(state);
    signal.throwIfAborted();
    progress(`creating namespaces ${plan.routerNamespace}, ${plan.cpNamespace}, ${plan.nodes.map((n) => n.namespace).join(", ")}`);
    await buildRouter(state);
    signal.throwIfAborted();
    for (const node of plan.nodes) prepareNodeEtc(plan.prefix, node);
    progress("checking the network: every node reaches the control plane through the router");
    for (const node of plan.nodes) {
      await run(["ping", "-c1", "-W2", CONTROL_PLANE_IP], { ns: node.namespace, timeoutMs: 5000 }).catch(async () => {
        // ping may be missing; a TCP check comes with the agents anyway
        if ((await run(["sh", "-c", "command -v ping"], { allowFailure: true })).code === 0) throw new Error(`${node.name} cannot reach ${CONTROL_PLANE_IP}`);
      });
    }
    signal.throwIfAborted();
    progress("starting the nodetunnel server in the control plane");
    const server = startServer(state);
    await waitFor(`the server's health port`, () => httpCode(plan.cpNamespace, `http://127.0.0.1:${SERVER_HEALTH_PORT}/healthz`).then((c) => c === 200), 20_000, { process: server, signal });
    const kubelets = plan.nodes.map((node) => {
      progress(`starting the kubelet on ${node.name} (${node.ip}:${KUBELET_PORT})`);
      return { node, started: startKubelet(state, node) };
    });
    for (const { node, started } of kubelets) {
      await waitFor(`the kubelet on ${node.name}`, () => httpCode(node.namespace, `https://${node.ip}:${KUBELET_PORT}/healthz`).then((c) => c === 200), 20_000, { process: started, signal });
    }
    const agents = plan.nodes.filter((n) => n.hasAgent).map((node) => {
      progress(`starting the agent on ${node.name}`);
      return { node, started: startAgent(state, node) };
    });
    for (const { node, started } of agents) await waitForAgent(state, node, { process: started, signal });
    state.ready = true;
    writeState(state);
    for (const line of describePlan(plan)) progress(line);
    return state;
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split("\n")[0]; // the caller prints all of it
    progress(signal.aborted ? `lab up ${why}: tearing down what was built` : `lab up failed (${why}); tearing down what was built`);
    await labDown(plan.prefix, progress);
    throw err;
  }
}

function writePki(plan: LabPlan, certs: LabCertificates): void {
  const dir = join(stateDir(plan.prefix), "pki");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: Record<string, string> = {
    "ca.crt": certs.ca, "server.crt": certs.server.cert, "server.key": certs.server.key,
    "agent.crt": certs.client.cert, "agent.key": certs.client.key,
  };
  for (const node of plan.nodes) {
    const pair = certs.kubelets[node.name];
    if (!pair) throw new Error(`no kubelet certificate for ${node.name}`);
    files[`kubelet-${node.name}.crt`] = pair.cert;
    files[`kubelet-${node.name}.key`] = pair.key;
  }
  for (const [name, pem] of Object.entries(files)) writeFileSync(join(dir, name), pem, { mode: 0o600 });
}

const pki = (state: LabState, name: string) => join(stateDir(state.plan.prefix), "pki", name);
const cli = (state: LabState) => [state.nodeBin, join(state.repoRoot, "bin", "nodetunnel.js")];

/** Into the state at once, in the same turn as the spawn: nothing (not even a signal's handler) runs in between. */
function record(state: LabState, started: StartedProcess): StartedProcess {
  const p = started.record;
  state.processes = [...state.processes.filter((q) => !(q.role === p.role && q.node === p.node)), p];
  writeState(state);
  return started;
}

export function startServer(state: LabState): StartedProcess {
  const argv = [
    ...cli(state), "server",
    "--uds-name", join(stateDir(state.plan.prefix), "grpc-frontend.sock"), "--server-port=0",
    "--frontend", `http-connect=tcp:127.0.0.1:${HTTP_CONNECT_PORT}`,
    `--agent-port=${AGENT_PORT}`, `--health-port=${SERVER_HEALTH_PORT}`, `--admin-port=${SERVER_ADMIN_PORT}`,
    "--cluster-cert", pki(state, "server.crt"), "--cluster-key", pki(state, "server.key"), "--cluster-ca-cert", pki(state, "ca.crt"),
    `--proxy-strategies=${state.plan.proxyStrategies}`, "--backend-dial-timeout=10s", "--log-level=info",
  ];
  return record(state, startProcess({
    prefix: state.plan.prefix, role: "server", node: null, namespace: state.plan.cpNamespace,
    argv: ["ip", "netns", "exec", state.plan.cpNamespace, ...argv], cwd: state.repoRoot,
  }));
}

export function startKubelet(state: LabState, node: LabNode): StartedProcess {
  const config = { nodeName: node.name, certFile: pki(state, `kubelet-${node.name}.crt`), keyFile: pki(state, `kubelet-${node.name}.key`), host: "0.0.0.0", port: KUBELET_PORT };
  return record(state, startProcess({
    prefix: state.plan.prefix, role: "kubelet", node: node.name, namespace: node.namespace,
    argv: ["ip", "netns", "exec", node.namespace, state.nodeBin, "--import", "tsx", join(state.repoRoot, "src", "lab", "kubelet-main.ts")],
    cwd: state.repoRoot, env: { NODETUNNEL_LAB_KUBELET: JSON.stringify(config) },
  }));
}

export function startAgent(state: LabState, node: LabNode): StartedProcess {
  const argv = [
    ...cli(state), "agent",
    `--proxy-server-host=${CONTROL_PLANE_IP}`, `--proxy-server-port=${AGENT_PORT}`,
    "--ca-cert", pki(state, "ca.crt"), "--agent-cert", pki(state, "agent.crt"), "--agent-key", pki(state, "agent.key"),
    `--agent-id=${node.name}`, `--agent-identifiers=ipv4=${node.ip}&host=${node.name}`,
    `--health-server-port=${AGENT_HEALTH_PORT}`, "--admin-server-port=8094",
    // Short enough that a dropped SYN shows as the agent's "i/o timeout" before the server's 10 s backend timeout.
    "--dial-timeout=3s", "--sync-interval=500ms", "--sync-interval-cap=2s", "--log-level=info",
  ];
  return record(state, startProcess({
    prefix: state.plan.prefix, role: "agent", node: node.name, namespace: node.namespace,
    argv: ["ip", "netns", "exec", node.namespace, ...argv], cwd: state.repoRoot,
  }));
}

export async function waitForAgent(state: LabState, node: LabNode, options: WaitOptions & { readonly timeoutMs?: number } = {}): Promise<void> {
  await waitFor(`the agent on ${node.name} to connect`, () => httpCode(node.namespace, `http://127.0.0.1:${AGENT_HEALTH_PORT}/readyz`).then((c) => c === 200), options.timeoutMs ?? 20_000, options);
}

/** Stops the recorded process of `role` on `node` (by its PID; SIGTERM unless told); returns whether one was running. */
export async function stopRole(state: LabState, role: LabProcess["role"], node: string | null, signal: NodeJS.Signals = "SIGTERM"): Promise<boolean> {
  const p = state.processes.find((q) => q.role === role && q.node === node);
  if (!p) return false;
  await stopProcesses([p.pid], state.plan.prefix, 3000, signal);
  state.processes = state.processes.filter((q) => q !== p);
  writeState(state);
  return true;
}

export async function httpCode(ns: string, url: string): Promise<number> {
  const r = await run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", url], { ns, allowFailure: true, timeoutMs: 5000 });
  return Number(r.stdout.trim()) || 0;
}

export interface WaitOptions {
  /** The process that should become ready: if it ends first, the wait fails at once with its exit and its log's end. */
  readonly process?: StartedProcess;
  readonly signal?: AbortSignal;
}

export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, options: WaitOptions = {}): Promise<void> {
  const { process: started, signal } = options;
  let exit: ProcessExit | undefined;
  void started?.exited.then((e) => (exit = e));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (await probe()) return;
    if (exit) throw new Error(describeExit(started!.record, exit, `while lab waited for ${what}`));
    // The pause ends early when the process ends or the signal aborts.
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, 200);
      signal?.addEventListener("abort", done, { once: true });
      void started?.exited.then(done);
    });
  }
  signal?.throwIfAborted();
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export async function ownedNamespaces(prefix: string): Promise<string[]> {
  const r = await run(["ip", "netns", "list"], { allowFailure: true });
  const pattern = ownedNamespacePattern(prefix);
  return r.stdout.split("\n").map((l) => l.split(" ")[0]!).filter((n) => pattern.test(n));
}

/** Idempotent: kills the lab's processes, deletes its namespaces and routes, removes the state. */
export async function labDown(prefix: string, progress: Progress = () => {}): Promise<{ removed: string[] }> {
  const state = readState(prefix);
  const removed: string[] = [];
  if (state) {
    const pids = state.processes.map((p) => p.pid);
    if (pids.some((pid) => isOurs(pid, prefix))) progress(`stopping ${pids.length} lab processes`);
    await stopProcesses(pids, prefix);
  }
  const namespaces = [...new Set([...(state?.namespaces ?? []), ...(await ownedNamespaces(prefix))])];
  const existing = new Set((await run(["ip", "netns", "list"], { allowFailure: true })).stdout.split("\n").map((l) => l.split(" ")[0]!));
  for (const ns of namespaces.filter((n) => existing.has(n))) {
    progress(`deleting namespace ${ns}`);
    await killNamespacePids(ns);
    await run(["ip", "netns", "del", ns], { allowFailure: true });
    removed.push(ns);
  }
  // The state goes first: a lab going down at the same moment then sees this one gone, and one of the two removes the routes.
  rmSync(stateDir(prefix), { recursive: true, force: true });
  removed.push(...(await removeBlackholes(prefix, state?.routes ?? [], progress)));
  try {
    if (existsSync(STATE_ROOT) && readdirSync(STATE_ROOT).length === 0) rmSync(STATE_ROOT, { recursive: true, force: true });
  } catch {
    // another lab is using it
  }
  return { removed };
}

export interface LabStatus {
  readonly prefix: string;
  readonly up: boolean;
  readonly lines: readonly string[];
  readonly processes: ReadonlyArray<LabProcess & { readonly running: boolean }>;
  readonly faults: LabState["faults"];
}

export function labStatus(prefix: string): LabStatus {
  const state = readState(prefix);
  if (!state) return { prefix, up: false, lines: [`no lab with prefix ${prefix}`], processes: [], faults: {} };
  const processes = state.processes.map((p) => ({ ...p, running: isOurs(p.pid, prefix) }));
  return {
    prefix,
    up: state.ready,
    lines: [
      ...describePlan(state.plan),
      ...processes.map((p) => `${p.role}${p.node ? " on " + p.node : ""}: pid ${p.pid} ${p.running ? "running" : "NOT running"} (log ${p.log})`),
      ...Object.values(state.faults).map((f) => `fault ${f.fault} on ${f.node}: ${f.detail}`),
    ],
    processes,
    faults: state.faults,
  };
}

export function requireState(prefix: string): LabState {
  const state = readState(prefix);
  if (!state || !state.ready) throw new Error(`no lab is up with prefix ${prefix}: run 'nodetunnel lab up' first`);
  return state;
}

/** argv that runs a command in a lab place: "cp", "router" or a node (with the node's private /etc/ufw). */
export function labExecArgv(prefix: string, place: string, argv: readonly string[]): string[] {
  const state = requireState(prefix);
  if (place === "cp" || place === state.plan.cpNamespace) return ["ip", "netns", "exec", state.plan.cpNamespace, ...argv];
  if (place === "router" || place === state.plan.routerNamespace) return ["ip", "netns", "exec", state.plan.routerNamespace, ...argv];
  return onNode(prefix, findNode(state.plan, place), argv);
}

export interface TunnelCurl {
  /** curl's exit code (0 = the kubelet answered). */
  readonly exitCode: number;
  /** The HTTP status of the CONNECT (200 when the tunnel dialled the kubelet). */
  readonly connectStatus: number | null;
  /**
   * Why the server failed a CONNECT, as its error body says it (`dial tcp 10.224.0.5:10250: i/o
   * timeout — <explanation>`), from its record of that dial; null for a 200 or where none is found.
   */
  readonly dialFailure: string | null;
  readonly body: string;
  /** curl's verbose log (line ends without CR), with a `* CONNECT <status>: the server says ...` line where dialFailure is known. */
  readonly stderr: string;
}

/** `curl --proxytunnel` from the control plane to a node's kubelet through the HTTP CONNECT frontend. */
export async function curlThroughTunnel(prefix: string, nodeName: string, path = "/containerLogs/default/web/app"): Promise<TunnelCurl> {
  const state = requireState(prefix);
  const node = findNode(state.plan, nodeName);
  const address = `${node.ip}:${KUBELET_PORT}`;
  const startedAt = Date.now();
  const r = await run([
    "curl", "-sS", "-v", "-k", "--proxytunnel", "-x", `http://127.0.0.1:${HTTP_CONNECT_PORT}`, "--max-time", "25",
    `https://${address}${path}`,
  ], { ns: state.plan.cpNamespace, allowFailure: true, timeoutMs: 30_000 });
  const stderr = r.stderr.replace(/\r$/gm, "");
  const m = /< HTTP\/1\.[01] (\d{3})/.exec(stderr) ?? /CONNECT tunnel failed, response (\d{3})/.exec(stderr);
  const connectStatus = m ? Number(m[1]) : null;
  if (connectStatus === null || connectStatus === 200) return { exitCode: r.code, connectStatus, dialFailure: null, body: r.stdout, stderr };
  // curl reads a failed CONNECT's headers but never its body, where the tunnel says why (the dial
  // error and what to run). The server records every failed dial with that same text before it
  // answers: read it from the admin port's snapshot rather than dial again, which would fail (and
  // be recorded) a second time.
  const snapshot = await run(["curl", "-sS", "--max-time", "5", `http://127.0.0.1:${SERVER_ADMIN_PORT}/api/snapshot`], {
    ns: state.plan.cpNamespace, allowFailure: true, timeoutMs: 10_000,
  });
  const dialFailure = snapshot.code === 0 ? dialFailureOf(snapshot.stdout, address, startedAt) : null;
  return { exitCode: r.code, connectStatus, dialFailure, body: r.stdout, stderr: withDialFailure(stderr, connectStatus, dialFailure) };
}

/**
 * The newest failure the server's snapshot (`/api/snapshot`) records for `address` since
 * `sinceMs`, as its error body words it: `<error> — <explanation>`; null where there is none.
 */
export function dialFailureOf(snapshotJson: string, address: string, sinceMs: number): string | null {
  let failures: unknown;
  try {
    failures = (JSON.parse(snapshotJson) as { recentFailures?: unknown }).recentFailures;
  } catch {
    return null;
  }
  if (!Array.isArray(failures)) return null;
  let newest: { at: number; error: string; explanation: string } | null = null;
  for (const f of failures as Array<Record<string, unknown>>) {
    if (f["address"] !== address || typeof f["at"] !== "number" || f["at"] < sinceMs || typeof f["error"] !== "string") continue;
    if (newest === null || f["at"] >= newest.at) newest = { at: f["at"], error: f["error"], explanation: typeof f["explanation"] === "string" ? f["explanation"] : "" };
  }
  if (newest === null) return null;
  return newest.explanation === "" ? newest.error : `${newest.error} — ${newest.explanation}`;
}

/** curl's verbose log with the server's reason, as `* CONNECT <status>: the server says ...`, before curl's own error line. */
export function withDialFailure(stderr: string, status: number, failure: string | null): string {
  if (failure === null) return stderr;
  const line = `* CONNECT ${status}: the server says: ${failure}`;
  const lines = stderr.split("\n");
  const at = lines.findIndex((l) => /^curl: \(/.test(l));
  if (at < 0) return `${stderr}${stderr === "" || stderr.endsWith("\n") ? "" : "\n"}${line}\n`;
  return [...lines.slice(0, at), line, ...lines.slice(at)].join("\n");
}
