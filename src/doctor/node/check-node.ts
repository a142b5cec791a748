// `doctor node`: every local check of a node in one report (doctor-cli.md `doctor node`). This
// module is pure: it takes what collect-node-state.ts read and probed, and returns the report
// with one finding per check; the node's status is the worst finding's.
import { isIP, isIPv6 } from "node:net";
import { familyOf } from "../flow-family.js";
import { DoctorInputError } from "../input-error.js";
import { withLocalBlocks, type LocalEgressBlock } from "../egress/index.js";
import type { ProbeResult } from "../egress/index.js";
import { checkIptables, findOutputBlock } from "../iptables/index.js";
import { checkNftables, checkNftablesBesideIptables, findNftOutputBlock, hasOwnNftRules } from "../nftables/index.js";
import type { CheckResult, CheckStatus, Fix, Flow } from "../report/check-result.js";
import { churnThreshold, parseConnections, summarizeChurn } from "../snat/index.js";
import { checkUfw } from "../ufw/index.js";
import { combineFixes } from "./combine-fixes.js";
import { listensOn, parseProcNetTcp } from "./parse-proc-net-tcp.js";

export interface NodeOptions {
  /** Where kubelet connections come from (the agents' addresses). */
  readonly sources: readonly string[];
  /** The node's own address (the destination of those connections). */
  readonly nodeIp: string | null;
  readonly port: number;
  readonly inInterface: string;
  /** The node's SNAT allocation, when known: scales the churn threshold (troubleshooting.md §5.4). */
  readonly snatPortsPerNode?: number;
  readonly assumptions?: readonly string[];
}

/**
 * A command's output, or why it could not be read. `stderr`: what a command that succeeded wrote
 * there (iptables-nft's warning that iptables-legacy tables are present goes there).
 */
export type Collected = { readonly ok: true; readonly text: string; readonly stderr?: string } | { readonly ok: false; readonly reason: string };

export type AgentHealth =
  | { readonly kind: "ready"; readonly target: string }
  | { readonly kind: "not-ready"; readonly target: string; readonly status: number; readonly body: string }
  | { readonly kind: "absent"; readonly target: string; readonly reason: string }
  /** Connected, or not refused, but no complete answer within the probe's deadline. */
  | { readonly kind: "timeout"; readonly target: string; readonly timeoutMs: number }
  | { readonly kind: "skipped" };

export interface NodeState {
  readonly iptablesSave: Collected;
  /** For IPv6 sources: ip6tables keeps IPv6's rules apart (absent: not read, those sources are indeterminate). */
  readonly ip6tablesSave?: Collected;
  /**
   * The legacy backend's rules, read where iptables-save is iptables-nft's (or warned of them):
   * the kernel runs both backends' rules (troubleshooting.md §4.4 "split brain"). Absent: not read.
   */
  readonly iptablesLegacySave?: Collected;
  readonly ip6tablesLegacySave?: Collected;
  readonly ufwStatus: Collected;
  readonly nftRuleset: Collected;
  /** /proc/net/tcp followed by /proc/net/tcp6 (each with its header). */
  readonly procNetTcp: readonly string[];
  /** The egress check's result (doctor egress to the server), or null when no server was given. */
  readonly egress: CheckResult | null;
  readonly agentHealth: AgentHealth;
  readonly ssTan: Collected;
  /** How the kernel routes to the server (`ip route get`), where it was given as an address and has a route. */
  readonly serverRoute?: RouteToServer;
}

/** The interface and source address the kernel picks for a connection to `host`. */
export interface RouteToServer {
  readonly host: string;
  readonly dev: string;
  /** The source address it would use; null where the route names none. */
  readonly src: string | null;
}

const rank: Record<CheckStatus, number> = { ok: 0, warning: 1, indeterminate: 2, problem: 3 };
export const worstStatus = (statuses: readonly CheckStatus[]): CheckStatus =>
  statuses.reduce<CheckStatus>((w, s) => (rank[s] > rank[w] ? s : w), "ok");

