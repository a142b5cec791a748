// `doctor egress`: live probes from where it runs to the endpoints a tunnel needs
// (doctor-cli.md `doctor egress`; troubleshooting.md §1.3 cause 4 and §5.1). The targets are
// probed together, so the whole check takes at most two deadlines (connect, then TLS).
import { isIP } from "node:net";
import type { CheckResult, Fix } from "../report/check-result.js";
import { DoctorInputError } from "../input-error.js";
import type { EgressTarget } from "./egress-target.js";
import { offeredAlpnFor, probeEndpoint, type ProbeOptions, type ProbeOutcome, type ProbeResult } from "./probe-endpoint.js";

export interface EgressOptions extends ProbeOptions {
  readonly targets: readonly EgressTarget[];
}

export async function checkEgress(options: EgressOptions): Promise<CheckResult> {
  if (options.targets.length === 0) throw new DoctorInputError("no target to probe", { expected: "at least one HOST:PORT" });
  if (!(options.timeoutMs > 0)) throw new DoctorInputError(`timeout must be positive, got ${options.timeoutMs}`, { expected: "a timeout above 0 ms" });
  const probes = await Promise.all(options.targets.map((t) => probeEndpoint(t, options)));
  const failed = probes.filter((p) => p.result !== "connected");
  const assumptions = [
    "Probed from the machine this ran on: run it on a node (for example through az vmss run-command) to test the node's own path.",
  ];
  if (probes.some((p) => p.tls)) {
    assumptions.push("Certificates were not verified (the cluster CA is not known here); the issuer in the JSON shows whether a TLS-inspecting proxy answered.");
  }
  if (probes.some((p) => !p.tls)) {
    assumptions.push(`TCP only for ${probes.filter((p) => !p.tls).map((p) => p.target).join(", ")}: give --alpn to also test a TLS handshake there.`);
  }
  if (probes.some((p) => p.port === 1194)) {
    assumptions.push("aks-link uses UDP 1194; this check probes TCP only, so a TCP result on 1194 says nothing about UDP.");
  }
  return {
    check: "egress",
    status: failed.length > 0 ? "problem" : "ok",
    summary: summaryOf(probes, failed),
    fixes: fixesOf(failed, options.alpn),
    assumptions,
    probes,
  };
}

function summaryOf(probes: readonly ProbeResult[], failed: readonly ProbeResult[]): string {
  if (failed.length === 0) {
    const tls = probes.filter((p) => p.tls);
    const alpn = tls.length > 0 ? `; TLS completed with ALPN ${[...new Set(tls.map((p) => p.alpn))].join(", ")}` : "";
    return `${probes.length === 1 ? probes[0]!.target + " is" : `All ${probes.length} targets are`} reachable from here${alpn}.`;
  }
  const first = failed[0]!;
  const more = failed.length > 1 ? ` (and ${failed.length - 1} more of ${probes.length} targets failed)` : "";
  return `${first.target} ${phrase[first.result](first)}${more}.`;
}

const phrase: Record<ProbeOutcome, (p: ProbeResult) => string> = {
  connected: () => "connected",
  timeout: (p) => `timed out after ${p.elapsedMs} ms: a firewall, NSG or route on the path drops the traffic silently; allow outbound TCP ${p.port} to it`,
  refused: (p) => `refused the connection: nothing listens on port ${p.port} there, or a firewall on the path rejects it`,
  unreachable: (p) => `is unreachable (${p.reason ?? "no route"}): fix the route or the local firewall that rejects it`,
  dns: (p) => `does not resolve (${p.reason ?? "lookup failed"}): check the DNS servers this machine uses`,
  tls: (p) => `accepts TCP but TLS fails: ${p.reason ?? "the handshake failed"}`,
  "alpn-mismatch": (p) => `answers TLS without ALPN ${(p.offeredAlpn ?? []).join("/")} (negotiated ${p.alpn ?? "none"}): exempt it from TLS inspection on the firewall, or probe the port the agents really dial`,
};

