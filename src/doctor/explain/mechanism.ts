// The mechanism `doctor explain` reports. doctor-cli.md `explain` lists the values of `mechanism`
// as a closed set (unlike the cause ids, which end in "..."), so scripts may switch on it. The
// doctor reasons with a finer classification (the shared one of src/protocol/net-error.ts adds
// reset, fd-limit and permission); that one travels in `mechanismDetail`, and `mechanism` holds
// the contract value it belongs to.

/** doctor-cli.md `explain`: the values of `mechanism`, in the contract's order. */
export const explainMechanisms = ["timeout", "refused", "no-route", "no-agent", "tls", "not-tls", "auth", "dns", "unknown"] as const;

export type ExplainMechanism = (typeof explainMechanisms)[number];

/** The doctor's own classes: every contract value, and three finer ones. */
export type MechanismDetail = ExplainMechanism | "reset" | "fd-limit" | "permission";

// Each finer class is reported as the contract value a person acts on in the same way: the dial
// failed at once, stopped by something that answered (the peer, a middlebox, the local host), not
// a silent drop (timeout), a missing route, DNS, TLS or credentials.
const reported: Record<MechanismDetail, ExplainMechanism> = {
  timeout: "timeout", refused: "refused", "no-route": "no-route", "no-agent": "no-agent", tls: "tls",
  "not-tls": "not-tls", auth: "auth", dns: "dns", unknown: "unknown",
  reset: "refused", // an RST or EOF on an open connection, as an RST on a new one is "refused" (§6.2)
  "fd-limit": "refused", // no descriptor for the socket: the dial fails at once, locally
  permission: "refused", // the local host (OUTPUT chain: EPERM/EACCES) or the agent's policy refused the dial
};

export const reportedMechanism = (detail: MechanismDetail): ExplainMechanism => reported[detail];
