// Whether two rules of one direction may match some flow in common (troubleshooting.md §2.1
// fields). Used before moving a deny to a higher priority number (fix-nsg.ts): past an allow that
// overlaps it, the deny no longer decides the flows they share, which the allow then lets in.
// "May": an overlap that cannot be ruled out from the rules alone (a service tag, an ASG) counts.
import ipaddr from "ipaddr.js";
import type { NsgRule } from "./nsg-model.js";

const anyAddress = new Set(["*", "any", "0.0.0.0/0", "::/0"]);

function range(text: string): [number, number] {
  if (text === "*" || /^any$/i.test(text)) return [0, 65535];
  const [lo, hi] = text.split("-").map(Number) as [number, number?];
  return [lo, hi ?? lo];
}

function portsOverlap(a: readonly string[], b: readonly string[]): boolean {
  return a.some((x) => b.some((y) => {
    const [alo, ahi] = range(x);
    const [blo, bhi] = range(y);
    return alo <= bhi && blo <= ahi;
  }));
}

/** An IP or CIDR as a network; null for a service tag. */
function network(prefix: string): [ipaddr.IPv4 | ipaddr.IPv6, number] | null {
  try {
    if (prefix.includes("/")) return ipaddr.parseCIDR(prefix);
    const addr = ipaddr.parse(prefix);
    return [addr, addr.kind() === "ipv4" ? 32 : 128];
  } catch {
    return null;
  }
}

function prefixesOverlap(a: string, b: string): boolean {
  if (anyAddress.has(a.toLowerCase()) || anyAddress.has(b.toLowerCase())) return true;
  const na = network(a);
  const nb = network(b);
  // A service tag's ranges are not in the input: it may hold any address.
  if (na === null || nb === null) return true;
  if (na[0].kind() !== nb[0].kind()) return false;
  // Two CIDRs overlap where the shorter one holds the other's network address.
  const [wide, narrow] = na[1] <= nb[1] ? [na, nb] : [nb, na];
  return narrow[0].match(wide as never);
}

function sidesOverlap(aPrefixes: readonly string[], aAsgs: readonly string[], bPrefixes: readonly string[], bAsgs: readonly string[]): boolean {
  // An ASG's members are whatever NICs join it: it may hold any address.
  if (aAsgs.length > 0 || bAsgs.length > 0) return true;
  return aPrefixes.some((x) => bPrefixes.some((y) => prefixesOverlap(x, y)));
}

export function mayOverlap(a: NsgRule, b: NsgRule): boolean {
  return a.direction === b.direction
    && (a.protocol === "*" || b.protocol === "*" || a.protocol === b.protocol)
    && portsOverlap(a.destinationPorts, b.destinationPorts)
    && portsOverlap(a.sourcePorts, b.sourcePorts)
    && sidesOverlap(a.sourcePrefixes, a.sourceAsgs, b.sourcePrefixes, b.sourceAsgs)
    && sidesOverlap(a.destinationPrefixes, a.destinationAsgs, b.destinationPrefixes, b.destinationAsgs);
}
