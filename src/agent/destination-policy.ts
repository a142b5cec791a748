// --allowed-destinations: which addresses an agent may dial on behalf of the server, so the tunnel
// is not an open proxy into the node network. Entries are `CIDR`, `CIDR:PORT`, `CIDR:LOW-HIGH` or
// `CIDR:P1,P2` (IPv6 CIDRs in brackets: `[fd00::/8]:10250`); no entries means everything is
// allowed, as upstream (kube-apiserver also reaches webhooks and aggregated APIs on pod and
// service addresses). Host names are resolved by the dialer, then checked by address.
//
// Each entry matches addresses of its own family only. Node's BlockList matches an IPv4 address
// against an IPv6 subnet through the address's IPv4-mapped form (::ffff:a.b.c.d), so on its own an
// entry like [::/0] (meant: any IPv6 node) would allow every IPv4 address too, loopback and
// link-local included. An IPv4-mapped address is an IPv4 destination (the connect goes out over IPv4), so it
// is checked as that IPv4 address, and an IPv4-mapped CIDR entry is an IPv4 entry.
import { BlockList } from "node:net";
import ipaddr from "ipaddr.js";
import { TunnelError } from "../protocol/index.js";

type Family = "ipv4" | "ipv6";

interface PolicyEntry {
  readonly text: string;
  readonly family: Family;
  readonly addresses: BlockList;
  /** Inclusive port ranges; empty means every port. */
  readonly ports: ReadonlyArray<readonly [number, number]>;
}

export class DestinationPolicy {
  private constructor(private readonly entries: readonly PolicyEntry[]) {}

  static allowAll(): DestinationPolicy {
    return new DestinationPolicy([]);
  }

  static parse(specs: readonly string[]): DestinationPolicy {
    return new DestinationPolicy(specs.map(parseEntry));
  }

  get isRestricted(): boolean {
    return this.entries.length > 0;
  }

  describe(): string {
    return this.entries.length === 0 ? "any destination" : this.entries.map((e) => e.text).join(", ");
  }

  /** Whether an IP address and port may be dialled; anything that is not an IP address is refused. */
  allows(ip: string, port: number): boolean {
    if (this.entries.length === 0) return true;
    const address = destinationAddress(ip);
    if (address === undefined) return false;
    return this.entries.some((e) => e.family === address.family && e.addresses.check(address.text, address.family) &&
      (e.ports.length === 0 || e.ports.some(([lo, hi]) => port >= lo && port <= hi)));
  }
}

/** The address as the connect will use it: IPv4-mapped IPv6 as IPv4. */
function destinationAddress(ip: string): { text: string; family: Family } | undefined {
  if (typeof ip !== "string" || !ipaddr.isValid(ip)) return undefined;
  // ipaddr.js also reads "127.1" or "0x7f.0.0.1" as IPv4; the dialer hands over what net.isIP accepts.
  if (ipaddr.IPv4.isValid(ip)) return ipaddr.IPv4.isValidFourPartDecimal(ip) ? { text: ip, family: "ipv4" } : undefined;
  const v6 = ipaddr.IPv6.parse(ip);
  if (v6.isIPv4MappedAddress()) return { text: v6.toIPv4Address().toString(), family: "ipv4" };
  return { text: ip, family: "ipv6" };
}

function parseEntry(spec: string): PolicyEntry {
  const bad = (why: string): never => {
    throw new TunnelError("INVALID_OPTION", `--allowed-destinations "${spec}": ${why} (expected CIDR, CIDR:PORT, CIDR:LOW-HIGH or CIDR:P1,P2; IPv6 as [CIDR]:PORT)`);
  };
  let cidr = spec.trim();
  let portText = "";
  const v6 = /^\[([^\]]+)\](?::(.+))?$/.exec(cidr);
  if (v6) {
    cidr = v6[1]!;
    portText = v6[2] ?? "";
  } else if (cidr.includes(":") && cidr.split(":").length === 2) {
    [cidr, portText] = cidr.split(":") as [string, string];
  }
  const [addressText, bitsText] = cidr.split("/");
  const parsed = destinationAddress(addressText ?? "");
  if (parsed === undefined) return bad(`"${addressText}" is not an IP address`);
  const mapped = parsed.family === "ipv4" && addressText!.includes(":");
  const maxBits = parsed.family === "ipv6" || mapped ? 128 : 32;
  let bits = bitsText === undefined ? maxBits : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > maxBits) bad(`prefix length "${bitsText}" is out of range`);
  // [::ffff:10.0.0.0/104] is 10.0.0.0/8; a shorter prefix would cover IPv6 and IPv4 at once.
  if (mapped) {
    if (bits < 96) bad(`an IPv4-mapped CIDR needs a prefix length of at least 96, not ${bits}`);
    bits -= 96;
  }
  const addresses = new BlockList();
  addresses.addSubnet(parsed.text, bits, parsed.family);
  const ports: Array<[number, number]> = [];
  if (portText !== "") {
    for (const part of portText.split(",")) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (!m) bad(`"${part}" is not a port or range`);
      const lo = Number(m![1]);
      const hi = m![2] === undefined ? lo : Number(m![2]);
      if (lo < 1 || hi > 65535 || lo > hi) bad(`port range "${part}" is out of 1-65535`);
      ports.push([lo, hi]);
    }
  }
  return { text: spec, family: parsed.family, addresses, ports };
}
