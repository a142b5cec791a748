// Identity binding (upstream has none; issue 6 item 2): an agent may only claim the agent id and
// the identifiers (`host`, `ipv4`, `ipv6`, `cidr`, `default-route`, shared/spec/konnectivity.md
// §1.3) that its credential allows. Without it, any agent holding the shared credential can
// announce another node's IP and receive that node's kubelet traffic through destHost routing.
//
// What a credential allows (docs/security.md "Identity binding"):
//   client certificate: its subject CN and SAN DNS names (agent id, host), SAN IPs (agent id,
//                       ipv4/ipv6), plus the identity map's `cn/<CN>` entry;
//   token:              the bound node (agent id, host) and pod (agent id) of a projected token,
//                       plus the identity map's `node/`, `pod/` and service-account entries.
// When it is enforced (`--identity-binding`):
//   strict: always, for the agent id and the identifiers; a credential that allows nothing can
//           claim nothing;
//   off:    never (upstream's behaviour);
//   unset:  only for credentials that name a node's addresses: a certificate with SAN IP
//           addresses (a per-node certificate), or any credential with an identity-map entry; and
//           then for the identifiers (what destHost routes by), and for the agent id only where
//           there is a map entry (the operator asked for binding). Upstream agents must work unchanged (DESIGN.md): a
//           shared certificate often carries a DNS name of the service (`DNS:konnectivity-agent`),
//           and upstream's agent id defaults to a random UUID, so neither switches binding on.
//           (Nor does a token's bound node alone: the token names the node, not its addresses.)
import ipaddr from "ipaddr.js";
import type { AgentIdentifiers } from "../../protocol/index.js";
import type { IdentityGrant, IdentityMap } from "./identity-map.js";
import type { TokenReviewUser } from "./token-review-client.js";

export type IdentityBindingMode = "strict" | "off";

export interface AgentCredential {
  /** For logs and the registry: `mtls:<CN>`, `token:<user>`, `none`. */
  readonly principal: string;
  readonly allowed: AllowedIdentities;
  /**
   * Why binding is enforced for it when the mode is unset ("its certificate names addresses", "its
   * --agent-identity-map entry"); null: it is not.
   */
  readonly bindsBy: string | null;
  /** With the mode unset, whether the agent id is bound too (it has a map entry). */
  readonly bindsAgentId: boolean;
}

export interface AllowedIdentities {
  readonly agentIds: ReadonlySet<string>;
  readonly hosts: ReadonlySet<string>;
  /** Normalized (ipaddr.js) addresses. */
  readonly ips: ReadonlySet<string>;
  readonly cidrs: ReadonlySet<string>;
  readonly defaultRoute: boolean;
}

export interface IdentityRefusal {
  /** The offending claim, e.g. `ipv4=10.224.0.6` or `agentID=node-2`. */
  readonly claim: string;
  readonly message: string;
}

export const nodeNameExtra = "authentication.kubernetes.io/node-name";
export const podNameExtra = "authentication.kubernetes.io/pod-name";

class Allowed {
  readonly agentIds = new Set<string>();
  readonly hosts = new Set<string>();
  readonly ips = new Set<string>();
  readonly cidrs = new Set<string>();
  defaultRoute = false;

  name(n: string): void {
    this.agentIds.add(n);
    this.hosts.add(n.toLowerCase());
  }

  ip(a: string): void {
    const n = normalizeIp(a);
    if (n === undefined) return;
    this.ips.add(n);
    this.agentIds.add(a);
  }

  grant(g: IdentityGrant): void {
    for (const h of g.host) this.name(h);
    for (const a of [...g.ipv4, ...g.ipv6]) this.ip(a);
    for (const c of g.cidr) this.cidrs.add(normalizeCidr(c) ?? c);
    for (const id of g.agentIds) this.agentIds.add(id);
    this.defaultRoute ||= g.defaultRoute;
  }
}

export const anonymousCredential: AgentCredential = { principal: "none", allowed: new Allowed(), bindsBy: null, bindsAgentId: false };

/** The names in a verified client certificate, as node:tls reports them. */
export function certificateCredential(
  cert: { subject?: { CN?: string | string[] }; subjectaltname?: string } | undefined,
  map: IdentityMap | undefined,
): AgentCredential {
  const cnValue = cert?.subject?.CN;
  const cn = Array.isArray(cnValue) ? cnValue[0] ?? "" : cnValue ?? "";
  const allowed = new Allowed();
  if (cn !== "") allowed.name(cn);
  const san = parseSubjectAltName(cert?.subjectaltname ?? "");
  for (const d of san.dns) allowed.name(d);
  for (const ip of san.ips) allowed.ip(ip);
  const entry = cn === "" ? undefined : map?.get(`cn/${cn}`);
  if (entry) allowed.grant(entry);
  // A per-node certificate names the node's addresses. 127.0.0.1, ::1 or 0.0.0.0 name no node: a
  // certificate made for loopback (a test bed's, or one cut like a server's) is a shared one.
  const namesNode = san.ips.some((ip) => !isLoopbackOrUnspecified(ip));
  return {
    principal: `mtls:${cn}`,
    allowed,
    bindsBy: entry ? `the --agent-identity-map entry cn/${cn}` : namesNode ? "the certificate names addresses (SAN IPs)" : null,
    bindsAgentId: entry !== undefined,
  };
}

