// The six rules every NSG has and nobody can delete (troubleshooting.md §2.2). `az network nsg
// rule list` without `--include-default` omits them, so the parser adds the missing ones.
import type { NsgRule } from "./nsg-model.js";

function rule(name: string, direction: NsgRule["direction"], priority: number, source: string, destination: string, access: NsgRule["access"]): NsgRule {
  return {
    name, priority, direction, access, protocol: "*",
    sourcePrefixes: [source], sourceAsgs: [], sourcePorts: ["*"],
    destinationPrefixes: [destination], destinationAsgs: [], destinationPorts: ["*"],
    isDefault: true,
  };
}

export const defaultRules: readonly NsgRule[] = [
  rule("AllowVnetInBound", "Inbound", 65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
  rule("AllowAzureLoadBalancerInBound", "Inbound", 65001, "AzureLoadBalancer", "*", "Allow"),
  rule("DenyAllInBound", "Inbound", 65500, "*", "*", "Deny"),
  rule("AllowVnetOutBound", "Outbound", 65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
  rule("AllowInternetOutBound", "Outbound", 65001, "*", "Internet", "Allow"),
  rule("DenyAllOutBound", "Outbound", 65500, "*", "*", "Deny"),
];

/** Docs spell them variously (`AllowVNetInBound`, `DenyAllInbound`); `az` returns the spelling above. */
export const isDefaultRuleName = (name: string): boolean =>
  defaultRules.some((r) => r.name.toLowerCase() === name.toLowerCase());
