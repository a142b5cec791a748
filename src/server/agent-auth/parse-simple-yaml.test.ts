import { test } from "node:test";
import assert from "node:assert/strict";
import { parse as referenceYaml } from "yaml";
import { isTunnelError } from "../../protocol/index.js";
import { parseSimpleYaml } from "./parse-simple-yaml.js";

// Shapes kubectl writes (`kubectl config view --raw`) and people write for identity maps; each is
// checked against the `yaml` package (a dev dependency) as the reference reader.
const documents: Record<string, string> = {
  kubectl: `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
    server: https://10.0.0.1:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: "system:konnectivity-server"
  name: ctx
current-context: ctx
kind: Config
preferences: {}
users:
- name: system:konnectivity-server
  user:
    client-certificate: /etc/kubernetes/pki/k.crt   # a comment
    client-key: '/etc/kubernetes/pki/k''s.key'
`,
  indentedSequences: `clusters:
  - name: a
    cluster:
      server: "https://[fd00::1]:6443"
      insecure-skip-tls-verify: true
  - name: b
    cluster: {server: https://b}
`,
  identityMap: `# node → addresses
node/node-1:
  ipv4: [10.224.0.5, "10.224.0.6"]
  host: node-1
system:serviceaccount:kube-system:konnectivity-agent:
  defaultRoute: false
  agentIds:
    - gw-1
    - gw-2
pod/agent-x: {}
"cn/with # hash":
  cidr: []
`,
  blockScalar: `token: |
  line one
  line two
folded: >-
  a
  b
n: 42
f: 1.5
z: ~
`,
  json: `{"a": [1, {"b": null}], "c": "d"}`,
};

for (const [name, text] of Object.entries(documents)) {
  test(`${name}: same value as the reference YAML reader`, () => {
    assert.deepEqual(parseSimpleYaml(text), referenceYaml(text));
  });
}

test("refuses what it does not understand, with the line", () => {
  for (const [text, why] of [
    ["a: &x 1\nb: *x\n", /line 1: anchors/],
    ["a:\n\tb: 1\n", /line 2: tabs/],
    ["a: 1\na: 2\n", /line 2: duplicate key "a"/],
    ["a: [b, [c]]\n", /nested flow/],
    ["a: 1\n  b: 2\n", /line 2: unexpected indentation/],
    ['a: "unterminated\n', /line 1/],
  ] as const) {
    assert.throws(() => parseSimpleYaml(text), (e) => isTunnelError(e, "INVALID_OPTION") && why.test(e.message), text);
  }
});

test("quotes the offending text, unless told to withhold it (a kubeconfig holds tokens and keys)", () => {
  const text = 'token: "s3cr3t\n';
  assert.throws(() => parseSimpleYaml(text), (e) => isTunnelError(e, "INVALID_OPTION") && e.message.includes('"s3cr3t'));
  assert.throws(() => parseSimpleYaml(text, { withholdText: true }),
    (e) => isTunnelError(e, "INVALID_OPTION") && /^YAML line 1: unterminated .*withheld/.test(e.message) && !e.message.includes("s3cr3t"));
});
