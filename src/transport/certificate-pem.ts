// OpenSSL takes a CA file it cannot read a single certificate from without complaint: an empty
// file, one cut short, two bundles joined without a newline. A TLS context built on it then
// refuses every peer. So certificate and CA files are checked here first, the way OpenSSL reads
// them: text outside the PEM blocks is allowed (bundles carry comments), every block must parse,
// and there must be at least one.
import { X509Certificate } from "node:crypto";
import { TunnelError } from "../protocol/tunnel-error.js";

const begin = "-----BEGIN CERTIFICATE-----";
const end = "-----END CERTIFICATE-----";

/** Throws INVALID_OPTION, naming `what` (a flag), unless `pem` holds one or more certificates OpenSSL will read. Returns how many. */
export function checkCertificatePem(what: string, pem: string | Buffer): number {
  const text = typeof pem === "string" ? pem : pem.toString("latin1");
  const begins = text.split(begin).length - 1;
  const ends = text.split(end).length - 1;
  if (begins === 0) throw new TunnelError("INVALID_OPTION", `${what}: no PEM certificate in it${text.trim() === "" ? " (the file is empty)" : ""}`);
  if (begins !== ends) throw new TunnelError("INVALID_OPTION", `${what}: ${begins} certificates begin but ${ends} end (a file cut short?)`);
  if (new RegExp(`${end}[^\\n]*${begin}`).test(text)) {
    throw new TunnelError("INVALID_OPTION", `${what}: a certificate begins on the line where the one before ends (files joined without a newline?); OpenSSL reads neither`);
  }
  const blocks = text.match(new RegExp(`${begin}[\\s\\S]*?${end}`, "g")) ?? [];
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new TunnelError("INVALID_OPTION", `${what}: certificate ${i + 1} of ${blocks.length} does not parse (${(err as Error).message})`);
    }
  });
  return blocks.length;
}
