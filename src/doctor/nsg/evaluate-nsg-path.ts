// The four places an NSG can stand on one flow, in Azure's order: source NIC (outbound) → source
// subnet (outbound) → destination subnet (inbound) → destination NIC (inbound); a missing NSG allows
// all and the first deny decides (troubleshooting.md §2.4, §2.8 `path`; doctor-cli.md `nsg`).
import { evaluateNsg } from "./evaluate-nsg.js";
import type { NsgDecision } from "./evaluate-nsg.js";
import type { AddressContext } from "./match-rule.js";
import type { Nsg, NsgAttachment, NsgDirection, NsgFlow } from "./nsg-model.js";

export interface NsgsOnPath {
  readonly sourceNic?: Nsg;
  readonly sourceSubnet?: Nsg;
  readonly destSubnet?: Nsg;
  readonly destNic?: Nsg;
}

export const pathOrder: readonly { attachment: NsgAttachment; key: keyof NsgsOnPath; direction: NsgDirection; place: string }[] = [
  { attachment: "source-nic", key: "sourceNic", direction: "Outbound", place: "source NIC" },
  { attachment: "source-subnet", key: "sourceSubnet", direction: "Outbound", place: "source subnet" },
  { attachment: "dest-subnet", key: "destSubnet", direction: "Inbound", place: "destination subnet" },
  { attachment: "dest-nic", key: "destNic", direction: "Inbound", place: "destination NIC" },
];

export interface PathStep extends NsgDecision {
  readonly nsg: Nsg;
  readonly attachment: NsgAttachment;
  readonly direction: NsgDirection;
  readonly place: string;
}

export type PathVerdict =
  /** The flow never leaves the node (source = destination), so no NSG sees it (§2.4). */
  | { readonly kind: "local"; readonly steps: readonly PathStep[] }
  | { readonly kind: "allowed" | "blocked" | "indeterminate"; readonly steps: readonly PathStep[]; readonly decider: PathStep | null };

export function evaluateNsgPath(nsgs: NsgsOnPath, flow: NsgFlow, ctx: AddressContext): PathVerdict {
  if (flow.source === flow.destination) return { kind: "local", steps: [] };
  const steps: PathStep[] = [];
  for (const { attachment, key, direction, place } of pathOrder) {
    const nsg = nsgs[key];
    if (nsg) steps.push({ ...evaluateNsg(nsg, direction, flow, ctx), nsg, attachment, direction, place });
  }
  // A certain deny blocks whatever the undecided NSGs before it would do.
  const deny = steps.find((s) => s.outcome === "Deny");
  if (deny) return { kind: "blocked", steps, decider: deny };
  const unknown = steps.find((s) => s.outcome === "unknown");
  if (unknown) return { kind: "indeterminate", steps, decider: unknown };
  return { kind: "allowed", steps, decider: steps.at(-1) ?? null };
}
