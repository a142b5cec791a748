import assert from "node:assert/strict";
import { test } from "node:test";
import { isTunnelError } from "../protocol/tunnel-error.js";
import { checkCertificatePem } from "./certificate-pem.js";
import { createPki } from "./pki.js";

test("certificate files are read as OpenSSL reads them: comments allowed, bundles counted; empty, cut, joined or corrupt files refused by name", async () => {
  const [a, b] = await Promise.all([createPki(), createPki()]);
  assert.equal(checkCertificatePem("--ca-cert", a.ca), 1);
  assert.equal(checkCertificatePem("--ca-cert", `# cluster CA, 2026\n${a.ca}\n# next CA\n${b.ca}`), 2);
  assert.equal(checkCertificatePem("--ca-cert", Buffer.from(a.ca.replace(/\n/g, "\r\n"))), 1);
  const refused = (pem: string, pattern: RegExp) => assert.throws(() => checkCertificatePem("--cluster-ca-cert /pki/ca.crt", pem), (err: Error) => {
    assert.ok(isTunnelError(err, "INVALID_OPTION"));
    assert.match(err.message, /^--cluster-ca-cert \/pki\/ca\.crt: /);
    assert.match(err.message, pattern);
    return true;
  });
  refused("", /no PEM certificate in it \(the file is empty\)/);
  refused(a.server.key, /no PEM certificate in it$/);
  refused(a.ca.slice(0, 40), /1 certificates begin but 0 end \(a file cut short\?\)/);
  refused(`${a.ca}\n${b.ca.slice(0, 200)}`, /2 certificates begin but 1 end/);
  refused(`${a.ca.trimEnd()}${b.ca}`, /begins on the line where the one before ends \(files joined without a newline\?\)/);
  const lines = b.ca.split("\n");
  lines[3] = "!!!!" + lines[3]!.slice(4);
  refused(`${a.ca}\n${lines.join("\n")}`, /certificate 2 of 2 does not parse/);
});
