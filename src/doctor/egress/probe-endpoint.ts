// One live probe of an endpoint the tunnel needs (doctor-cli.md `doctor egress`,
// troubleshooting.md §5.1): a TCP connect with a deadline, then for TLS endpoints a handshake
// offering ALPN and checking what was negotiated, because a TLS-inspecting firewall that strips or rewrites ALPN breaks
// Konnectivity while plain TCP checks (nc, curl without ALPN) still pass.
import { connect as tcpConnect, isIP, type Socket } from "node:net";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { describeDialError } from "../../protocol/net-error.js";
import { formatHostPort, type EgressTarget } from "./egress-target.js";

export const probeOutcomes = ["connected", "refused", "timeout", "unreachable", "dns", "tls", "alpn-mismatch"] as const;
export type ProbeOutcome = (typeof probeOutcomes)[number];

export interface ProbeCertificate {
  readonly subject: string;
  readonly issuer: string;
  /** Whether the chain verified against the system CAs; the cluster CA is not known here. */
  readonly verified: boolean;
  readonly verifyError: string | null;
}

export interface ProbeResult {
  readonly target: string;
  readonly host: string;
  readonly port: number;
  readonly result: ProbeOutcome;
  readonly elapsedMs: number;
  /** Whether a TLS handshake was attempted. */
  readonly tls: boolean;
  readonly offeredAlpn: readonly string[] | null;
  /** The negotiated ALPN protocol; null when none was (or TLS did not complete). */
  readonly alpn: string | null;
  /** Why it failed, in words a person can act on (Go's dial wording for socket errors). */
  readonly reason: string | null;
  readonly certificate: ProbeCertificate | null;
  /**
   * The IP address dialled: the host itself, or for a name the address it resolved to (the last
   * one tried, where it has several); null where none was dialled (the lookup failed).
   */
  readonly address: string | null;
  /** Every IP address dialled, in order: the host itself, or each address of a name Node tried. */
  readonly addresses: readonly string[];
}

export interface ProbeOptions {
  readonly alpn?: string;
  /** Deadline for each phase: the TCP connect (with DNS), then the TLS handshake. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Name resolution, replaceable so tests never send a DNS query off the machine. */
  readonly lookup?: LookupFunction;
}

// Konnectivity's server port (443 on AKS), its agent port 8132 and admin/health 8091 speak TLS.
const tlsPorts = new Set([443, 8132, 8091]);
export const isTlsTarget = (target: EgressTarget, alpn: string | undefined): boolean => alpn !== undefined || tlsPorts.has(target.port);

export async function probeEndpoint(target: EgressTarget, options: ProbeOptions): Promise<ProbeResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const address = formatHostPort(target);
  const wantsTls = isTlsTarget(target, options.alpn);
  // With --alpn, offer exactly that protocol, as the client it stands for does (the AKS agent
  // offers [konnectivity], §5.1): offering h2 as well would let a server or proxy that only
  // speaks h2 (the API server behind the same 443, a TLS-inspecting proxy) pass the probe.
  const offeredAlpn = wantsTls ? offeredAlpnFor(options.alpn) : null;
  const dialled: Dialled = isIP(target.host) !== 0 ? { address: target.host, addresses: [target.host] } : { address: null, addresses: [] };
  const base = { target: address, host: target.host, port: target.port, tls: wantsTls, offeredAlpn, alpn: null, certificate: null };

  const tcp = await connectTcp(target, options, dialled);
  options.signal?.throwIfAborted();
  if (!tcp.ok) {
    const { mechanism, goText } = describeDialError(address, tcp.error);
    return { ...base, result: outcomeOfMechanism(mechanism), elapsedMs: elapsed(), reason: goText, address: dialled.address , addresses: dialled.addresses };
  }
  if (!wantsTls) {
    tcp.socket.destroy();
    return { ...base, tls: false, result: "connected", elapsedMs: elapsed(), reason: null, address: dialled.address , addresses: dialled.addresses };
  }
  const hs = await handshake(tcp.socket, target, offeredAlpn!, options);
  options.signal?.throwIfAborted();
  const elapsedMs = elapsed();
  if (!hs.ok) return { ...base, result: hs.outcome, elapsedMs, reason: hs.reason, address: dialled.address , addresses: dialled.addresses };
  const matches = hs.alpn !== null && offeredAlpn!.includes(hs.alpn);
  return {
    ...base,
    result: matches ? "connected" : "alpn-mismatch",
    elapsedMs,
    alpn: hs.alpn,
    certificate: hs.certificate,
    address: dialled.address,
    addresses: dialled.addresses,
    reason: matches ? null : hs.alpn === null
      ? `TLS completed but no ALPN protocol was negotiated (offered ${offeredAlpn!.join(", ")}): something on the path (a TLS-inspecting firewall or proxy) answers TLS without ALPN`
      : `TLS completed with ALPN ${hs.alpn}, which was not offered (offered ${offeredAlpn!.join(", ")}): something on the path rewrites ALPN`,
  };
}

/** What the probe offers: the protocol asked for, or h2 (what gRPC clients need) without --alpn. */
export function offeredAlpnFor(alpn: string | undefined): readonly string[] {
  return [alpn ?? "h2"];
}

function outcomeOfMechanism(mechanism: ReturnType<typeof describeDialError>["mechanism"]): ProbeOutcome {
  switch (mechanism) {
    case "timeout":
      return "timeout";
    case "refused":
    case "reset": // a RST during connect is what a REJECT --reject-with tcp-reset sends
      return "refused";
    case "dns":
      return "dns";
    default: // no-route, a local firewall's EPERM, fd limits: the packet never got there
      return "unreachable";
  }
}

