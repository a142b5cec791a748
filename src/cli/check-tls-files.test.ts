import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createPki } from "../transport/index.js";
import { checkTlsFlagFiles } from "./check-tls-files.js";

describe("checkTlsFlagFiles", () => {
  it("takes a matching pair and CA, and names both flags when the key is another pair's", async () => {
    const [a, b] = await Promise.all([createPki(), createPki()]);
    const file = (flag: string, path: string, pem: string) => ({ flag, path, pem: Buffer.from(pem) });
    checkTlsFlagFiles({ cert: file("--cluster-cert", "a.crt", a.server.cert), key: file("--cluster-key", "a.key", a.server.key), ca: file("--cluster-ca-cert", "ca.crt", a.ca) });
    assert.throws(() => checkTlsFlagFiles({ cert: file("--cluster-cert", "a.crt", a.server.cert), key: file("--cluster-key", "b.key", b.server.key) }),
      { code: "INVALID_OPTION", message: "--cluster-cert and --cluster-key do not match: the key (b.key) is not the certificate's (a.crt); give the key that was made with the certificate" });
    assert.throws(() => checkTlsFlagFiles({ key: file("--agent-key", "a.crt", a.server.cert) }), /^TunnelError: --agent-key a\.crt: not a private key OpenSSL reads/);
  });
});
