// createPki loads @peculiar/x509 (with tsyringe, asn1js and a reflect-metadata polyfill: ~8 MiB
// of RSS) only when called: only the demo, the lab and the tests make certificates, and a server
// or agent process should not carry that library.
import type { Pki } from "./pki.js";

export type { IssueOptions, PemPair, Pki } from "./pki.js";

export async function createPki(options: { serverNames?: string[]; serverIps?: string[] } = {}): Promise<Pki> {
  const { createPki: create } = await import("./pki.js");
  return create(options);
}