export function checkNode(state: NodeState, opts: NodeOptions): CheckResult {
  const iptables = iptablesFindings(state, opts);
  const findings: CheckResult[] = [
    ...iptables,
    ...ufwFindings(state, opts),
    ...nftFindings(state, opts, iptables),
    listenerFinding(state, opts),
    ...(state.egress ? [{ ...egressFinding(state.egress, state, opts), id: "egress" }] : []),
    ...agentFindings(state),
    ...churnFindings(state, opts),
  ];
  const status = worstStatus(findings.map((f) => f.status));
  const bad = findings.filter((f) => f.status === status && status !== "ok");
  const summary = status === "ok"
    ? `All ${findings.length} local checks passed: nothing on this node blocks the tunnel.`
    : `${bad.length === 1 ? "" : `${bad.length} findings; first: `}${bad[0]!.summary}`;
  // Not the findings' fixes one after another: planned alone, they repeat and misnumber each other.
  const fixes: Fix[] = combineFixes(findings.filter((f) => f.status === "problem"));
  return {
    check: "node",
    status,
    summary,
    fixes,
    assumptions: [...(opts.assumptions ?? []), ...(legacyTablesLoaded(state) ? [splitBrain] : [])],
    findings,
  };
}

function unreadable(id: string, check: CheckResult["check"], what: string, reason: string): CheckResult {
  return { check, id, status: "indeterminate", summary: `Could not read ${what}: ${reason}.`, fixes: [], assumptions: [] };
}

/**
 * The node's address as the flow's destination, where it is of the source's family: an IPv6
 * source reaches the node's IPv6 address, which --node-ip (IPv4 on a dual-stack node) is not.
 */
function destinationFor(source: string, opts: NodeOptions): { destination?: string } {
  return opts.nodeIp && familyOf(opts.nodeIp) === familyOf(source) ? { destination: opts.nodeIp } : {};
}

// A flow check's finding must carry the flow fields (doctor-cli.md) even where the node decided it
// without evaluating rules: one finding per source, as when the rules are evaluated.
function flowOf(source: string, opts: NodeOptions): Flow {
  return { protocol: "tcp", source, destination: opts.nodeIp, port: opts.port };
}

function iptablesFindings(state: NodeState, opts: NodeOptions): CheckResult[] {
  // IPv4 sources meet iptables' rules, IPv6 sources ip6tables': each family is judged by its own
  // dump. An IPv4-mapped source (::ffff:10.224.0.7) is an IPv4 connection (flow-family.ts).
  const v6 = opts.sources.filter((s) => familyOf(s) === "ipv6");
  const v4 = opts.sources.filter((s) => familyOf(s) === "ipv4");
  const findings: CheckResult[] = [];
  for (const [sources, dump, legacyDump, command] of [
    [v4, state.iptablesSave, state.iptablesLegacySave, "iptables-save"],
    [v6, state.ip6tablesSave ?? { ok: false, reason: "not read" }, state.ip6tablesLegacySave, "ip6tables-save"],
  ] as const) {
    if (sources.length === 0) continue;
    const legacy = legacyRules(legacyDump);
    findings.push(...familyFindings(dump, command, { ...opts, sources }, { legacyRead: legacy !== null, nftRulesetRead: state.nftRuleset.ok }));
    if (legacy !== null) findings.push(...legacyFindings(legacy, command === "ip6tables-save" ? "ip6tables" : "iptables", { ...opts, sources }));
  }
  return findings;
}

/** The legacy backend's dump where it holds a table (iptables-legacy-save prints nothing where it has none); else null. */
function legacyRules(dump: Collected | undefined): string | null {
  return dump?.ok && /^\*\w+/m.test(dump.text) ? dump.text : null;
}

/** Whether the node's iptables-legacy tables are loaded, for either family: their rules apply beside nftables' too. */
const legacyTablesLoaded = (state: NodeState): boolean =>
  legacyRules(state.iptablesLegacySave) !== null || legacyRules(state.ip6tablesLegacySave) !== null ||
  [state.iptablesSave, state.ip6tablesSave].some((d) => d?.ok === true && legacyWarning.test(d.stderr ?? ""));

