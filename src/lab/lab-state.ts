// The lab's state file under /run/nodetunnel-lab/<prefix>/: what was created (recorded before it
// is created, so `lab down` can undo a half-built lab), the processes started, the faults on.
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LabPlan } from "./lab-plan.js";

export const STATE_ROOT = "/run/nodetunnel-lab";

export type LabRole = "server" | "agent" | "kubelet" | "chatty-client";

export interface LabProcess {
  readonly role: LabRole;
  readonly node: string | null;
  readonly namespace: string;
  readonly pid: number;
  readonly log: string;
}

/** The options a fault was switched on with (so `--off` undoes the same thing). */
export interface LabFaultOptions {
  readonly chain?: string;
  readonly where?: "router" | "node";
  readonly source?: string;
  readonly attempts?: number;
}

export interface LabState {
  readonly version: 1;
  readonly plan: LabPlan;
  readonly repoRoot: string;
  readonly nodeBin: string;
  namespaces: string[];
  /**
   * Root-namespace blackhole routes this lab holds: those it added and those it shares with the
   * other labs that hold them (never the host's own). The last lab holding a route removes it.
   */
  routes: string[];
  processes: LabProcess[];
  /** "fault node" → how to switch it off (kept so `fault ... --off` and `down` know what is on). */
  faults: Record<string, { readonly fault: string; readonly node: string; readonly detail: string; readonly options?: LabFaultOptions }>;
  ready: boolean;
}

export const stateDir = (prefix: string): string => join(STATE_ROOT, prefix);
const stateFile = (prefix: string) => join(stateDir(prefix), "state.json");

export function readState(prefix: string): LabState | null {
  try {
    return JSON.parse(readFileSync(stateFile(prefix), "utf8")) as LabState;
  } catch {
    return null;
  }
}

export function writeState(state: LabState): void {
  mkdirSync(stateDir(state.plan.prefix), { recursive: true, mode: 0o700 });
  const file = stateFile(state.plan.prefix);
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** The state of every other lab (any prefix but `prefix`), half-built ones included. */
export function otherLabStates(prefix: string): LabState[] {
  let names: string[];
  try {
    names = readdirSync(STATE_ROOT);
  } catch {
    return [];
  }
  return names.filter((n) => n !== prefix).map(readState).filter((s): s is LabState => s !== null);
}
