// A certificate, its key and a CA, checked at start the way the TLS listener or client will use
// them. Without this a key from another pair surfaces as OpenSSL's "key values mismatch" (the
// server: exit 1 naming nothing) or as a connect error retried forever (the agent), long after
// the flags were read. Each failure names the flags and the files, and says what is wrong in words.
import { createSecureContext } from "node:tls";
import { TunnelError } from "../protocol/index.js";

export interface TlsFlagFile {
  readonly flag: string;
  readonly path: string;
  readonly pem: Buffer;
}

/** The certificate, key and CA of one listener or client; each part may be absent. */
export interface TlsFlagFiles {
  readonly cert?: TlsFlagFile;
  readonly key?: TlsFlagFile;
  readonly ca?: TlsFlagFile;
}

const invalid = (message: string): never => {
  throw new TunnelError("INVALID_OPTION", message);
};

/**
 * Throws INVALID_OPTION naming the flags unless the files make a TLS context: the key is a private
 * key OpenSSL reads (unencrypted), it is the certificate's, and the CA file loads. The PEM of the
 * certificate and CA files is checked before (checkCertificatePem, through readCertificateFlagFile).
 */
export function checkTlsFlagFiles({ cert, key, ca }: TlsFlagFiles): void {
  if (key) {
    try {
      createSecureContext({ key: key.pem });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const isEncrypted = code === "ERR_OSSL_CRYPTO_INTERRUPTED_OR_CANCELLED" || /ENCRYPTED/.test(key.pem.toString("latin1"));
      invalid(isEncrypted
        ? `${key.flag} ${key.path}: the key is encrypted (it asks for a passphrase); give it unencrypted, as a Kubernetes Secret holds it`
        : `${key.flag} ${key.path}: not a private key OpenSSL reads (expected PEM "-----BEGIN PRIVATE KEY-----", "RSA PRIVATE KEY" or "EC PRIVATE KEY"; a certificate given as the key?)`);
    }
  }
  if (cert) {
    try {
      createSecureContext({ cert: cert.pem });
    } catch (err) {
      invalid(`${cert.flag} ${cert.path}: OpenSSL does not take it as a certificate (${(err as Error).message})`);
    }
  }
  if (cert && key) {
    try {
      createSecureContext({ cert: cert.pem, key: key.pem });
    } catch (err) {
      const isMismatch = (err as NodeJS.ErrnoException).code === "ERR_OSSL_X509_KEY_VALUES_MISMATCH" || /key values mismatch/.test((err as Error).message);
      invalid(isMismatch
        ? `${cert.flag} and ${key.flag} do not match: the key (${key.path}) is not the certificate's (${cert.path}); give the key that was made with the certificate`
        : `${cert.flag} ${cert.path} and ${key.flag} ${key.path} do not make a TLS context: ${(err as Error).message}`);
    }
  }
  if (ca) {
    try {
      createSecureContext({ ca: ca.pem });
    } catch (err) {
      invalid(`${ca.flag} ${ca.path}: OpenSSL does not take it as a CA bundle (${(err as Error).message})`);
    }
  }
}