type TcpOutcome = { ok: true; socket: Socket } | { ok: false; error: unknown };

/** The address being dialled and every one dialled so far. */
interface Dialled {
  address: string | null;
  readonly addresses: string[];
}

function noteDialled(dialled: Dialled, ip: string): void {
  dialled.address = ip;
  if (!dialled.addresses.includes(ip)) dialled.addresses.push(ip);
}

/**
 * The lookup net.connect uses, noting the first address it returns: Node emits no event naming the
 * address of a name with one address when it asks for all of them (autoSelectFamily).
 */
function recordingLookup(lookup: LookupFunction, dialled: Dialled): LookupFunction {
  return ((host: string, opts: object, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    (lookup as (h: string, o: object, cb: typeof callback) => void)(host, opts, (err, address, family) => {
      const first = Array.isArray(address) ? address[0]?.address : address;
      if (!err && first) noteDialled(dialled, first);
      callback(err, address, family);
    });
  }) as unknown as LookupFunction;
}

/** Connects; `dialled` follows the addresses a name resolves to as each is tried. */
function connectTcp(target: EgressTarget, options: ProbeOptions, dialled: Dialled): Promise<TcpOutcome> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: target.host, port: target.port, lookup: recordingLookup(options.lookup ?? dnsLookup, dialled) });
    // Where a name has several addresses, Node tries them in turn (autoSelectFamily).
    socket.on("connectionAttempt", (ip: string) => noteDialled(dialled, ip));
    const finish = (outcome: TcpOutcome) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      socket.removeListener("connect", onConnect).removeListener("error", onError);
      if (!outcome.ok) socket.destroy();
      else socket.on("error", () => {}); // the TLS phase owns errors from here on
      resolve(outcome);
    };
    const onConnect = () => finish({ ok: true, socket });
    const onError = (error: unknown) => finish({ ok: false, error });
    const onAbort = () => finish({ ok: false, error: options.signal!.reason });
    // Our own deadline; describeDialError renders it in Go's wording ("i/o timeout").
    const timer = setTimeout(() => finish({ ok: false, error: Object.assign(new Error("connect timed out"), { code: "ETIMEDOUT" }) }), options.timeoutMs);
    socket.once("connect", onConnect).once("error", onError);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

type HandshakeOutcome =
  | { ok: true; alpn: string | null; certificate: ProbeCertificate | null }
  | { ok: false; outcome: "tls" | "alpn-mismatch"; reason: string };

function handshake(socket: Socket, target: EgressTarget, offeredAlpn: readonly string[], options: ProbeOptions): Promise<HandshakeOutcome> {
  return new Promise((resolve) => {
    // Certificates are not verified: the cluster CA is not known here, and we want the ALPN
    // answer even from a proxy; the issuer shown in the report is what reveals an inspecting proxy.
    const tls: TLSSocket = tlsConnect({
      socket,
      ALPNProtocols: [...offeredAlpn],
      rejectUnauthorized: false,
      ...(isIP(target.host) === 0 ? { servername: target.host } : {}),
    });
    const finish = (outcome: HandshakeOutcome) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      tls.removeListener("secureConnect", onSecure).removeListener("error", onError);
      tls.on("error", () => {});
      tls.destroy();
      socket.destroy();
      resolve(outcome);
    };
    const onSecure = () => finish({ ok: true, alpn: tls.alpnProtocol || null, certificate: certificateOf(tls) });
    const onError = (error: Error & { code?: string }) => {
      // A server that speaks ALPN but none of ours answers with the no_application_protocol alert (RFC 7301 §3.2).
      if (error.code === "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL") {
        finish({ ok: false, outcome: "alpn-mismatch", reason: `the server refused every offered ALPN protocol (${offeredAlpn.join(", ")})` });
      } else finish({ ok: false, outcome: "tls", reason: tlsReason(error) });
    };
    const onAbort = () => finish({ ok: false, outcome: "tls", reason: `aborted: ${String(options.signal!.reason)}` });
    const timer = setTimeout(() => finish({
      ok: false,
      outcome: "tls",
      reason: `no TLS answer within ${options.timeoutMs} ms: TCP is accepted but nothing answers TLS (a proxy or a non-TLS service holds the port)`,
    }), options.timeoutMs);
    tls.once("secureConnect", onSecure).once("error", onError);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function tlsReason(error: Error & { code?: string; reason?: string }): string {
  // OpenSSL's own words (error.reason) are shorter than the message with its source location.
  const why = (error.reason ?? error.message).trim();
  if (error.code === "ERR_SSL_WRONG_VERSION_NUMBER" || error.code === "ERR_SSL_PACKET_LENGTH_TOO_LONG" || /wrong version number|packet length too long/i.test(why)) {
    return `the server does not speak TLS (${why}): something else answers on this port`;
  }
  if (error.code === "ECONNRESET") return "the connection was closed during the TLS handshake (a firewall or proxy may cut TLS it does not allow)";
  return why;
}

function certificateOf(tls: TLSSocket): ProbeCertificate | null {
  const cert = tls.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return null;
  const name = (n: Record<string, string | string[]> | undefined) =>
    n ? Object.entries(n).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`).join(", ") : "";
  const verifyError = tls.authorizationError;
  return {
    subject: name(cert.subject as unknown as Record<string, string | string[]>),
    issuer: name(cert.issuer as unknown as Record<string, string | string[]>),
    verified: tls.authorized,
    verifyError: verifyError ? String(verifyError) : null,
  };
}
