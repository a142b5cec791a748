// --allowed-destinations: which addresses an agent may dial on behalf of the server, so the tunnel
// is not an open proxy into the node network. Entries are `CIDR`, `CIDR:PORT`, `CIDR:LOW-HIGH` or
// `CIDR:P1,P2` (IPv6 CIDRs in brackets: `[fd00::/8]:10250`); no entries means everything is
// allowed, as upstream (kube-apiserver also reaches webhooks and aggregated APIs on pod and
// service addresses). Host names are resolved by the dialer, then checked by address.
import { BlockList, isIP } from "node:net";
import { TunnelError } from "../protocol/index.js";

interface PolicyEntry {
  readonly text: string;
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

  /** Whether an IP address and port may be dialled. */
  allows(ip: string, port: number): boolean {
    if (this.entries.length === 0) return true;
    const family = isIP(ip) === 6 ? "ipv6" : "ipv4";
    return this.entries.some((e) => e.addresses.check(ip, family) && (e.ports.length === 0 || e.ports.some(([lo, hi]) => port >= lo && port <= hi)));
  }
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
  const [address, bitsText] = cidr.split("/");
  const family = isIP(address ?? "");
  if (family === 0) bad(`"${address}" is not an IP address`);
  const maxBits = family === 6 ? 128 : 32;
  const bits = bitsText === undefined ? maxBits : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > maxBits) bad(`prefix length "${bitsText}" is out of range`);
  const addresses = new BlockList();
  addresses.addSubnet(address!, bits, family === 6 ? "ipv6" : "ipv4");
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
  return { text: spec, addresses, ports };
}
