// The fix for a deny: an allow rule for exactly this flow, at a free priority with a lower number
// than the deny (troubleshooting.md §1.3 cause 1: "Priority must be lower than any deny rule that
// covers 10250"; §2.1: custom priorities 100-4096, unique per direction).
import type { Fix } from "../report/check-result.js";
import { flowText } from "./flow-text.js";
import { maxCustomPriority, minCustomPriority, nsgName } from "./nsg-model.js";
import type { Nsg, NsgFlow, NsgRule } from "./nsg-model.js";
import { mayOverlap } from "./rule-overlap.js";

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

/**
 * Where the deny can move up to: the first free priority above it, unless an allow that may match
 * traffic the deny matches stands on the way — moved past it, the deny would let that traffic
 * through (an Internet-wide allow at 101 behind a kubelet deny at 100). Passing another deny, or a
 * rule that matches none of the deny's traffic, changes nothing.
 */
type Move = { readonly kind: "to"; readonly priority: number } | { readonly kind: "blocked"; readonly by: NsgRule } | { readonly kind: "none" };

function moveAbove(nsg: Nsg, deny: NsgRule): Move {
  for (let p = deny.priority + 1; p <= maxCustomPriority; p++) {
    const there = nsg.rules.find((r) => r.direction === deny.direction && r.priority === p);
    if (!there) return { kind: "to", priority: p };
    if (there.access === "Allow" && mayOverlap(there, deny)) return { kind: "blocked", by: there };
  }
  return { kind: "none" };
}

export function allowRuleName(flow: NsgFlow): string {
  return flow.port === 10250 && flow.protocol === "tcp" ? "Allow-Kubelet-10250" : `Allow-${flow.protocol === "tcp" ? "Tcp" : "Udp"}-${flow.port}`;
}

export function fixNsg(nsg: Nsg, deny: NsgRule, flow: NsgFlow): Fix[] {
  const rg = nsg.resourceGroup ?? "<resource-group>";
  const name = nsgName(nsg);
  const create = (priority: number | string) =>
    `az network nsg rule create --resource-group ${rg} --nsg-name ${name} --name ${allowRuleName(flow)}` +
    ` --priority ${priority} --direction ${deny.direction} --access Allow --protocol ${flow.protocol === "tcp" ? "Tcp" : "Udp"}` +
    ` --source-address-prefixes ${flow.source} --destination-address-prefixes ${flow.destination} --destination-port-ranges ${flow.port}`;
  const widen = "; widen the prefixes to the node subnet CIDRs to cover every node";
  const free = freePriorityBelow(nsg, deny.direction, deny.priority);
  if (free !== null) {
    return [{
      description: `Allow ${flowText(flow)} in NSG "${name}" before "${deny.name}" (priority ${deny.priority})${widen}`,
      command: create(free),
    }];
  }
  const list = `az network nsg rule list --resource-group ${rg} --nsg-name ${name} --include-default --query "sort_by([?direction=='${deny.direction}'], &priority)" -o table`;
  if (deny.isDefault || !isCustomPriority(deny.priority)) {
    // A default rule (DenyAllInBound, DenyAllOutBound at 65500) cannot be changed, moved or deleted
    // (§2.2): Azure refuses `az network nsg rule update` on it. Below it every custom priority
    // (100-4096, §2.1) is taken, so no allow can be created until the operator frees one; which
    // rule can go, or be merged into another, is theirs to judge. The command only lists.
    return [{
      description: `Every custom priority (${minCustomPriority}-${maxCustomPriority}) of NSG "${name}" (${deny.direction}) is taken, and "${deny.name}" (priority ${deny.priority}) is a default rule, which Azure does not let anyone change or move: no allow can be added ahead of it until a priority is freed. ` +
        `Free one — delete a custom ${deny.direction.toLowerCase()} rule that is no longer needed, or merge two rules that do the same into one (widen one, delete the other) — then allow ${flowText(flow)} at the freed priority${widen}. The ${deny.direction.toLowerCase()} rules in priority order:`,
      command: list,
    }];
  }
  // No free number below the deny: move the deny to a higher number first, never past an allow that
  // overlaps it (moveAbove). Every priority proposed stays within 100-4096 (§2.1): where none is, the
  // command carries a placeholder rather than a number Azure rejects.
  const move = moveAbove(nsg, deny);
  if (move.kind === "blocked") {
    // Any free number above lies behind that allow: renumbering is the operator's decision.
    const by = move.by;
    return [{
      description: `No priority below ${deny.priority} is free in NSG "${name}" (${deny.direction}), and "${deny.name}" cannot move to a higher number without passing "${by.name}" (priority ${by.priority}, Allow), which may match traffic "${deny.name}" denies: behind it, that traffic would be let in. ` +
        `Not renumbered: decide the order yourself — move "${by.name}" (and any overlapping allow after it) to higher numbers first so that "${deny.name}" can follow and still come before them${deny.priority > minCustomPriority ? `, or free a priority below ${deny.priority}` : ""} — then allow ${flowText(flow)} ahead of "${deny.name}"${widen}. The ${deny.direction.toLowerCase()} rules in priority order:`,
      command: list,
    }];
  }
  const moved = move.kind === "to" ? move.priority : null;
  const old = deny.priority;
  return [
    {
      description: moved === null
        ? `No priority below ${deny.priority} is free in NSG "${name}" (${deny.direction}), nor above it: free one, then renumber "${deny.name}" to it (check it still comes before the rules it must precede)`
        : `No priority below ${deny.priority} is free in NSG "${name}" (${deny.direction}): renumber "${deny.name}" to ${moved}, the first free number above it; no rule in between allows traffic it denies, so it still comes before every rule that does`,
      command: `az network nsg rule update --resource-group ${rg} --nsg-name ${name} --name ${deny.name} --priority ${moved ?? "<free priority>"}`,
    },
    {
      description: `Then allow ${flowText(flow)} at the deny's old priority${widen}`,
      command: create(old),
    },
  ];
}
