// Which destinations take a SNAT port. Only outbound flows that the load balancer (or NAT gateway)
// translates to its public frontend use SNAT ports (troubleshooting.md §5.4). Azure never sends
// private space there: an address inside the VNet, a peering or a gateway route is delivered
// directly, and Azure's default system routes send the rest of 10/8, 172.16/12, 192.168/16 and
// 100.64/10 to next hop None (Azure docs, virtual-networks-udr-overview). Loopback and link-local
// (IMDS 169.254.169.254) never leave the host, and 168.63.129.16, the host's virtual IP behind
// Azure DNS and the health probes, belongs to the VirtualNetwork tag (§2, service tags).
import ipaddr from "ipaddr.js";
import { hostVirtualIp, rfc1918Ranges } from "../private-ranges.js";
import { parseUnmapped } from "../flow-family.js";

/** Destinations that never take a SNAT port, as CIDRs (listed in the report's assumptions). */
export const noSnatRanges: readonly string[] = [
  ...rfc1918Ranges,
  "100.64.0.0/10", // RFC 6598 shared address space
  "127.0.0.0/8", "169.254.0.0/16", `${hostVirtualIp}/32`,
  "::1/128", "fc00::/7", "fe80::/10", // IPv6 loopback, unique local (ULA), link-local
];

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** The host of `ip:port` or `[ip6]:port`, IPv4-mapped IPv6 as IPv4; null when it is no address. */
function hostOf(destination: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const host = destination.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return ipaddr.isValid(host) ? parseUnmapped(host) : null;
}

/**
 * A predicate: does a flow to `destination` (`ip:port`) take a SNAT port? `extraRanges` are more
 * ranges reached without SNAT (`--vnet`: a VNet or peering with public address space). What is
 * not an address is counted: better a false warning than a hidden exhaustion.
 */
export function takesSnatPort(extraRanges: readonly string[] = []): (destination: string) => boolean {
  const ranges: Range[] = [...noSnatRanges, ...extraRanges].map((c) => ipaddr.parseCIDR(c));
  return (destination) => {
    const host = hostOf(destination);
    if (host === null) return true;
    return !ranges.some(([net, bits]) => net.kind() === host.kind() && host.match(net as never, bits));
  };
}
