// The shape every doctor check returns: the JSON contract of shared/spec/doctor-cli.md.
// Check-specific fields (flow checks' `flow`/`verdict`/`effect`/`decidedBy`, nsg's `path`,
// explain's `mechanism`/`causes`, snat's arithmetic...) travel as extra properties.

export type CheckName = "nsg" | "iptables" | "ufw" | "nftables" | "egress" | "snat" | "explain" | "node" | "cluster";
export type CheckStatus = "ok" | "problem" | "warning" | "indeterminate";
export type FlowVerdict = "allowed" | "blocked" | "indeterminate";
export type FlowEffect = "accept" | "drop" | "reject" | null;

export interface Fix { readonly description: string; readonly command: string }

export interface Flow {
  readonly protocol: "tcp" | "udp";
  readonly source: string;
  readonly destination: string | null;
  readonly port: number;
}

export interface CheckResult {
  readonly check: CheckName;
  readonly status: CheckStatus;
  readonly summary: string;
  readonly fixes: readonly Fix[];
  readonly assumptions: readonly string[];
  readonly flow?: Flow;
  readonly verdict?: FlowVerdict;
  readonly effect?: FlowEffect;
  readonly decidedBy?: Readonly<Record<string, unknown>> | null;
  /** Lines for people only (the text report prints them after the summary); not part of the JSON contract. */
  readonly details?: readonly string[];
  readonly [extra: string]: unknown;
}

/** The exit code the contract gives each status. */
export function exitCodeOf(status: CheckStatus): 0 | 1 | 3 {
  switch (status) {
    case "ok":
    case "warning":
      return 0;
    case "problem":
      return 1;
    case "indeterminate":
      return 3;
  }
}