// One fix per failed target, in the order the targets were given.
function fixesOf(failed: readonly ProbeResult[], alpn: string | undefined): Fix[] {
  return failed.flatMap((p) => {
    const make = fixFor[p.result];
    return make ? [make(p, alpn)] : [];
  });
}

const nc = (p: ProbeResult) => `nc -v -w 2 ${p.host} ${p.port}`;
const openssl = (p: ProbeResult, alpn: string | undefined) =>
  `openssl s_client -connect ${p.target} ${isIP(p.host) === 0 ? `-servername ${p.host} ` : ""}-alpn ${offeredAlpnFor(alpn).join(",")} </dev/null 2>&1 | grep -E 'ALPN|issuer|subject'`;

const allowEgress = (p: ProbeResult): Fix => ({
  description: `Allow outbound TCP ${p.port} to ${p.host} on every hop (NSG, Azure Firewall or appliance, route table); use a priority number lower than the deny rule`,
  command:
    `az network nsg rule create --resource-group <resource-group> --nsg-name <nsg-name> --name allow-tunnel-egress-${p.port} ` +
    `--priority <free-priority> --direction Outbound --access Allow --protocol Tcp ` +
    `--destination-address-prefixes ${isIP(p.host) !== 0 ? p.host : "AzureCloud"} --destination-port-ranges ${p.port}`,
});

/**
 * A rule on this machine that stops the connection before it leaves (doctor node walks the node's
 * filter OUTPUT chain and nftables' output path, check-output.ts of each): what the probe saw is
 * explained by it, not by the path.
 */
export interface LocalEgressBlock {
  readonly host: string;
  /** The address the block was found for, where the host is a name (each address it resolved to is walked). */
  readonly address?: string;
  readonly port: number;
  /** "iptables OUTPUT rule 1 (-A OUTPUT ...)", or "the iptables OUTPUT policy DROP". */
  readonly where: string;
  /**
   * The deciding rule (rule null: the chain's policy): command iptables/ip6tables with table
   * "filter", or nft with the table as "<family> <name>" and the rule's handle where shown.
   */
  readonly rule: { readonly command: string; readonly table: string; readonly chain: string; readonly rule: number | null; readonly text: string; readonly handle?: number };
  readonly effect: "drop" | "reject";
  readonly fixes: readonly Fix[];
  /** The commands that open it, in order, for the summary. */
  readonly steps: readonly string[];
}

const seen: Record<ProbeOutcome, (p: ProbeResult) => string> = {
  ...phrase,
  timeout: (p) => `timed out after ${p.elapsedMs} ms`,
  refused: () => "refused the connection",
  unreachable: (p) => `is unreachable (${p.reason ?? "no route"})`,
};

const stepsSentence = (steps: readonly string[]) =>
  steps.length === 0 ? "" : steps.length === 1 ? `; fix on this node: ${steps[0]}` : `; fix on this node, in this order: ${steps.join(", then ")}`;

/**
 * The egress result with the failed probes that the node's own OUTPUT rules stop explained by
 * them: the summary names the rule instead of a firewall, NSG or route on the path, and the fixes
 * are the node's (iptables) instead of an NSG rule. Other probes keep their wording and fixes.
 * Each block was planned alone against the rules as read, so only the first one's numbered
 * commands are given: after they run, the next block's rule numbers may have moved, and its fix
 * is to check again (rather than a number that may now name another rule).
 */