const splitBrain = "iptables-legacy tables are loaded as well as nftables (iptables-nft) rules: the kernel runs both backends' rules, and neither iptables-save nor nft list ruleset shows the legacy ones; the iptables-legacy findings judge them (a split brain).";
const legacyWarning = /^#\s*Warning:\s*ip6?tables-legacy tables present/m;
// iptables-nft's note on a table where base chains it did not make (hand-written nft) were left out.
const incompatibleChains = /^#\s*Table `(\w+)' contains incompatible base-chains.*$/gm;

const bothBackends = (tool: "iptables" | "ip6tables") =>
  `Both ${tool} backends are loaded on this node: iptables-nft's rules (${tool}-save) and iptables-legacy's (${tool}-legacy-save). The kernel runs both, and a connection must get through each: the iptables finding judges the first, the iptables-legacy finding the second.`;

// The legacy backend's rules, judged as the iptables check judges any dump; its commands are
// iptables-legacy's (plain iptables is iptables-nft here, and would not touch these rules).
function legacyFindings(text: string, tool: "iptables" | "ip6tables", opts: NodeOptions): CheckResult[] {
  const legacy = (command: string) => command.replace(/^(ip6?tables) /, "$1-legacy ");
  return opts.sources.map((source) => {
    const r = checkIptables(text, { source, ...destinationFor(source, opts), port: opts.port, protocol: "tcp", inInterface: opts.inInterface, chain: "INPUT" });
    return {
      ...r,
      id: "iptables-legacy",
      summary: r.summary.replace(/(^|fix: )(ip6?tables)\b(?!-)/g, "$1$2-legacy"),
      // The saves are iptables-save's into the files the boot restores through iptables (the
      // nf_tables backend here): iptables-legacy-save there would overwrite the nft rules saved
      // beside it and load the legacy ones into nftables at boot. So no save is offered.
      fixes: r.fixes.filter((f) => !/^ip6?tables-save /.test(f.command)).map((f) => ({ ...f, command: legacy(f.command) })),
      assumptions: [
        `These are the rules ${tool}-legacy-save printed. ${bothBackends(tool)}`,
        `A change to the legacy rules is lost at reboot unless whatever loaded them (a script running ${tool}-legacy-restore) is changed too; the files netfilter-persistent and iptables-services restore hold the nf_tables backend's rules.`,
        ...r.assumptions,
      ],
    };
  });
}

/** The command is not installed (as opposed to failing): a node without iptables, nftables only. */
const isNotInstalled = (c: Collected): boolean => !c.ok && /not found|no such file|ENOENT/i.test(c.reason);

