// A throwaway certificate authority for tests and the demo: ECDSA P-256 (fast to generate, small
// handshakes), a CA, a server certificate valid for localhost/127.0.0.1 and a client certificate for
// mTLS (konnectivity.md §1.7: agents authenticate with a client certificate signed by the
// cluster CA). Everything comes back as PEM strings, as node:tls wants them.
import { randomBytes, webcrypto } from "node:crypto";
import "./reflect-metadata.js";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const keyAlgorithm: webcrypto.EcKeyGenParams & webcrypto.EcdsaParams = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const dayMs = 24 * 60 * 60 * 1000;

export interface PemPair { readonly cert: string; readonly key: string }
export interface IssueOptions {
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
  readonly client?: boolean;
  /** When the certificate expires (default: with the CA, in a year); a past date makes an expired one. */
  readonly notAfter?: Date;
}
export interface Pki {
  /** The CA certificate (PEM); trust anchor for both sides. */
  readonly ca: string;
  readonly server: PemPair;
  readonly client: PemPair;
  /** Issues another leaf signed by this CA: a server certificate unless `client` is true. */
  issue(commonName: string, opts?: IssueOptions): Promise<PemPair>;
}

// A positive, non-zero 16-byte serial (RFC 5280 §4.1.2.2: at most 20 octets, positive).
const serialNumber = (): string => {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString("hex");
};

async function generateKeys(): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"]) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(pkcs8, "PRIVATE KEY");
}

export async function createPki(options: { serverNames?: string[]; serverIps?: string[] } = {}): Promise<Pki> {
  const notBefore = new Date(Date.now() - 60 * 60 * 1000); // tolerate small clock skew
  const notAfter = new Date(Date.now() + 365 * dayMs);
  const caKeys = await generateKeys();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: "CN=nodetunnel test CA",
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: keyAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  async function issue(commonName: string, opts: IssueOptions = {}): Promise<PemPair> {
    const keys = await generateKeys();
    const names: x509.JsonGeneralName[] = [
      ...(opts.dns ?? []).map((value) => ({ type: "dns" as const, value })),
      ...(opts.ips ?? []).map((value) => ({ type: "ip" as const, value })),
    ];
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([opts.client ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ];
    if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
    // The distinguished name is built by the library from a JSON form, so a common name with a
    // comma or an equals sign cannot break out of its attribute.
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject: [{ CN: [commonName] }],
      issuer: caCert.subjectName,
      notBefore: opts.notAfter && opts.notAfter < notBefore ? new Date(opts.notAfter.getTime() - dayMs) : notBefore,
      notAfter: opts.notAfter ?? notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: keyAlgorithm,
      extensions,
    });
    return { cert: cert.toString("pem"), key: await privateKeyPem(keys.privateKey) };
  }

  const [server, client] = await Promise.all([
    issue("localhost", { dns: options.serverNames ?? ["localhost"], ips: options.serverIps ?? ["127.0.0.1", "::1"] }),
    issue("nodetunnel-client", { client: true }),
  ]);
  return { ca: caCert.toString("pem"), server, client, issue };
}
