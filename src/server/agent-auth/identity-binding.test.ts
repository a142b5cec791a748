import { test } from "node:test";
import assert from "node:assert/strict";
import { noIdentifiers, parseAgentIdentifiers } from "../../protocol/index.js";
import { certificateCredential, checkIdentityClaims, parseSubjectAltName, tokenCredential } from "./identity-binding.js";
import { parseIdentityMap } from "./identity-map.js";

test("subjectaltname as node:tls reports it, including JSON-quoted values and other name types", () => {
  assert.deepEqual(parseSubjectAltName("DNS:Node-1, IP Address:10.0.0.5, IP Address:FD00:0:0:0:0:0:0:5, URI:spiffe://x, email:a@b"), {
    dns: ["node-1"], ips: ["10.0.0.5", "FD00:0:0:0:0:0:0:5"],
  });
  assert.deepEqual(parseSubjectAltName('DNS:"a, DNS:evil", DNS:b'), { dns: ["a, dns:evil", "b"], ips: [] });
  assert.deepEqual(parseSubjectAltName(""), { dns: [], ips: [] });
});

test("a certificate allows its CN and SAN names as agent id and host, and its SAN IPs in any notation", () => {
  const cred = certificateCredential({ subject: { CN: "node-1" }, subjectaltname: "DNS:node-1.cluster, IP Address:FD00:0:0:0:0:0:0:5" }, undefined);
  assert.equal(cred.bindsBy, "the certificate names addresses (SAN IPs)");
  const ok = (id: string, ids: string) => checkIdentityClaims("strict", cred, id, parseAgentIdentifiers(ids));
  assert.equal(ok("node-1", "host=node-1.cluster&ipv6=fd00::5"), null);
  assert.equal(ok("node-1.cluster", "host=NODE-1"), null);
  assert.equal(ok("node-1", "ipv6=fd00::6")?.claim, "ipv6=fd00::6");
  assert.equal(ok("node-1", "cidr=10.0.0.0/8")?.claim, "cidr=10.0.0.0/8");
  assert.equal(ok("a-uuid", "ipv6=fd00::5")?.claim, "agentID=a-uuid");
  assert.equal(checkIdentityClaims("off", cred, "x", parseAgentIdentifiers("ipv4=1.2.3.4")), null);
});

test("unset: a certificate with SAN IPs binds the identifiers but not the agent id (upstream's default is a random UUID)", () => {
  const cred = certificateCredential({ subject: { CN: "node-1" }, subjectaltname: "DNS:node-1, IP Address:10.0.0.5" }, undefined);
  const auto = (id: string, ids: string) => checkIdentityClaims(undefined, cred, id, parseAgentIdentifiers(ids));
  assert.equal(auto("3f1c2a9e-4b7d-4c1e-9a57-0d6f4c3b2a10", "ipv4=10.0.0.5&host=node-1"), null);
  const refusal = auto("3f1c2a9e-4b7d-4c1e-9a57-0d6f4c3b2a10", "ipv4=10.0.0.7");
  assert.equal(refusal?.claim, "ipv4=10.0.0.7");
  assert.match(refusal!.message, /identity binding is on because the certificate names addresses \(SAN IPs\) \(--identity-binding=off turns it off\)$/);
  // The agent id is not bound here, so the message does not list agent ids as allowed.
  assert.match(refusal!.message, /\(allowed: host=node-1, ip=10\.0\.0\.5\)/);
});

test("unset: a certificate whose SAN IPs are loopback or unspecified names no node, so it is not bound; strict still binds it", () => {
  for (const subjectaltname of ["DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1", "IP Address:127.0.0.2, IP Address:0.0.0.0"]) {
    const cred = certificateCredential({ subject: { CN: "konnectivity-agent" }, subjectaltname }, undefined);
    assert.equal(cred.bindsBy, null, subjectaltname);
    assert.equal(checkIdentityClaims(undefined, cred, "a-uuid", parseAgentIdentifiers("ipv4=10.0.0.5&default-route=true")), null);
    assert.equal(checkIdentityClaims("strict", cred, "a-uuid", parseAgentIdentifiers("ipv4=10.0.0.5"))?.claim, "agentID=a-uuid");
  }
  // One node address among them is enough to make it a node's certificate.
  const node = certificateCredential({ subject: { CN: "node-1" }, subjectaltname: "IP Address:127.0.0.1, IP Address:10.0.0.5" }, undefined);
  assert.equal(node.bindsBy, "the certificate names addresses (SAN IPs)");
  assert.equal(checkIdentityClaims(undefined, node, "a-uuid", parseAgentIdentifiers("ipv4=10.0.0.7"))?.claim, "ipv4=10.0.0.7");
});

