// The one place where Node's socket errors are translated: into Go's wording (upstream agents
// put Go's dial error text in DIAL_RSP, and kube-apiserver, HTTP CONNECT status mapping and
// users' runbooks all key on it) and into the mechanism the doctor reasons about.

export type NetMechanism = "timeout" | "refused" | "no-route" | "reset" | "dns" | "fd-limit" | "permission" | "unknown";

const byErrno: Record<string, { mechanism: NetMechanism; text: string }> = {
  ETIMEDOUT: { mechanism: "timeout", text: "i/o timeout" },
  ECONNREFUSED: { mechanism: "refused", text: "connect: connection refused" },
  EHOSTUNREACH: { mechanism: "no-route", text: "connect: no route to host" },
  ENETUNREACH: { mechanism: "no-route", text: "connect: network is unreachable" },
  ECONNRESET: { mechanism: "reset", text: "connect: connection reset by peer" },
  EMFILE: { mechanism: "fd-limit", text: "socket: too many open files" },
  ENFILE: { mechanism: "fd-limit", text: "socket: too many open files in system" },
  EACCES: { mechanism: "permission", text: "connect: permission denied" },
  EPERM: { mechanism: "permission", text: "connect: operation not permitted" },
  EADDRNOTAVAIL: { mechanism: "no-route", text: "connect: cannot assign requested address" },
};

export interface DialErrorDescription {
  readonly mechanism: NetMechanism;
  /** Go's `net.Dial` wording, e.g. `dial tcp 10.0.0.5:10250: connect: connection refused`. */
  readonly goText: string;
}

/** `address` is host:port as dialled; `err` is what net.connect emitted (or an ETIMEDOUT of ours). */
export function describeDialError(address: string, err: unknown): DialErrorDescription {
  const code = typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : "";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME") {
    const host = address.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    const what = code === "EAI_AGAIN" ? "server misbehaving" : "no such host";
    return { mechanism: "dns", goText: `dial tcp: lookup ${host}: ${what}` };
  }
  const known = byErrno[code];
  if (known) return { mechanism: known.mechanism, goText: `dial tcp ${address}: ${known.text}` };
  const message = err instanceof Error ? err.message : String(err);
  return { mechanism: "unknown", goText: `dial tcp ${address}: ${message}` };
}

/** Classifies an error text from any source (Go, Node, curl) by the words it contains. */
export function mechanismOfText(text: string): NetMechanism {
  const t = text.toLowerCase();
  if (/i\/o timeout|timed out|timeout|deadline exceeded/.test(t)) return "timeout";
  if (/connection refused|econnrefused/.test(t)) return "refused";
  if (/no route to host|network is unreachable|ehostunreach|enetunreach/.test(t)) return "no-route";
  if (/connection reset|econnreset/.test(t)) return "reset";
  if (/no such host|lookup .*:|could not resolve|enotfound/.test(t)) return "dns";
  if (/too many open files|emfile/.test(t)) return "fd-limit";
  if (/permission denied|operation not permitted/.test(t)) return "permission";
  return "unknown";
}
