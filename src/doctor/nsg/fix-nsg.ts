// The fix for a deny: an allow rule for exactly this flow, at a free priority with a lower number
// than the deny (troubleshooting.md §1.3 cause 1: "Priority must be lower than any deny rule that
// covers 10250"; §2.1: custom priorities 100-4096, unique per direction).
import type { Fix } from "../report/check-result.js";
import { maxCustomPriority, minCustomPriority } from "./nsg-model.js";
import type { Nsg, NsgFlow, NsgRule } from "./nsg-model.js";

const isCustomPriority = (p: number) => Number.isInteger(p) && p >= minCustomPriority && p <= maxCustomPriority;

function isFree(nsg: Nsg, direction: NsgRule["direction"], priority: number): boolean {
  return !nsg.rules.some((r) => r.direction === direction && r.priority === priority);
}

/** The highest free priority below `below` (closest to the deny), preferring a multiple of 10. */
export function freePriorityBelow(nsg: Nsg, direction: NsgRule["direction"], below: number): number | null {
  const top = Math.min(below - 1, maxCustomPriority);
  for (let p = top - (top % 10); p >= minCustomPriority; p -= 10) if (isFree(nsg, direction, p)) return p;
  for (let p = top; p >= minCustomPriority; p--) if (isFree(nsg, direction, p)) return p;
  return null;
}

function freePriorityAbove(nsg: Nsg, direction: NsgRule["direction"], above: number): number | null {
  for (let p = above + 1; p <= maxCustomPriority; p++) if (isFree(nsg, direction, p)) return p;
  return null;
}

export function allowRuleName(flow: NsgFlow): string {
  return flow.port === 10250 && flow.protocol === "tcp" ? "Allow-Kubelet-10250" : `Allow-${flow.protocol === "tcp" ? "Tcp" : "Udp"}-${flow.port}`;
}

export function fixNsg(nsg: Nsg, deny: NsgRule, flow: NsgFlow): Fix[] {
  const rg = nsg.resourceGroup ?? "<resource-group>";
  const create = (priority: number | string) =>
    `az network nsg rule create --resource-group ${rg} --nsg-name ${nsg.name} --name ${allowRuleName(flow)}` +
    ` --priority ${priority} --direction ${deny.direction} --access Allow --protocol ${flow.protocol === "tcp" ? "Tcp" : "Udp"}` +
    ` --source-address-prefixes ${flow.source} --destination-address-prefixes ${flow.destination} --destination-port-ranges ${flow.port}`;
  const widen = "; widen the prefixes to the node subnet CIDRs to cover every node";
  const free = freePriorityBelow(nsg, deny.direction, deny.priority);
  if (free !== null) {
    return [{
      description: `Allow ${flow.protocol} ${flow.source} → ${flow.destination}:${flow.port} in NSG "${nsg.name}" before "${deny.name}" (priority ${deny.priority})${widen}`,
      command: create(free),
    }];
  }
  // No free number below the deny: move the deny to a higher number first (a default rule cannot move,
  // but there is always room below 65500). Every priority proposed stays within 100-4096 (§2.1):
  // where none is, the command carries a placeholder rather than a number Azure rejects.
  const moved = freePriorityAbove(nsg, deny.direction, deny.priority);
  const old = isCustomPriority(deny.priority) ? deny.priority : "<free priority>";
  return [
    {
      description: `No priority below ${deny.priority} is free in NSG "${nsg.name}" (${deny.direction}): renumber "${deny.name}" to a higher number first (check it still comes before the rules it must precede)`,
      command: `az network nsg rule update --resource-group ${rg} --nsg-name ${nsg.name} --name ${deny.name} --priority ${moved ?? "<free priority>"}`,
    },
    {
      description: `Then allow ${flow.protocol} ${flow.source} → ${flow.destination}:${flow.port} at the deny's old priority${widen}`,
      command: create(old),
    },
  ];
}