test("unset: a certificate with only DNS names or only a CN (a shared agent certificate) is not bound; an identity-map entry binds it", () => {
  for (const subjectaltname of ["DNS:konnectivity-agent", undefined]) {
    const shared = certificateCredential({ subject: { CN: "konnectivity-agent" }, ...(subjectaltname ? { subjectaltname } : {}) }, undefined);
    assert.equal(shared.bindsBy, null);
    assert.equal(checkIdentityClaims(undefined, shared, "3f1c2a9e", parseAgentIdentifiers("ipv4=10.0.0.5&host=node-9")), null);
    assert.equal(checkIdentityClaims("strict", shared, "3f1c2a9e", parseAgentIdentifiers("ipv4=10.0.0.5"))?.claim, "agentID=3f1c2a9e");
  }
  const map = parseIdentityMap(JSON.stringify({ "cn/gateway": { cidr: ["10.244.0.0/16"], agentIds: ["gateway-1"] } }));
  const gateway = certificateCredential({ subject: { CN: "gateway" }, subjectaltname: "DNS:gateway" }, map);
  assert.equal(gateway.bindsBy, "the --agent-identity-map entry cn/gateway");
  assert.equal(checkIdentityClaims(undefined, gateway, "gateway-1", parseAgentIdentifiers("cidr=10.244.0.0/16")), null);
  assert.equal(checkIdentityClaims(undefined, gateway, "gateway-1", parseAgentIdentifiers("cidr=10.0.0.0/8"))?.claim, "cidr=10.0.0.0/8");
  // The operator asked for binding with the entry: the agent id is bound as well.
  assert.equal(checkIdentityClaims(undefined, gateway, "other", parseAgentIdentifiers("cidr=10.244.0.0/16"))?.claim, "agentID=other");
});

test("a token allows its bound node and pod, and the identity map's entries for the account, the node and the pod", () => {
  const map = parseIdentityMap(JSON.stringify({
    "node/n1": { ipv4: "10.0.0.1" },
    "pod/p1": { cidr: ["10.0.0.0/24"] },
    "system:serviceaccount:kube-system:agent": { defaultRoute: true },
  }));
  const user = { username: "system:serviceaccount:kube-system:agent", groups: [], extra: { "authentication.kubernetes.io/node-name": ["n1"], "authentication.kubernetes.io/pod-name": ["p1"] } };
  const cred = tokenCredential(user, map);
  assert.equal(cred.principal, "token:system:serviceaccount:kube-system:agent (node n1, pod p1)");
  assert.equal(checkIdentityClaims(undefined, cred, "p1", parseAgentIdentifiers("host=n1&ipv4=10.0.0.1&cidr=10.0.0.0/24&default-route=true")), null);
  // Without a map entry, a node-bound token is not bound unless strict, and then only to its names.
  const bare = tokenCredential(user, undefined);
  assert.equal(bare.bindsBy, null);
  assert.equal(cred.bindsBy, "the --agent-identity-map entries system:serviceaccount:kube-system:agent, node/n1, pod/p1");
  assert.equal(checkIdentityClaims(undefined, bare, "x", parseAgentIdentifiers("ipv4=10.9.9.9")), null);
  assert.equal(checkIdentityClaims("strict", bare, "n1", parseAgentIdentifiers("host=n1")), null);
  assert.equal(checkIdentityClaims("strict", bare, "n1", parseAgentIdentifiers("ipv4=10.0.0.1"))?.claim, "ipv4=10.0.0.1");
  // A plain user name (an authenticator that only knows names) allows nothing by itself.
  assert.equal(checkIdentityClaims("strict", tokenCredential("someone", undefined), "a", noIdentifiers)?.claim, "agentID=a");
});

test("the identity map refuses unknown keys, fields and malformed addresses, naming them", () => {
  assert.throws(() => parseIdentityMap("node-1:\n  ipv4: [10.0.0.1]\n"), /"node-1" is not node\/<name>/);
  assert.throws(() => parseIdentityMap("node/a:\n  ip: [10.0.0.1]\n"), /unknown field "ip"/);
  assert.throws(() => parseIdentityMap("node/a:\n  ipv4: [10.0.0]\n"), /"10\.0\.0" is not an IPv4 address/);
  assert.throws(() => parseIdentityMap("node/a:\n  cidr: [10.0.0.0/33]\n"), /is not a CIDR/);
  assert.equal(parseIdentityMap("").size, 0);
});