function familyFindings(dump: Collected, command: "iptables-save" | "ip6tables-save", opts: NodeOptions, seen: { legacyRead: boolean; nftRulesetRead: boolean }): CheckResult[] {
  if (opts.sources.length === 0) return [];
  const missing = isNotInstalled(dump);
  if (!dump.ok && !missing) return [unreadable("iptables", "iptables", command, dump.reason)];
  const tool = command === "ip6tables-save" ? "ip6tables" : "iptables";
  if (missing || !/^\*filter\b/m.test(dump.ok ? dump.text : "")) {
    // No filter table (or no iptables at all): nothing hooks INPUT for iptables, which lets
    // everything in, as a built-in chain with policy ACCEPT and no rules would. decidedBy has
    // iptables' shape for a policy. Without iptables, nftables' tables are all the nftables
    // finding's (hasOwnNftTables).
    const why = missing ? `${command} is not installed` : `${command} printed no *filter table`;
    return opts.sources.map((source) => ({
      check: "iptables", id: "iptables", status: "ok",
      summary: missing ? `${command} is not installed: no iptables rules on this node.` : "iptables has no filter rules on this node.",
      fixes: [], assumptions: [`${why}: no ${command.replace("-save", "")} rule filters INPUT, so it accepts (as a policy ACCEPT would).`, ...(seen.legacyRead ? [bothBackends(tool)] : [])],
      flow: flowOf(source, opts), verdict: "allowed", effect: "accept",
      decidedBy: { table: "filter", chain: "INPUT", rule: null, target: "policy", policy: "ACCEPT", text: `no filter rules (${why})` },
    }));
  }
  let text = dump.ok ? dump.text : "";
  const notes: string[] = [];
  // iptables-nft warns of legacy tables on stderr. Where their dump was read they have their own
  // finding; where not, the warning goes with the dump, which the iptables check reads as "the
  // legacy rules apply too, and are not in this input".
  const warning = dump.ok ? (dump.stderr ?? "").split("\n").find((l) => legacyWarning.test(l)) : undefined;
  if (seen.legacyRead) notes.push(bothBackends(tool));
  else if (warning !== undefined) text = `${warning}\n${text}`;
  // Base chains iptables-nft did not make (a hand-written `table ip filter`) are left out of
  // iptables-save; the nftables finding judges them from `nft list ruleset`, so here the rest is whole.
  if (seen.nftRulesetRead) {
    text = text.replace(incompatibleChains, (_line, table: string) => {
      notes.push(`${command} left out base chains of table ${table} that iptables-nft did not make ("# Table \`${table}' contains incompatible base-chains"): the nftables finding judges them from nft list ruleset.`);
      return "";
    });
  }
  return opts.sources.map((source) => {
    const r = checkIptables(text, {
      source, ...destinationFor(source, opts), port: opts.port, protocol: "tcp", inInterface: opts.inInterface, chain: "INPUT",
    });
    return { ...r, id: "iptables", ...(notes.length > 0 ? { assumptions: [...notes, ...r.assumptions] } : {}) };
  });
}

// A probe of the server that failed may have been stopped by the node itself: a DROP or REJECT in
// its filter OUTPUT chain, or on nftables' output path, looks from the probe like a firewall on the
// path. With the node's rules read, walk them for the probe's connection (from the node's address,
// leaving by the default route's interface): iptables' OUTPUT first, then, where nothing there
// blocks it, the nftables tables of the node's own; a rule that blocks it becomes the finding's
// cause and its fix the node's.
function egressFinding(egress: CheckResult, state: NodeState, opts: NodeOptions): CheckResult {
  if (egress.status === "ok" || opts.nodeIp === null) return egress;
  const nodeIp = opts.nodeIp;
  const probes = (egress.probes ?? []) as readonly ProbeResult[];
  const blocks: LocalEgressBlock[] = [];
  const notes: string[] = [];
  const assumptions: string[] = [];
  // A server given by name is walked at each address the probe dialled (all of them failed).
  const walks = probes.flatMap((p) => {
    if (p.result === "connected") return [];
    const hosts = isIP(p.host) !== 0 ? [p.host] : p.addresses ?? (p.address ? [p.address] : []);
    return hosts.filter((host) => isIP(host) !== 0).map((host) => ({ p, host }));
  });
  for (const { p, host } of walks) {
    // The kernel's route to the server, where it was read, names the interface and source address
    // the connection really uses; otherwise the node's address and the kubelet interface stand in.
    const route = state.serverRoute?.host === host ? state.serverRoute : undefined;
    const source = route?.src && isIPv6(route.src) === isIPv6(host) ? route.src : nodeIp;
    if (isIPv6(host) !== isIPv6(source)) continue;
    const outInterface = route?.dev ?? opts.inInterface;
    const flow = { source, destination: host, port: p.port, protocol: "tcp" as const, outInterface };
    const named = host === p.host ? host : `${host} (${p.host} as the probe resolved it)`;
    const connection = `a new TCP connection from ${source} to ${named} port ${p.port} leaving by ${outInterface} (${route ? "the kernel's route to it, ip route get" : "the interface given for kubelet connections"})`;
    const blocking = (b: { where: string; effect: "drop" | "reject" } | null) => (b ? `: ${b.where} ${b.effect === "drop" ? "drops" : "rejects"} it` : ": no rule there blocks it");
    // A rule that blocks several addresses of one name, with the same fix for each (a delete), is
    // one block; an accept inserted for one address does not open the other.
    const add = (b: LocalEgressBlock, blockNotes: readonly string[]) => {
      const key = (o: LocalEgressBlock) => JSON.stringify([o.host, o.port, o.rule, o.fixes.map((f) => f.command)]);
      const same = (o: LocalEgressBlock) => key(o) === key(b);
      if (blocks.some(same)) return;
      blocks.push(b);
      notes.push(...blockNotes);
    };
    const dump = isIPv6(host) ? state.ip6tablesSave : state.iptablesSave;
    let block = null;
    if (dump?.ok) {
      try {
        block = findOutputBlock(dump.text, flow);
        const command = isIPv6(host) ? "ip6tables" : "iptables";
        assumptions.push(`${command} filter OUTPUT was walked for ${connection}${blocking(block)}.`);
        if (block) {
          add({
            host: p.host, address: host, port: p.port, where: block.where, effect: block.effect, fixes: block.fixes, steps: block.steps,
            rule: { command, table: "filter", chain: block.decidedBy.chain, rule: block.decidedBy.rule, text: block.decidedBy.text },
          }, block.notes);
        }
      } catch {
        // an unreadable dump is the iptables finding's to report
      }
    }
    // nftables' own tables (iptables-nft's were walked as iptables above, with its rule numbers).
    if (block || !hasOwnNftTables(state)) continue;
    let nft;
    try {
      nft = findNftOutputBlock(state.nftRuleset.ok ? state.nftRuleset.text : "", flow);
    } catch {
      continue; // an unreadable ruleset is the nftables finding's to report
    }
    assumptions.push(`nftables' output path (filter and route chains on the output and postrouting hooks) was walked for ${connection}${blocking(nft)}.`);
    if (!nft) continue;
    add({ host: p.host, address: host, port: p.port, where: nft.where, effect: nft.effect, fixes: nft.fixes, steps: nft.steps, rule: nft.rule }, nft.notes);
  }
  let result = blocks.length === 0 ? egress : withLocalBlocks(egress, blocks);
  if (notes.length > 0) result = { ...result, details: [...(result.details ?? []), ...notes] };
  return assumptions.length === 0 ? result : { ...result, assumptions: [...result.assumptions, ...assumptions] };
}

