import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { createPki } from "./pki.js";

test("the server certificate is issued by the CA for localhost and 127.0.0.1, the client one for client auth", async () => {
  const pki = await createPki();
  const ca = new X509Certificate(pki.ca);
  const server = new X509Certificate(pki.server.cert);
  const client = new X509Certificate(pki.client.cert);
  assert.equal(ca.ca, true);
  assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey));
  assert.ok(client.checkIssued(ca) && client.verify(ca.publicKey));
  assert.equal(server.checkHost("localhost"), "localhost");
  assert.equal(server.checkIP("127.0.0.1"), "127.0.0.1");
  assert.equal(server.checkHost("example.com"), undefined);
  assert.equal(server.ca, false);
  assert.deepEqual(server.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
  assert.deepEqual(client.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
  assert.equal(server.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  assert.match(pki.server.key, /^-----BEGIN PRIVATE KEY-----/);
});

test("issue() honours extra names and keeps a hostile common name inside its attribute", async () => {
  const pki = await createPki({ serverNames: ["proxy.example"], serverIps: ["10.0.0.1"] });
  assert.equal(new X509Certificate(pki.server.cert).checkHost("proxy.example"), "proxy.example");
  assert.equal(new X509Certificate(pki.server.cert).checkHost("localhost"), undefined);
  const leaf = await pki.issue("agent,O=evil", { client: true, dns: ["node-1"] });
  const cert = new X509Certificate(leaf.cert);
  assert.equal(cert.subject, "CN=agent\\,O=evil"); // one escaped CN, no O attribute
  assert.equal(cert.checkHost("node-1"), "node-1");
});

test("a real mTLS handshake succeeds with the issued pair and the server sees the client's name", async (t) => {
  const pki = await createPki();
  const server = tls.createServer({ ...pki.server, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (socket) => {
    socket.end(String(socket.getPeerCertificate().subject.CN));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;
  const socket = tls.connect({ host: "127.0.0.1", port, ca: pki.ca, ...pki.client });
  let received = "";
  socket.setEncoding("utf8").on("data", (d: string) => (received += d));
  await once(socket, "end");
  socket.destroy();
  assert.equal(socket.authorized, true);
  assert.equal(received, "nodetunnel-client");
});
