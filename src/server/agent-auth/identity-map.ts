// `--agent-identity-map <file>`: which identifiers each agent credential may claim, for
// credentials that do not carry them (service-account tokens; certificates without SANs).
// JSON or YAML, a mapping from a key to an entry:
//
//   node/<node name>:                           a token bound to a pod on that node
//   pod/<pod name>:                             a token bound to that pod (in --agent-namespace)
//   system:serviceaccount:<namespace>:<name>:   any token of that service account
//   cn/<common name>:                           a client certificate with that subject CN
//
//   entry: { host: [...], ipv4: [...], ipv6: [...], cidr: [...], defaultRoute: bool, agentIds: [...] }
//
// Every list may also be a single string. Host names and agent ids are also accepted as agent ids.
import ipaddr from "ipaddr.js";
import { TunnelError } from "../../protocol/index.js";
import { parseSimpleYaml, type YamlValue } from "./parse-simple-yaml.js";

export interface IdentityGrant {
  readonly host: readonly string[];
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
  readonly cidr: readonly string[];
  readonly defaultRoute: boolean;
  readonly agentIds: readonly string[];
}

export type IdentityMap = ReadonlyMap<string, IdentityGrant>;

const keyKinds = /^(node\/.+|pod\/.+|cn\/.+|system:serviceaccount:[^:]+:[^:]+)$/;
const fields = new Set(["host", "ipv4", "ipv6", "cidr", "defaultRoute", "agentIds"]);

export function parseIdentityMap(text: string, source = "--agent-identity-map"): IdentityMap {
  const bad = (why: string): never => {
    throw new TunnelError("INVALID_OPTION", `${source}: ${why}`);
  };
  let doc: YamlValue;
  try {
    doc = parseSimpleYaml(text);
  } catch (err) {
    return bad(err instanceof Error ? err.message : String(err));
  }
  if (doc === null) return new Map();
  if (typeof doc !== "object" || Array.isArray(doc)) return bad("expected a mapping from node/<name>, pod/<name>, cn/<name> or system:serviceaccount:<ns>:<sa> to identities");
  const out = new Map<string, IdentityGrant>();
  for (const [key, value] of Object.entries(doc)) {
    if (!keyKinds.test(key)) bad(`"${key}" is not node/<name>, pod/<name>, cn/<name> or system:serviceaccount:<namespace>:<name>`);
    if (typeof value !== "object" || value === null || Array.isArray(value)) return bad(`"${key}": expected a mapping with host, ipv4, ipv6, cidr, defaultRoute, agentIds`);
    for (const f of Object.keys(value)) if (!fields.has(f)) bad(`"${key}": unknown field "${f}" (known: ${[...fields].join(", ")})`);
    const list = (f: string): string[] => {
      const v = value[f];
      if (v === undefined || v === null) return [];
      const items = Array.isArray(v) ? v : [v];
      return items.map((x) => (typeof x === "string" && x !== "" ? x : bad(`"${key}".${f}: expected strings, got ${JSON.stringify(x)}`)));
    };
    const ipv4 = list("ipv4").map((a) => (ipaddr.IPv4.isValidFourPartDecimal(a) ? a : bad(`"${key}".ipv4: "${a}" is not an IPv4 address`)));
    const ipv6 = list("ipv6").map((a) => (ipaddr.IPv6.isValid(a) ? a : bad(`"${key}".ipv6: "${a}" is not an IPv6 address`)));
    const cidr = list("cidr").map((c) => {
      try {
        ipaddr.parseCIDR(c);
      } catch {
        bad(`"${key}".cidr: "${c}" is not a CIDR`);
      }
      return c;
    });
    const dr = value.defaultRoute;
    if (dr !== undefined && dr !== null && typeof dr !== "boolean") bad(`"${key}".defaultRoute: expected true or false`);
    out.set(key, { host: list("host").map((h) => h.toLowerCase()), ipv4, ipv6, cidr, defaultRoute: dr === true, agentIds: list("agentIds") });
  }
  return out;
}
