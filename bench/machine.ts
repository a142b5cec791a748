// The machine and the code a result was measured on, recorded with every result.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { resolve } from "node:path";

export interface MachineDescription {
  readonly hostname: string;
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly openFileLimit: number;
}

export interface CodeVersion {
  readonly commit: string;
  /** True when src/, bin/ or native/ differ from the commit (other work in progress was measured too). */
  readonly dirty: boolean;
}

export function describeMachine(openFileLimit: number): MachineDescription {
  let cpuModel = "unknown";
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux: keep "unknown"
  }
  return {
    hostname: os.hostname(),
    cpuModel,
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    openFileLimit,
  };
}

export function shortMachineName(m: MachineDescription): string {
  return (m.hostname.split(".")[0] ?? "machine").replace(/[^A-Za-z0-9-]/g, "-").slice(0, 32) || "machine";
}

export function codeVersion(): CodeVersion {
  const cwd = resolve(import.meta.dirname, "..");
  const git = (...args: string[]) => execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    return { commit: git("rev-parse", "HEAD"), dirty: git("status", "--porcelain", "--", "src", "bin", "native") !== "" };
  } catch {
    return { commit: "unknown", dirty: true };
  }
}