export function withLocalBlocks(result: CheckResult, blocks: readonly LocalEgressBlock[]): CheckResult {
  const probes = (result.probes ?? []) as readonly ProbeResult[];
  // A DROP shows as a timeout, a REJECT as refused or unreachable, or as a timeout where the reset
  // or ICMP error it sends the node's own socket is dropped on its way back (it crosses the output
  // path and then input over lo: a catch-all REJECT in OUTPUT meets its own ICMP error, and
  // iptables never answers an ICMP error with another). A probe that saw something else was not
  // stopped by that rule (the walk does not describe what happened), and keeps its own text.
  const fits = (b: LocalEgressBlock, p: ProbeResult) => (b.effect === "drop" ? p.result === "timeout" : p.result === "refused" || p.result === "unreachable" || p.result === "timeout");
  // A name's addresses may each meet a block of their own: all of them stop the probe.
  const blocksOf = (p: ProbeResult) => blocks.filter((b) => p.host === b.host && p.port === b.port && fits(b, p));
  const blockOf = (p: ProbeResult) => blocksOf(p)[0];
  const failed = probes.filter((p) => p.result !== "connected");
  const applied = failed.map(blockOf).find((b) => b !== undefined);
  if (!applied) return result;
  const at = (b: LocalEgressBlock) => (b.address !== undefined && b.address !== b.host ? ` for ${b.address}` : "");
  const first = failed[0]!;
  const more = failed.length > 1 ? ` (and ${failed.length - 1} more of ${probes.length} targets failed)` : "";
  const verb = (b: LocalEgressBlock) => (b.effect === "drop" ? "drops" : "rejects");
  const lostReply = applied.effect === "reject" && first.result === "timeout"
    ? " (the rejection did not reach the connecting socket either: a rule dropped the reset or ICMP error the node sends itself)"
    : "";
  const others = blocksOf(first).slice(1);
  const alsoAt = others.length === 0 ? "" : `; ${others.map((b) => `at ${b.where}${at(b)}`).join(", ")} ${others.length === 1 ? "blocks" : "block"} it too`;
  const summary = blockOf(first) === applied
    ? `${first.target} ${seen[first.result](first)}: this node's own firewall ${verb(applied)} the connection before it leaves the node, at ${applied.where}${at(applied)}${lostReply}${stepsSentence(applied.steps)}${alsoAt}${more}.`
    : result.summary;
  // checkEgress gives one fix per failed probe, in order: the other probes keep theirs.
  const own = result.fixes.length === failed.length ? result.fixes : null;
  const fixes = failed.flatMap((p, i): Fix[] => {
    const bs = blocksOf(p);
    if (bs.length === 0) return own ? [own[i]!] : [];
    return bs.flatMap((b): Fix[] => b === applied ? [...b.fixes] : [{
      description: `${p.target}${at(b)}: this node's own firewall ${verb(b)} it too, at ${b.where} as read; once the commands above have run its number may have changed, so list the chain again and fix that rule the same way (or run doctor node again)`,
      command: b.rule.command === "nft" ? `nft -a list chain ${b.rule.table} ${b.rule.chain}` : `${b.rule.command} -L ${b.rule.chain} -n --line-numbers`,
    }]);
  });
  return {
    ...result,
    summary,
    // The same save command for two blocks: once, after the last change it must save.
    fixes: fixes.filter((f, i) => fixes.findLastIndex((g) => g.command === f.command) === i),
    blockedBy: { ...applied.rule, effect: applied.effect },
  };
}

const fixFor: Partial<Record<ProbeOutcome, (p: ProbeResult, alpn: string | undefined) => Fix>> = {
  timeout: allowEgress,
  unreachable: (p) => ({ description: `Check the route to ${p.host} and any local firewall rule that rejects outbound TCP ${p.port}; then re-test`, command: `ip route get ${isIP(p.host) !== 0 ? p.host : "<address-of-" + p.host + ">"} && ${nc(p)}` }),
  refused: (p) => ({ description: `Check that the server listens on ${p.target}, or remove the REJECT rule on the path; then re-test`, command: nc(p) }),
  dns: (p) => ({ description: `Make the DNS servers this machine uses resolve ${p.host} (custom DNS needs UDP 53 and must forward to Azure DNS)`, command: `getent hosts ${p.host}` }),
  tls: (p, alpn) => ({ description: `See who answers TLS on ${p.target} (a proxy or a non-TLS service holds the port)`, command: openssl(p, alpn) }),
  "alpn-mismatch": (p, alpn) => ({
    description: `Exempt ${p.host} from TLS inspection on the firewall: Konnectivity needs ALPN end to end (docs/troubleshooting.md §2); this shows the negotiated ALPN and the certificate's issuer. ` +
      "(A tunnel server dialled directly rather than through AKS's 443 front end negotiates h2: probe that one with --alpn h2.)",
    command: openssl(p, alpn),
  }),
};
