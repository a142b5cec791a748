// Whether a rule that blocks the flow may be fixed by deleting it (troubleshooting.md §1.3 cause 3,
// §4.2), or only by inserting an ACCEPT for the flow ahead of it.
//
// The rule: a blocker may be deleted only when its own destination-port matches, taken together,
// match exactly one port, the flow's (`-p tcp --dport 10250`, `-m multiport --dports 10250`,
// with or without a source, interface or conntrack match). Deleting such a rule removes a block of
// the port the doctor was asked about and nothing else; that is what §1.3's fix does.
//
// Anything else stands for more than this flow, and deleting it opens more than was asked:
// - no destination-port match at all: a catch-all (`-A INPUT -j DROP`, RHEL's final
//   `-j REJECT --reject-with icmp-host-prohibited`, `-s 10.0.0.0/8 -j DROP`, an ipset block, the
//   DROP ending a user chain). Deleting it opens every port it guards, to every source it names;
// - a port range or list, or a negated port (`--dport 10000:11000`, `--dports 10250,10255`,
//   `! --dports 22`): deleting it opens the other ports too;
// - `multiport --ports`, which matches a source port as well as a destination port.
// Only the rule's own matches count, never those of a jump that leads to its chain: a user chain
// may be reached from several places, and whoever reads `iptables --delete CHAIN n` reads that
// rule alone. The fix for these is an ACCEPT for the flow alone (its protocol, port and source),
// inserted just before the blocker in the blocker's chain, which opens exactly the flow.
import { ALL_PORTS, complement, intersect, normalise } from "../port-ranges.js";
import type { PortRange, Rule } from "./model.js";

/** The destination ports the rule's own matches allow; null where it has no destination-port match. */
export function destinationPortsOf(rule: Rule): readonly PortRange[] | null {
  let ports: readonly PortRange[] | null = null;
  for (const c of rule.conditions) {
    if (c.kind !== "port" || c.field !== "dport") continue;
    ports = intersect(ports ?? ALL_PORTS, c.negate ? complement(c.ranges) : normalise(c.ranges));
  }
  return ports;
}

export function isDeletableBlocker(rule: Rule, port: number): boolean {
  const ports = destinationPortsOf(rule);
  return ports !== null && ports.length === 1 && ports[0]![0] === port && ports[0]![1] === port;
}
