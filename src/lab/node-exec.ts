// Commands "on a node": inside the node's network namespace AND a private mount namespace where
// /etc/ufw and /etc/default/ufw are the node's own copies (as test/fixtures/doctor/ufw/generate.sh
// does), so ufw on a lab node never reads or writes the host's /etc/ufw or its firewall.
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LabNode } from "./lab-plan.js";
import { stateDir } from "./lab-state.js";

export interface NodeEtc {
  readonly ufw: string;
  readonly defaultUfw: string;
}

export function nodeEtc(prefix: string, node: LabNode): NodeEtc {
  const dir = join(stateDir(prefix), node.name);
  return { ufw: join(dir, "etc-ufw"), defaultUfw: join(dir, "default-ufw") };
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
  return etc;
}

const enterScript = 'mount --bind "$1" /etc/ufw && mount --bind "$2" /etc/default/ufw && shift 2 && exec "$@"';

/** argv that runs `argv` on the node (network namespace + private /etc/ufw). The PID is the command's own. */
export function onNode(prefix: string, node: LabNode, argv: readonly string[]): string[] {
  const etc = nodeEtc(prefix, node);
  return ["ip", "netns", "exec", node.namespace, "unshare", "--mount", "--propagation", "private", "sh", "-c", enterScript, "sh", etc.ufw, etc.defaultUfw, ...argv];
}
