// The order of TLS suites nodetunnel's TLS endpoints prefer (agent link, both ends; the HTTP
// CONNECT frontend over mTLS): Node's defaults, with TLS 1.3's AES-128-GCM moved first, the order
// Go's crypto/tls uses on AES hardware (Node puts AES-256-GCM first). Nothing is added or dropped,
// so every peer that could connect before still can. A Node server follows its own order (Node
// sets honorCipherOrder by default), so both ends must say it: nodetunnel's agent, nodetunnel's
// server, and Go's peers all then agree on AES-128-GCM. It costs less CPU per byte: 3.3 against
// 2.0 GB/s for 16 KiB records in `openssl speed` on the bench machine, ~0.2 ms per MB per side
// of the agent link (docs/benchmarks.md).
//
// The server's `--tls-min-version` and `--cipher-suites` take upstream's values (Go's names,
// konnectivity.md §2.1) and become a TlsPolicy for every TLS listener of the server.
import { DEFAULT_CIPHERS, getCiphers, type SecureVersion } from "node:tls";

const preferred = "TLS_AES_128_GCM_SHA256";

/** For the `ciphers` option of tls.connect / tls.createServer. */
export const tlsCipherOrder: string = ((): string => {
  const all = DEFAULT_CIPHERS.split(":");
  return all.includes(preferred) ? [preferred, ...all.filter((c) => c !== preferred)].join(":") : DEFAULT_CIPHERS;
})();

/** What a TLS listener allows: the lowest version and the suites (Node's `ciphers` syntax). */
export interface TlsPolicy {
  readonly minVersion: SecureVersion;
  readonly ciphers: string;
}

export const defaultTlsPolicy: TlsPolicy = { minVersion: "TLSv1.2", ciphers: tlsCipherOrder };

/** TLS 1.3's suites: Go does not let them be chosen, so `--cipher-suites` never removes them. */
const tls13Suites = tlsCipherOrder.split(":").filter((c) => c.startsWith("TLS_"));

/**
 * Go's names (crypto/tls, as Kubernetes' --cipher-suites takes them) → OpenSSL's, for TLS 1.2.
 * RC4 is absent: OpenSSL 3 has none, so a list that names it is refused as unsupported.
 */
const goToOpenssl: Readonly<Record<string, string>> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: "ECDHE-ECDSA-AES128-GCM-SHA256",
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: "ECDHE-RSA-AES128-GCM-SHA256",
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: "ECDHE-ECDSA-AES256-GCM-SHA384",
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: "ECDHE-RSA-AES256-GCM-SHA384",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-RSA-CHACHA20-POLY1305",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: "ECDHE-ECDSA-CHACHA20-POLY1305",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: "ECDHE-RSA-CHACHA20-POLY1305",
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: "ECDHE-ECDSA-AES128-SHA",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: "ECDHE-RSA-AES128-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: "ECDHE-ECDSA-AES256-SHA",
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: "ECDHE-RSA-AES256-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: "ECDHE-ECDSA-AES128-SHA256",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: "ECDHE-RSA-AES128-SHA256",
  TLS_RSA_WITH_AES_128_GCM_SHA256: "AES128-GCM-SHA256",
  TLS_RSA_WITH_AES_256_GCM_SHA384: "AES256-GCM-SHA384",
  TLS_RSA_WITH_AES_128_CBC_SHA: "AES128-SHA",
  TLS_RSA_WITH_AES_256_CBC_SHA: "AES256-SHA",
  TLS_RSA_WITH_AES_128_CBC_SHA256: "AES128-SHA256",
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: "DES-CBC3-SHA",
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: "ECDHE-RSA-DES-CBC3-SHA",
};

const tls13GoNames = new Set(["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]);

const goVersions: Readonly<Record<string, SecureVersion>> = {
  VersionTLS10: "TLSv1", VersionTLS11: "TLSv1.1", VersionTLS12: "TLSv1.2", VersionTLS13: "TLSv1.3",
};

/**
 * Upstream's `--tls-min-version` and `--cipher-suites` as a policy. As in Go, the suites choose
 * among TLS 1.2's (TLS 1.3's names are accepted and change nothing), in the order given, and an
 * empty list keeps the defaults. nodetunnel never goes below TLS 1.2: VersionTLS10 and 11 are
 * raised to it, with a note for the operator. Throws on a name it does not know.
 */
export function tlsPolicyFromGoNames(minVersion: string, cipherSuites: readonly string[]): { policy: TlsPolicy; notes: string[] } {
  const notes: string[] = [];
  let version: SecureVersion = defaultTlsPolicy.minVersion;
  if (minVersion !== "") {
    const v = goVersions[minVersion];
    if (v === undefined) throw new Error(`--tls-min-version: unknown version "${minVersion}" (known: ${Object.keys(goVersions).join(", ")})`);
    if (v === "TLSv1" || v === "TLSv1.1") notes.push(`--tls-min-version=${minVersion}: nodetunnel does not accept TLS below 1.2, so it uses VersionTLS12`);
    else version = v;
  }
  const names = cipherSuites.flatMap((s) => s.split(",")).map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) return { policy: { minVersion: version, ciphers: defaultTlsPolicy.ciphers }, notes };
  const available = new Set(getCiphers());
  const tls12: string[] = [];
  for (const name of names) {
    if (tls13GoNames.has(name)) continue;
    const openssl = goToOpenssl[name];
    if (openssl === undefined || !available.has(openssl.toLowerCase())) {
      throw new Error(`--cipher-suites: cipher suite "${name}" is not supported or does not exist (Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)`);
    }
    if (!tls12.includes(openssl)) tls12.push(openssl);
  }
  if (tls12.length === 0 && version === "TLSv1.2") {
    notes.push("--cipher-suites names no TLS 1.2 suite: only TLS 1.3 clients can connect");
  }
  return { policy: { minVersion: version, ciphers: [...tls13Suites, ...tls12].join(":") }, notes };
}
