// `nodetunnel lab up|down|status|fault|exec|curl`: the network-namespace lab (docs/lab.md). The
// CLI owns what the lab may not: the certificates (createPki), the process's uid and its exit.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, Option } from "commander";
import { DoctorInputError, parseNsg, renderErrorLine } from "../doctor/index.js";
import {
  CONTROL_PLANE_IP, FAULT_NAMES, checkPrerequisites, curlThroughTunnel, labDown, labExecArgv, labStatus, labUp, planLab,
  requireState, setFault, type FaultName, type LabCertificates,
} from "../lab/index.js";
import { resolveServerOptions, type ProxyStrategy } from "../server/index.js";
import { createPki } from "../transport/index.js";
import type { CliIo } from "./cli-io.js";
import { UsageError, withCliErrors } from "./command-support.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

function runLab(io: CliIo, what: string, body: () => Promise<void>): Promise<void> {
  return body().catch((err: unknown) => {
    io.stderr.write(`nodetunnel lab ${what}: ${err instanceof Error ? err.message : String(err)}\n`);
    io.exit(err instanceof UsageError ? 2 : 1);
  });
}

const progress = (io: CliIo) => (line: string) => io.stderr.write(`lab: ${line}\n`);
const prefixOption = () => new Option("--prefix <name>", "namespace prefix of the lab (several labs can coexist)").default("nt");

function intOption(flag: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`${flag}: expected a whole number ${min}–${max}, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * The server's own check of --proxy-strategies, before anything is built: a server that refused
 * them would only die inside the control plane. resolveServerOptions checks the strategies first;
 * a later complaint (no frontend here) means they passed.
 */
function checkProxyStrategies(list: string): void {
  const strategies = list.split(",").map((s) => s.trim()).filter(Boolean) as ProxyStrategy[];
  try {
    resolveServerOptions({ proxyStrategies: strategies });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (message.startsWith("--proxy-strategies")) throw new UsageError(message);
  }
}

/** --nsg read and parsed here, so a bad file is an input error (exit 2) naming the file and line, as the doctor's are. */
function readNsgFlag(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`--nsg ${path}: cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    parseNsg(text, path);
  } catch (err) {
    if (!(err instanceof DoctorInputError)) throw err;
    throw new UsageError(`--nsg ${renderErrorLine({ message: err.message, file: path, line: err.line ?? null, expected: err.expected ?? null })}`);
  }
  return text;
}

const signalExitCodes = { SIGINT: 130, SIGTERM: 143 } as const;

async function makeCertificates(nodes: ReadonlyArray<{ name: string; ip: string }>): Promise<LabCertificates> {
  const pki = await createPki({ serverNames: ["nodetunnel-lab-server"], serverIps: [CONTROL_PLANE_IP] });
  const kubelets: Record<string, { cert: string; key: string }> = {};
  for (const n of nodes) kubelets[n.name] = await pki.issue(n.name, { dns: [n.name], ips: [n.ip] });
  return { ca: pki.ca, server: pki.server, client: pki.client, kubelets };
}

