// Why a connection to a server failed, in the words of the agent's flags. OpenSSL's and the
// server's words alone ("unable to verify the first certificate", "Hostname/IP does not match
// certificate's altnames: IP: 127.0.0.1 is not in the cert's list: ", "UNAUTHENTICATED") say
// neither which file is wrong nor what to change.
import { isIP } from "node:net";
import { isTunnelError } from "../protocol/index.js";

export interface ConnectErrorContext {
  /** The address dialled (what the server's certificate must name), and the name checked instead when there is one. */
  readonly host: string;
  readonly servername?: string;
  /** --ca-cert's path; undefined: the system's CAs. */
  readonly caFile?: string;
  readonly hasToken: boolean;
  readonly hasClientCertificate: boolean;
}

export interface ConnectErrorExplanation {
  /** The log line, without "; retrying with backoff". */
  readonly message: string;
  /** A problem on this machine (a token file it cannot read), not with the server or the path to it. */
  readonly isLocal: boolean;
}

/** OpenSSL's verify results that mean "no CA you gave signed this chain". */
const untrustedChain = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_SIGNATURE_FAILURE", "CERT_UNTRUSTED",
]);

export function explainConnectError(err: unknown, c: ConnectErrorContext): ConnectErrorExplanation {
  const message = err instanceof Error ? err.message : String(err);
  // The agent's own options (the token file): thrown as INVALID_OPTION by connectToServer.
  if (isTunnelError(err, "INVALID_OPTION")) return { message, isLocal: true };
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && untrustedChain.has(code)) {
    const ca = c.caFile
      ? `--ca-cert ${c.caFile}`
      : "any CA this machine trusts (no --ca-cert was given, so the system's CAs were asked)";
    return {
      message: `cannot reach the server: ${message}: the server's certificate is not signed by ${ca}; give the CA that signed the server's --cluster-cert as --ca-cert`,
      isLocal: false,
    };
  }
  if (code === "CERT_HAS_EXPIRED") {
    return { message: `cannot reach the server: ${message}: the server's certificate (its --cluster-cert) has expired; renew it on the server`, isLocal: false };
  }
  if (code === "CERT_NOT_YET_VALID") {
    return { message: `cannot reach the server: ${message}: the server's certificate is not valid yet; check this machine's clock, and the server's`, isLocal: false };
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    const sans = (err as { cert?: { subjectaltname?: string } }).cert?.subjectaltname;
    const checked = c.servername ?? c.host;
    const kind = isIP(checked) ? "IP" : "DNS";
    return {
      message: `cannot reach the server: the server's certificate names ${sans ? sans.replace(/IP Address:/g, "IP:") : "no address (it has no subjectAltName)"}, ` +
        `not ${checked}, which the agent dials (--proxy-server-host): the server's certificate (--cluster-cert) needs ${kind}:${checked} among its SANs, ` +
        "or give --proxy-server-host a name the certificate has",
      isLocal: false,
    };
  }
  if (isTunnelError(err, "UNAUTHENTICATED")) {
    const wantsCertificate = /client certificate/i.test(message);
    const hint = wantsCertificate
      ? c.hasClientCertificate
        ? "the server does not accept this agent's certificate: it must be signed by the server's --cluster-ca-cert"
        : "the server authenticates agents by client certificate: give --agent-cert and --agent-key, signed by the server's --cluster-ca-cert"
      : c.hasToken
        ? "the server did not accept the token in --service-account-token-path: it must be a service-account token for the server's --authentication-audience, of its --agent-namespace/--agent-service-account"
        : "the server authenticates agents by token: give --service-account-token-path (a projected service-account token with the server's --authentication-audience)";
    return { message: `the server refused the agent: ${message}; ${hint}`, isLocal: false };
  }
  if (isTunnelError(err, "PERMISSION_DENIED")) return { message: `the server refused the agent: ${message}`, isLocal: false };
  return { message: `cannot reach the server: ${message}`, isLocal: false };
}
