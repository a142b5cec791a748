// A lab state without the lab: the plan and state file of a lab, and (when asked) its node
// namespaces with their private ufw configuration, but no router, server, agents or routes.
// Enough for the focused tests of the faults' logic; `labDown` removes it like a real lab.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { LabCertificates } from "../../src/lab/index.js";
import { prepareNodeEtc } from "../../src/lab/node-exec.js";
import { planLab, type LabPlanInput } from "../../src/lab/lab-plan.js";
import { writeState, type LabState } from "../../src/lab/lab-state.js";
import { createNamespace } from "../../src/lab/lab-topology.js";
import { createPki } from "../../src/transport/index.js";

export const isRoot = process.getuid?.() === 0;

/**
 * Why a lab test cannot run here, or false: the lab needs root, iproute2, iptables, ufw (its
 * binary and the /etc/ufw it copies into each node) and unshare. CI installs them (.ci/run).
 */
export function labSkip(needsRootFor: string): string | false {
  if (!isRoot) return `needs root: ${needsRootFor}`;
  const dirs = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  const missing = ["ip", "iptables", "ufw", "unshare"].filter((tool) => !dirs.some((d) => existsSync(`${d}/${tool}`)));
  if (!existsSync("/etc/ufw")) missing.push("/etc/ufw");
  return missing.length === 0 ? false : `needs ${missing.join(", ")} (apt-get install iproute2 iptables ufw util-linux)`;
}

export async function bareLab(input: LabPlanInput & { prefix: string }, options: { nodeNamespaces?: boolean } = {}): Promise<LabState> {
  const plan = planLab(input);
  const state: LabState = {
    version: 1, plan, repoRoot: process.cwd(), nodeBin: process.execPath, namespaces: [], routes: [], processes: [], faults: {}, ready: true,
  };
  writeState(state);
  if (options.nodeNamespaces) {
    for (const node of plan.nodes) {
      await createNamespace(state, node.namespace);
      prepareNodeEtc(plan.prefix, node);
    }
  }
  return state;
}

/** The certificates `lab up` needs (the CLI makes them the same way). */
export async function labCertificates(plan: { nodes: ReadonlyArray<{ name: string; ip: string }> }): Promise<LabCertificates> {
  const pki = await createPki({ serverNames: ["nodetunnel-lab-server"], serverIps: ["10.225.0.4"] });
  const kubelets: Record<string, { cert: string; key: string }> = {};
  for (const n of plan.nodes) kubelets[n.name] = await pki.issue(n.name, { dns: [n.name], ips: [n.ip] });
  return { ca: pki.ca, server: pki.server, client: pki.client, kubelets };
}

/** PIDs of live processes a lab with this prefix started (they carry NODETUNNEL_LAB=<prefix>). */
export function labPids(prefix: string): number[] {
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(`NODETUNNEL_LAB=${prefix}`);
    } catch {
      return false;
    }
  }).map(Number);
}
