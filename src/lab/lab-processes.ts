// The lab's long-running processes (server, agents, kubelets, the chatty client): started detached
// inside their namespace with a log file, recorded by PID, stopped by that PID only.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathEnv, run } from "./run-command.js";
import { stateDir, type LabProcess, type LabRole } from "./lab-state.js";

export interface StartProcess {
  readonly prefix: string;
  readonly role: LabRole;
  readonly node: string | null;
  readonly namespace: string;
  /** The full argv, already wrapped in `ip netns exec` (and the node's mount namespace if needed). */
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** How a lab process ended: its exit code, or the signal that ended it. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A process this lab command started: its record for the state, and its end, while this command runs. */
export interface StartedProcess {
  readonly record: LabProcess;
  /** Settles when the process ends (only observable by the command that started it). */
  readonly exited: Promise<ProcessExit>;
}

export function startProcess(p: StartProcess): StartedProcess {
  const log = join(stateDir(p.prefix), "logs", `${p.role}${p.node ? "-" + p.node : ""}.log`);
  const fd = openSync(log, "a", 0o600);
  try {
    const child = spawn(p.argv[0]!, p.argv.slice(1), {
      cwd: p.cwd,
      detached: true,
      stdio: ["ignore", fd, fd],
      env: { PATH: pathEnv, HOME: "/root", NODETUNNEL_LAB: p.prefix, NO_COLOR: "1", ...p.env },
    });
    if (child.pid === undefined) throw new Error(`could not start ${p.argv.join(" ")}`);
    // unref: the lab outlives the command that started it; the exit is still reported while the command runs.
    const exited = new Promise<ProcessExit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    child.unref();
    return { record: { role: p.role, node: p.node, namespace: p.namespace, pid: child.pid, log }, exited };
  } finally {
    closeSync(fd);
  }
}

/** The last `lines` lines of a process's log ("" when there is none). */
export function logTail(log: string, lines = 15): string {
  try {
    return readFileSync(log, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** "the server (pid 9) exited with code 1 while waiting for …", with the end of its log: why a wait was given up. */
export function describeExit(p: LabProcess, exit: ProcessExit, during: string): string {
  const who = `the ${p.role}${p.node ? " on " + p.node : ""} (pid ${p.pid})`;
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const tail = logTail(p.log);
  return `${who} ${how} ${during}; ${tail ? `the end of its log ${p.log}:\n${tail.replace(/^/gm, "  ")}` : `its log ${p.log} is empty`}`;
}

/** Is `pid` alive and still one of ours (started with NODETUNNEL_LAB=<prefix>)? Guards against PID reuse. */
export function isOurs(pid: number, prefix: string): boolean {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
    const state = readFileSync(`/proc/${pid}/stat`, "latin1");
    return env.includes(`NODETUNNEL_LAB=${prefix}`) && !/^\d+ \(.*\) Z/.test(state);
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `first` (SIGTERM: a graceful stop), then SIGKILL after `graceMs`; waits (bounded) until the processes are gone. */
export async function stopProcesses(pids: readonly number[], prefix: string, graceMs = 3000, first: NodeJS.Signals = "SIGTERM"): Promise<void> {
  const ours = pids.filter((pid) => isOurs(pid, prefix));
  for (const pid of ours) signal(pid, first);
  const deadline = Date.now() + graceMs;
  while (ours.some((pid) => isOurs(pid, prefix)) && Date.now() < deadline) await sleep(50);
  for (const pid of ours.filter((p) => isOurs(p, prefix))) signal(pid, "SIGKILL");
  const killDeadline = Date.now() + 2000;
  while (ours.some((pid) => isOurs(pid, prefix)) && Date.now() < killDeadline) await sleep(50);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Every PID inside a namespace (they can only be processes the lab started there). */
export async function pidsInNamespace(ns: string): Promise<number[]> {
  const r = await run(["ip", "netns", "pids", ns], { allowFailure: true });
  return r.code === 0 ? r.stdout.split(/\s+/).filter(Boolean).map(Number).filter(Number.isInteger) : [];
}

/** Kills every process in the namespace (down's recovery path: a half-built lab may have unrecorded ones). */
export async function killNamespacePids(ns: string): Promise<void> {
  const pids = await pidsInNamespace(ns);
  for (const pid of pids) signal(pid, "SIGTERM");
  const deadline = Date.now() + 3000;
  while ((await pidsInNamespace(ns)).length > 0 && Date.now() < deadline) await sleep(100);
  for (const pid of await pidsInNamespace(ns)) signal(pid, "SIGKILL");
  const killDeadline = Date.now() + 2000;
  while ((await pidsInNamespace(ns)).length > 0 && Date.now() < killDeadline) await sleep(100);
}