export function labCommand(io: CliIo): Command {
  const lab = withCliErrors(new Command("lab"), io, "nodetunnel lab")
    .description("an AKS-like cluster in network namespaces where every cause of a broken tunnel can be switched on (needs root)")
    .addHelpText("after", `
Examples:
  sudo nodetunnel lab up                                # 3 nodes, an agent on each (destHost)
  sudo nodetunnel lab up --agents node-1,node-3         # agents on some nodes only (destHost,default)
  sudo nodetunnel lab fault iptables-drop node-2
  sudo nodetunnel lab curl node-2                        # kubectl logs' path: CONNECT through the tunnel
  sudo nodetunnel lab exec node-2 -- nodetunnel doctor node --server ${CONTROL_PLANE_IP}:8132 --source 10.224.0.4
  sudo nodetunnel lab fault iptables-drop node-2 --off
  sudo nodetunnel lab down

Faults: ${FAULT_NAMES.join(", ")}. See docs/lab.md.`);

  lab.command("up")
    .description("create the namespaces, start the server, kubelets and agents")
    .addOption(prefixOption())
    .option("--nodes <n>", "number of nodes (1–8)", "3")
    .option("--agents <names>", "nodes that run an agent, comma-separated (default: every node)")
    .option("--snat-ports <n>", "SNAT ports per node on the router's outbound NAT (the load balancer's allocation)", "8")
    .option("--proxy-strategies <list>", "the server's strategies (default destHost with an agent on every node, else destHost,default)")
    .action(async (o: { prefix: string; nodes: string; agents?: string; snatPorts: string; proxyStrategies?: string }) => {
      await runLab(io, "up", async () => {
        const input = {
          prefix: o.prefix,
          nodes: intOption("--nodes", o.nodes, 1, 8),
          snatPortsPerNode: intOption("--snat-ports", o.snatPorts, 2, 1024),
          ...(o.agents === undefined ? {} : { agents: o.agents.split(",").map((s) => s.trim()).filter(Boolean) }),
          ...(o.proxyStrategies === undefined ? {} : { proxyStrategies: o.proxyStrategies }),
        };
        let plan;
        try {
          plan = planLab(input);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        checkProxyStrategies(plan.proxyStrategies);
        await checkPrerequisites(process.getuid?.() ?? -1);
        // SIGINT/SIGTERM stop the build and tear down what was built (a second one only says to wait).
        const abort = new AbortController();
        let caught: keyof typeof signalExitCodes | undefined;
        const removeSignalHandler = io.onSignal?.((signal) => {
          if (caught !== undefined) {
            io.stderr.write(`lab: ${signal}: still tearing down the half-built lab; wait for it\n`);
            return;
          }
          caught = signal;
          io.stderr.write(`lab: ${signal}: stopping lab up\n`);
          abort.abort(new Error(`interrupted by ${signal}`));
        });
        try {
          io.stderr.write("lab: generating the lab's certificates\n");
          const certs = await makeCertificates(plan.nodes);
          const started = Date.now();
          await labUp(input, certs, { repoRoot, nodeBin: process.execPath, progress: progress(io), signal: abort.signal });
          io.stdout.write(`lab ${o.prefix} is up (${((Date.now() - started) / 1000).toFixed(1)} s). Try: nodetunnel lab curl node-1\n`);
        } catch (err) {
          if (caught === undefined) throw err;
          io.stderr.write(`nodetunnel lab up: interrupted by ${caught}; tore down what was built\n`);
          io.exit(signalExitCodes[caught]);
        } finally {
          removeSignalHandler?.();
        }
      });
    });

  lab.command("down")
    .description("stop every lab process, delete the namespaces and routes (idempotent; also cleans up a half-built lab)")
    .addOption(prefixOption())
    .action(async (o: { prefix: string }) => {
      await runLab(io, "down", async () => {
        await checkPrerequisites(process.getuid?.() ?? -1);
        const { removed } = await labDown(o.prefix, progress(io));
        io.stdout.write(removed.length === 0 ? `no lab with prefix ${o.prefix}; nothing to remove\n` : `removed ${removed.join(", ")}\n`);
      });
    });

  lab.command("status")
    .description("the lab's addresses, processes and faults")
    .addOption(prefixOption())
    .addOption(new Option("--output <format>", "text or json").choices(["text", "json"]).default("text"))
    .action((o: { prefix: string; output: string }) => {
      const s = labStatus(o.prefix);
      io.stdout.write(o.output === "json" ? JSON.stringify(s, null, 2) + "\n" : s.lines.join("\n") + "\n");
      io.exit(s.up ? 0 : 1);
    });

  lab.command("fault")
    .description("switch a cause on (or off with --off) for one node")
    .argument("<fault>", `one of ${FAULT_NAMES.join(", ")}`)
    .argument("<node>", "node-1, node-2, ...")
    .addOption(prefixOption())
    .option("--off", "switch the fault off")
    .option("--chain <name>", "iptables-drop/-reject: put the rule in this user chain (jumped to from INPUT)")
    .addOption(new Option("--where <place>", "egress-*: block in the router (the NSG/firewall) or in the node's OUTPUT").choices(["router", "node"]))
    .option("--nsg <file>", "nsg-deny: the NSG JSON (az network nsg show -o json) to enforce; default a deny of 10250 from the VNet")
    .option("--source <ip>", "nsg-deny: the address connections come from (default: an agent node's)")
    .option("--attempts <n>", "snat-exhaustion: new connections the chatty client opens", "40")
    .addOption(new Option("--output <format>", "text or json").choices(["text", "json"]).default("text"))
    .action(async (fault: string, node: string, o: { prefix: string; off?: boolean; chain?: string; where?: "router" | "node"; nsg?: string; source?: string; attempts: string; output: string }) => {
      await runLab(io, "fault", async () => {
        if (!(FAULT_NAMES as readonly string[]).includes(fault)) throw new UsageError(`unknown fault "${fault}": expected one of ${FAULT_NAMES.join(", ")}`);
        if (o.chain !== undefined && !/^[A-Za-z0-9_-]{1,28}$/.test(o.chain)) throw new UsageError(`--chain: expected a chain name, got ${JSON.stringify(o.chain)}`);
        const nsgText = o.nsg === undefined || o.off ? undefined : readNsgFlag(o.nsg);
        const attempts = intOption("--attempts", o.attempts, 1, 500);
        const state = requireState(o.prefix);
        const result = await setFault(state, fault as FaultName, node, !o.off, {
          ...(o.chain ? { chain: o.chain } : {}),
          ...(o.where ? { where: o.where } : {}),
          ...(nsgText === undefined ? {} : { nsgText }),
          ...(o.source ? { source: o.source } : {}),
          attempts,
        }, progress(io));
        io.stdout.write(o.output === "json" ? JSON.stringify(result, null, 2) + "\n" : `${result.fault} ${result.on ? "on" : "off"} for ${result.node}: ${result.detail}\n`);
      });
    });

  lab.command("exec")
    .description("run a command on a node (its namespace and its own /etc/ufw), or in cp / router")
    .argument("<place>", "node-1, node-2, ..., cp or router")
    .argument("<command...>", "the command (put it after --)")
    .addOption(prefixOption())
    .action(async (place: string, command: string[], o: { prefix: string }) => {
      await runLab(io, "exec", async () => {
        const argv = labExecArgv(o.prefix, place, command[0] === "nodetunnel" ? [process.execPath, `${repoRoot}bin/nodetunnel.js`, ...command.slice(1)] : command);
        const r = spawnSync(argv[0]!, argv.slice(1), { stdio: "inherit" });
        io.exit(r.status ?? 1);
      });
    });

  lab.command("curl")
    .description("fetch a node's kubelet through the tunnel, as kube-apiserver does for kubectl logs (curl --proxytunnel from the control plane)")
    .argument("<node>", "node-1, node-2, ...")
    .argument("[path]", "the kubelet path", "/containerLogs/default/web/app")
    .addOption(prefixOption())
    .action(async (node: string, path: string, o: { prefix: string }) => {
      await runLab(io, "curl", async () => {
        const r = await curlThroughTunnel(o.prefix, node, path);
        if (r.exitCode === 0) io.stdout.write(r.body);
        else io.stderr.write(`CONNECT answered ${r.connectStatus ?? "nothing"}; curl: ${r.stderr.split("\n").filter((l) => /^curl:|^< HTTP|^\* CONNECT/.test(l)).join(" | ")}\n`);
        io.exit(r.exitCode === 0 ? 0 : 1);
      });
    });
  return lab;
}