function ufwFindings(state: NodeState, opts: NodeOptions): CheckResult[] {
  if (!state.ufwStatus.ok) {
    return /not found|no such file|ENOENT/i.test(state.ufwStatus.reason) ? [] : [unreadable("ufw", "ufw", "ufw status verbose", state.ufwStatus.reason)];
  }
  return opts.sources.map((source) => ({
    ...checkUfw(state.ufwStatus.ok ? state.ufwStatus.text : "", {
      source, ...destinationFor(source, opts), port: opts.port, protocol: "tcp", inInterface: opts.inInterface,
    }),
    id: "ufw",
  }));
}

/**
 * Whether `nft list ruleset` shows rules besides iptables-nft's (those are iptables-save's to show):
 * a table or base chain iptables-nft did not make, told by its chains, not its table's name
 * (iptables-nft-chains.ts: `table ip filter` is a common name in hand-written rulesets too). Where
 * iptables is not installed, every table is nftables' own.
 */
/**
 * No nft chain is one iptables-save shows: iptables is not installed, or iptables-save is the
 * legacy backend. The nf_tables backend's header names it ("iptables-save v1.8.9 (nf_tables)");
 * the legacy one's names no backend.
 */
const iptablesShowsNoNftChain = (state: NodeState): boolean =>
  isNotInstalled(state.iptablesSave) || (state.iptablesSave.ok && /^# Generated by iptables-save v[\d.]+ on /m.test(state.iptablesSave.text));

function hasOwnNftTables(state: NodeState): boolean {
  if (!state.nftRuleset.ok) return false;
  if (iptablesShowsNoNftChain(state)) return /^table /m.test(state.nftRuleset.text);
  try {
    return hasOwnNftRules(state.nftRuleset.text);
  } catch {
    return true; // the nftables finding reports what it cannot read
  }
}

function nftFindings(state: NodeState, opts: NodeOptions, iptables: readonly CheckResult[]): CheckResult[] {
  if (!state.nftRuleset.ok || !hasOwnNftTables(state)) return [];
  const text = state.nftRuleset.text;
  const legacyRulesPresent = legacyTablesLoaded(state);
  const withoutIptables = iptablesShowsNoNftChain(state);
  return opts.sources.flatMap((source) => {
    const flow = { source, ...destinationFor(source, opts), port: opts.port, protocol: "tcp" as const, inInterface: opts.inInterface, legacyRulesPresent };
    let checked;
    try {
      // Without iptables (or with its legacy backend) no table is iptables-nft's: the whole ruleset is walked.
      checked = withoutIptables ? { result: checkNftables(text, flow), decidedInIptablesNft: false } : checkNftablesBesideIptables(text, flow);
    } catch (err) {
      if (!(err instanceof DoctorInputError)) throw err;
      return [unreadable("nftables", "nftables", "nft list ruleset", err.message)];
    }
    // The walk ended in one of iptables-nft's chains (kept for what it changes): the iptables
    // finding for this source reports that decision already, unless it saw none.
    const reported = iptables.some((f) => f.id === "iptables" && f.flow?.source === source && f.status !== "ok");
    if (checked.decidedInIptablesNft && reported) return [];
    return [{ ...checked.result, id: "nftables" }];
  });
}

function listenerFinding(state: NodeState, opts: NodeOptions): CheckResult {
  const base = { check: "node" as const, id: "kubelet-listener", assumptions: [] };
  let listeners;
  try {
    listeners = state.procNetTcp.flatMap((t) => parseProcNetTcp(t));
  } catch (err) {
    return { ...base, status: "indeterminate", summary: `Could not read the listening sockets: ${(err as Error).message}.`, fixes: [] };
  }
  if (listensOn(listeners, opts.port, opts.nodeIp ?? undefined)) {
    return { ...base, status: "ok", summary: `Something listens on port ${opts.port}${opts.nodeIp ? ` for ${opts.nodeIp}` : ""} (the kubelet).`, fixes: [] };
  }
  const bound = [...new Set(listeners.filter((l) => l.port === opts.port).map((l) => l.address))];
  if (bound.length > 0) {
    // The kubelet runs, bound to the wrong address: restarting it as it is changes nothing.
    return {
      ...base,
      status: "problem",
      summary: `Port ${opts.port} listens only on a local address (${bound.join(", ")}), not on ${opts.nodeIp}: connections through the tunnel are refused (502, connection refused).`,
      fixes: bindAddressFixes(opts.port, opts.nodeIp ?? "<node-ip>"),
    };
  }
  return {
    ...base,
    status: "problem",
    summary: `Nothing listens on port ${opts.port}: the kubelet is down, so connections through the tunnel are refused (502, connection refused).`,
    fixes: [{ description: "Start the kubelet and check why it stopped", command: "systemctl restart kubelet && journalctl -u kubelet --since -10min | tail -50" }],
  };
}

// The kubelet's bind address is `address` in its config file (the file its --config names;
// /var/lib/kubelet/config.yaml on kubeadm and AKS nodes) or its --address flag, which wins over the
// file; 0.0.0.0 (the default) listens on every address. Which one this node sets is shown first,
// read-only, since a flag in a drop-in or /etc/default/kubelet overrides the file.
function bindAddressFixes(port: number, nodeIp: string): Fix[] {
  const config = "/var/lib/kubelet/config.yaml";
  return [
    {
      description: `Find where the kubelet's bind address is set (read-only): its --address flag, or \`address:\` in the config file its --config names (${config} on kubeadm and AKS nodes); the flag wins over the file`,
      command: `ps -o args= -C kubelet | tr ' ' '\\n' | grep -E -- '^--(address|config)'; grep -n '^address:' ${config}`,
    },
    {
      description: `Set it to 0.0.0.0 (every address, the default) or to ${nodeIp}: \`address: 0.0.0.0\` in the config file, or --address=0.0.0.0 where a flag sets it (its unit's drop-in or /etc/default/kubelet), then restart the kubelet`,
      command: `sed -i 's/^address: .*/address: 0.0.0.0/' ${config} && systemctl restart kubelet`,
    },
    {
      description: `Check that port ${port} now listens on 0.0.0.0, [::] or ${nodeIp}, not on a local address only (read-only)`,
      command: `ss -ltn 'sport = :${port}'`,
    },
  ];
}

function agentFindings(state: NodeState): CheckResult[] {
  const h = state.agentHealth;
  const base = { check: "node" as const, id: "agent-health", assumptions: [] };
  switch (h.kind) {
    case "skipped":
      return [];
    case "ready":
      return [{ ...base, status: "ok", summary: `The local agent is connected to a server (${h.target}/readyz answered 200).`, fixes: [] }];
    case "not-ready":
      return [{
        ...base, status: "problem",
        summary: `The local agent runs but has no server connection (${h.target}/readyz: ${h.status} ${h.body.trim()}): check egress to the server.`,
        fixes: [{
          // A server dialled directly is gRPC (ALPN h2); through AKS's 443 front end it is --alpn konnectivity.
          description: "Probe the server from this node (the server the agent dials directly negotiates ALPN h2; use --alpn konnectivity for AKS's <cluster>.hcp.<region>.azmk8s.io:443); then read the agent's log for the TLS or authentication error",
          command: "nodetunnel doctor egress --server <server>:<agent-port> --alpn h2",
        }],
      }];
    case "timeout":
      return [{
        ...base, status: "problem",
        summary: `The local agent's health endpoint ${h.target}/readyz gave no complete answer within ${h.timeoutMs} ms: whatever holds that port is stuck (or is not the agent), so whether this node's agent has a server connection is unknown.`,
        fixes: [{
          description: `Ask it again with a deadline, then read the agent's log (kubectl -n kube-system logs on the agent pod of this node) or restart the agent`,
          command: `curl -sS -m 5 -o /dev/null -w '%{http_code}\\n' ${h.target}/readyz`,
        }],
      }];
    case "absent":
      return [{
        ...base, status: "warning",
        summary: `No agent health endpoint at ${h.target} (${h.reason}): no agent runs on this node. Fine when agents run on other nodes (default strategy); with destHost this node's pods get "No agent available".`,
        fixes: [],
      }];
  }
}

function churnFindings(state: NodeState, opts: NodeOptions): CheckResult[] {
  if (!state.ssTan.ok) return [];
  const parsed = parseConnections(state.ssTan.text);
  // Connections to this node itself or to loopback never pass the NAT: they take no SNAT port.
  const local = (destination: string) => {
    const host = destination.replace(/:\d+$/, "").replace(/^\[|\]$/g, "").replace(/^::ffff:/, "");
    return host === opts.nodeIp || host.startsWith("127.") || host === "::1";
  };
  const churn = summarizeChurn(parsed.connections.filter((c) => c.state !== "LISTEN" && !local(c.destination)));
  const threshold = churnThreshold(opts.snatPortsPerNode ?? null);
  const busy = churn.filter((c) => c.timeWait >= threshold || (opts.snatPortsPerNode !== undefined && c.connections >= opts.snatPortsPerNode));
  const base = { check: "snat" as const, id: "churn", assumptions: [], churn: churn.slice(0, 10) };
  if (busy.length === 0) {
    return [{ ...base, status: "ok", summary: `No connection churn: at most ${churn[0]?.connections ?? 0} connections to one destination.`, fixes: [] }];
  }
  const top = busy[0]!;
  const ip = top.destination.replace(/:\d+$/, "");
  return [{
    ...base,
    status: "warning",
    summary: `Connection churn to ${top.destination}: ${top.connections} connections (${top.timeWait} in TIME_WAIT); each new connection takes a SNAT port, which starves new connections once the node's ports run out.`,
    fixes: [{
      description: `Pool and reuse connections to ${top.destination} in the client instead of one per request; watch the count`,
      command: `ss -tan state time-wait dst ${ip} | wc -l`,
    }],
  }];
}
