// The normalised NSG model the evaluator works on, whatever JSON shape it came from
// (troubleshooting.md §2.1: `az network nsg show`, `az network nsg rule list`, ARM `properties`).

/** Custom (non-default) rule priorities Azure accepts (troubleshooting.md §2.1). */
export const minCustomPriority = 100;
export const maxCustomPriority = 4096;

export type NsgDirection = "Inbound" | "Outbound";
export type NsgAccess = "Allow" | "Deny";
export type NsgProtocol = "*" | "Tcp" | "Udp" | "Icmp" | "Esp" | "Ah";

/** One NSG file as the CLI hands it over. */
export interface NsgSource {
  /** The file name, for messages. */
  readonly label: string;
  /** The JSON text. */
  readonly text: string;
}

export interface NsgRule {
  readonly name: string;
  readonly priority: number;
  readonly direction: NsgDirection;
  readonly access: NsgAccess;
  readonly protocol: NsgProtocol;
  /** Address prefixes as written: `*`, IPs, CIDRs or one service tag. */
  readonly sourcePrefixes: readonly string[];
  /** Application security group names (the last segment of each id). */
  readonly sourceAsgs: readonly string[];
  /** `*`, `N` or `A-B`. */
  readonly sourcePorts: readonly string[];
  readonly destinationPrefixes: readonly string[];
  readonly destinationAsgs: readonly string[];
  readonly destinationPorts: readonly string[];
  /** One of the six platform rules (§2.2). */
  readonly isDefault: boolean;
}

export interface Nsg {
  /**
   * From the NSG's `name`, or its `id` (a rule list: the rules' ids); null when the input shows
   * neither, as `az network nsg rule list` prints `[]` for an NSG with only the default rules.
   */
  readonly name: string | null;
  /** From the NSG's `resourceGroup` or its id; null when the input shows neither. */
  readonly resourceGroup: string | null;
  readonly label: string;
  readonly rules: readonly NsgRule[];
  /** Names of the default rules the input lacked and the parser added (§2.2: they always exist). */
  readonly addedDefaults: readonly string[];
  /** Which JSON shape the input had. */
  readonly shape: "nsg-show" | "rule-list";
}

export type NsgAttachment = "source-nic" | "source-subnet" | "dest-subnet" | "dest-nic";

export interface NsgFlow {
  readonly protocol: "tcp" | "udp";
  readonly source: string;
  readonly destination: string;
  readonly port: number;
  /** Absent: an ephemeral port the client picks (doctor-cli.md `--source-port`). */
  readonly sourcePort?: number;
}

/** Stands for the NSG's name where the input does not show it, as `<resource-group>` does for its group. */
export const nsgNamePlaceholder = "<nsg-name>";

/** The NSG's name for reports and commands: the placeholder where the input does not show it. */
export const nsgName = (nsg: Pick<Nsg, "name">): string => nsg.name ?? nsgNamePlaceholder;
