// The order of TLS suites nodetunnel's TLS endpoints prefer (agent link, both ends; the HTTP
// CONNECT frontend over mTLS): Node's defaults, with TLS 1.3's AES-128-GCM moved first, the order
// Go's crypto/tls uses on AES hardware (Node puts AES-256-GCM first). Nothing is added or dropped,
// so every peer that could connect before still can. A Node server follows its own order (Node
// sets honorCipherOrder by default), so both ends must say it: nodetunnel's agent, nodetunnel's
// server, and Go's peers all then agree on AES-128-GCM. It costs less CPU per byte: 3.3 against
// 2.0 GB/s for 16 KiB records in `openssl speed` on the bench machine, ~0.2 ms per MB per side
// of the agent link (docs/benchmarks.md).
import { DEFAULT_CIPHERS } from "node:tls";

const preferred = "TLS_AES_128_GCM_SHA256";

/** For the `ciphers` option of tls.connect / tls.createServer. */
export const tlsCipherOrder: string = ((): string => {
  const all = DEFAULT_CIPHERS.split(":");
  return all.includes(preferred) ? [preferred, ...all.filter((c) => c !== preferred)].join(":") : DEFAULT_CIPHERS;
})();