export function tokenCredential(user: TokenReviewUser | string, map: IdentityMap | undefined): AgentCredential {
  const u: TokenReviewUser = typeof user === "string" ? { username: user, groups: [], extra: {} } : user;
  const allowed = new Allowed();
  const node = u.extra[nodeNameExtra]?.[0];
  const pod = u.extra[podNameExtra]?.[0];
  if (node) allowed.name(node);
  if (pod) allowed.agentIds.add(pod);
  const matched: string[] = [];
  for (const key of [u.username, node && `node/${node}`, pod && `pod/${pod}`]) {
    const entry = key ? map?.get(key) : undefined;
    if (entry) {
      allowed.grant(entry);
      matched.push(key!);
    }
  }
  const bound = [node && `node ${node}`, pod && `pod ${pod}`].filter(Boolean).join(", ");
  return {
    principal: `token:${u.username}${bound ? ` (${bound})` : ""}`,
    allowed,
    bindsBy: matched.length > 0 ? `the --agent-identity-map ${matched.length === 1 ? "entry" : "entries"} ${matched.join(", ")}` : null,
    bindsAgentId: matched.length > 0,
  };
}

export function isBindingEnforced(mode: IdentityBindingMode | undefined, credential: AgentCredential): boolean {
  return mode === "strict" || (mode === undefined && credential.bindsBy !== null);
}

/** null when every claim is allowed (or binding is not enforced for this credential). */
export function checkIdentityClaims(
  mode: IdentityBindingMode | undefined,
  credential: AgentCredential,
  agentId: string,
  ids: AgentIdentifiers,
): IdentityRefusal | null {
  if (!isBindingEnforced(mode, credential)) return null;
  const a = credential.allowed;
  const bindsAgentId = mode === "strict" || credential.bindsAgentId;
  const refuse = (claim: string): IdentityRefusal => ({
    claim,
    message: `the credential ${credential.principal} does not allow the claim ${claim} (allowed: ${describeAllowed(a, bindsAgentId)}); identity binding is ${mode ?? `on because ${credential.bindsBy} (--identity-binding=off turns it off)`}`,
  });
  if (bindsAgentId && !a.agentIds.has(agentId) && !a.hosts.has(agentId.toLowerCase())) return refuse(`agentID=${agentId}`);
  for (const h of ids.host) if (!a.hosts.has(h.toLowerCase())) return refuse(`host=${h}`);
  for (const [key, list] of [["ipv4", ids.ipv4], ["ipv6", ids.ipv6]] as const) {
    for (const ip of list) {
      const n = normalizeIp(ip);
      if (n === undefined || !a.ips.has(n)) return refuse(`${key}=${ip}`);
    }
  }
  for (const c of ids.cidr) if (!a.cidrs.has(normalizeCidr(c) ?? c)) return refuse(`cidr=${c}`);
  if (ids.defaultRoute && !a.defaultRoute) return refuse("default-route=true");
  return null;
}

/** What the credential allows, in claims; the agent ids only where they are bound. */
export function describeAllowed(a: AllowedIdentities, withAgentIds = true): string {
  const parts = [
    ...(withAgentIds ? [...a.agentIds].map((v) => `agentID=${v}`) : []),
    ...[...a.hosts].map((v) => `host=${v}`),
    ...[...a.ips].map((v) => `ip=${v}`),
    ...[...a.cidrs].map((v) => `cidr=${v}`),
    ...(a.defaultRoute ? ["default-route=true"] : []),
  ];
  return parts.length === 0 ? "nothing" : parts.join(", ");
}

/**
 * node:tls's `subjectaltname`: `DNS:a, IP Address:10.0.0.5, URI:...`; values with special
 * characters are JSON-quoted (Node ≥ 17, CVE-2021-44532), e.g. `DNS:"a, b"`.
 */
export function parseSubjectAltName(text: string): { dns: string[]; ips: string[] } {
  const out = { dns: [] as string[], ips: [] as string[] };
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:,\s*|$)/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
    let value = m[2]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    const kind = m[1]!.trim();
    if (kind === "DNS") out.dns.push(value.toLowerCase());
    else if (kind === "IP Address" && normalizeIp(value) !== undefined) out.ips.push(value);
  }
  return out;
}

function isLoopbackOrUnspecified(a: string): boolean {
  const n = normalizeIp(a);
  if (n === undefined) return false;
  const range = ipaddr.parse(n).range();
  return range === "loopback" || range === "unspecified";
}

function normalizeIp(a: string): string | undefined {
  // Only the canonical dotted quad: ipaddr.js would also read "10.1" or octal "010.0.0.1", which
  // destHost (an exact string match) would never route, but which must not pass for another address.
  if (!ipaddr.IPv4.isValidFourPartDecimal(a) && !ipaddr.IPv6.isValid(a)) return undefined;
  if (/(^|\.)0\d/.test(a) && !a.includes(":")) return undefined;
  const parsed = ipaddr.parse(a);
  const addr = parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress() ? (parsed as ipaddr.IPv6).toIPv4Address() : parsed;
  return addr.toNormalizedString();
}

function normalizeCidr(c: string): string | undefined {
  try {
    const [addr, bits] = ipaddr.parseCIDR(c);
    return `${addr.toNormalizedString()}/${bits}`;
  } catch {
    return undefined;
  }
}
