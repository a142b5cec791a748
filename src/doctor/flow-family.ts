// Addresses as the checks compare them. An IPv4-mapped IPv6 address (::ffff:10.224.0.7) is the
// IPv4 address it carries, as the kernel and Azure treat it. A flow's two addresses are of one
// family: a connection from an IPv6 address to an IPv4 one does not exist, so a check given both
// is bad usage (exit 2), not a verdict.
import ipaddr from "ipaddr.js";
import { DoctorInputError } from "./input-error.js";

/** The address, an IPv4-mapped IPv6 one as its IPv4 address; throws (ipaddr.js) where `text` is none. */
export function parseUnmapped(text: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const addr = ipaddr.parse(text);
  return addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress() ? (addr as ipaddr.IPv6).toIPv4Address() : addr;
}

/** The family of a valid address, mapped IPv6 counted as IPv4. */
export function familyOf(ip: string): "ipv4" | "ipv6" {
  return parseUnmapped(ip).kind();
}

/** `ip` itself, or the IPv4 address an IPv4-mapped IPv6 address carries. */
export function unmapped(ip: string): string {
  const addr = parseUnmapped(ip);
  return addr.kind() === "ipv4" && ip.includes(":") ? addr.toString() : ip;
}

/** Throws where `--source` and `--destination` (both valid addresses; the second optional) differ in family. */
export function checkFlowFamilies(source: string, destination: string | undefined | null): void {
  if (destination === undefined || destination === null) return;
  const [a, b] = [familyOf(source), familyOf(destination)];
  if (a === b) return;
  const name = (f: string) => (f === "ipv4" ? "IPv4" : "IPv6");
  throw new DoctorInputError(`--source ${source} is ${name(a)} and --destination ${destination} is ${name(b)}: a connection's two addresses are of one family`, {
    expected: "two IPv4 or two IPv6 addresses",
  });
}
