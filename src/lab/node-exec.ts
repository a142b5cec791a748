// Commands "on a node": inside the node's network namespace AND a private mount namespace where
// /etc/ufw and /etc/default/ufw are the node's own copies (as test/fixtures/doctor/ufw/generate.sh
// does), so ufw on a lab node never reads or writes the host's /etc/ufw or its firewall.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LabNode } from "./lab-plan.js";
import { stateDir } from "./lab-state.js";

export interface NodeEtc {
  readonly ufw: string;
  readonly defaultUfw: string;
  /** The two as `lab up` made them (disabled, the host's defaults): what the ufw faults' off switch restores. */
  readonly pristineUfw: string;
  readonly pristineDefaultUfw: string;
}

export function nodeEtc(prefix: string, node: LabNode): NodeEtc {
  const dir = join(stateDir(prefix), node.name);
  return {
    ufw: join(dir, "etc-ufw"), defaultUfw: join(dir, "default-ufw"),
    pristineUfw: join(dir, "pristine-etc-ufw"), pristineDefaultUfw: join(dir, "pristine-default-ufw"),
  };
}

/** Copies the host's ufw configuration once per node (read only), disabled, without sysctl or module loading. */
export function prepareNodeEtc(prefix: string, node: LabNode): NodeEtc {
  const etc = nodeEtc(prefix, node);
  if (existsSync(etc.ufw)) return etc;
  mkdirSync(join(stateDir(prefix), node.name), { recursive: true, mode: 0o700 });
  cpSync("/etc/ufw", etc.ufw, { recursive: true });
  writeFileSync(join(etc.ufw, "ufw.conf"), "ENABLED=no\nLOGLEVEL=low\n");
  // IPT_SYSCTL would run sysctl -p on ufw's sysctl.conf; most net.* keys are per namespace but not
  // all, so the lab does not rely on it (same choice as the fixture generator).
  const defaults = readFileSync("/etc/default/ufw", "utf8")
    .replace(/^IPT_SYSCTL=.*$/m, "IPT_SYSCTL=/dev/null")
    .replace(/^IPT_MODULES=.*$/m, 'IPT_MODULES=""');
  writeFileSync(etc.defaultUfw, defaults);
  cpSync(etc.ufw, etc.pristineUfw, { recursive: true });
  cpSync(etc.defaultUfw, etc.pristineDefaultUfw);
  return etc;
}

/**
 * Puts the node's ufw configuration back as `lab up` made it. `ufw --force reset` alone does not:
 * it keeps /etc/default/ufw (so a `ufw default allow incoming` outlives it) and leaves its backups.
 * Run it after ufw is disabled on the node, so the kernel holds no ufw rule either.
 */
export function restoreNodeEtc(prefix: string, node: LabNode): void {
  const etc = nodeEtc(prefix, node);
  if (!existsSync(etc.pristineUfw)) return; // a lab built before the copies were kept: nothing to restore from
  // Every command on the node bind-mounts these paths afresh (onNode), so they can be replaced.
  rmSync(etc.ufw, { recursive: true, force: true });
  cpSync(etc.pristineUfw, etc.ufw, { recursive: true });
  writeFileSync(etc.defaultUfw, readFileSync(etc.pristineDefaultUfw));
}

const enterScript = 'mount --bind "$1" /etc/ufw && mount --bind "$2" /etc/default/ufw && shift 2 && exec "$@"';

/** argv that runs `argv` on the node (network namespace + private /etc/ufw). The PID is the command's own. */
export function onNode(prefix: string, node: LabNode, argv: readonly string[]): string[] {
  const etc = nodeEtc(prefix, node);
  return ["ip", "netns", "exec", node.namespace, "unshare", "--mount", "--propagation", "private", "sh", "-c", enterScript, "sh", etc.ufw, etc.defaultUfw, ...argv];
}
