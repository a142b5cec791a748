import assert from "node:assert/strict";
import { test } from "node:test";
import { startConnectProxy } from "../../../test/helpers/connect-proxy.js";
import { createPki, proxySettingsFromEnv } from "../../transport/index.js";
import { startFakeKubeApiserver } from "../agent-auth/fake-kube-apiserver.js";
import { kubeRequest } from "./kube-request.js";

test("through HTTPS_PROXY the API server is reached by name inside a CONNECT tunnel, its certificate checked against that name", async (t) => {
  const pki = await createPki({ serverNames: ["kube.test"] });
  const api = await startFakeKubeApiserver({ cert: pki.server.cert, key: pki.server.key, clientToken: "agent-token", tokens: {} });
  t.after(() => api.close());
  const apiPort = Number(new URL(api.url).port);
  api.leases.set("kube-system/konnectivity-proxy-server-a", { metadata: { name: "konnectivity-proxy-server-a", namespace: "kube-system", resourceVersion: "1" } });
  const proxy = await startConnectProxy(t, (target) => (target === `kube.test:${apiPort}` ? apiPort : "HTTP/1.1 403 Forbidden\r\n\r\n"));
  // kube.test resolves nowhere: only the proxy knows where it is.
  const config = {
    server: `https://kube.test:${apiPort}`, ca: pki.ca, token: "agent-token", insecureSkipTlsVerify: false, source: "test",
    proxy: proxySettingsFromEnv({ HTTPS_PROXY: proxy.url("svc:pw@").href }),
  };
  const res = await kubeRequest(config, { method: "GET", path: "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200, res.text);
  assert.match(res.text, /konnectivity-proxy-server-a/);
  assert.equal(proxy.requests.length, 1);
  assert.equal(proxy.requests[0]!.target, `kube.test:${apiPort}`);
  assert.match(proxy.requests[0]!.head, /\r\nProxy-Authorization: Basic c3ZjOnB3\r\n/);

  // A certificate for another name is refused inside the tunnel as it would be outside.
  const other = await createPki({ serverNames: ["elsewhere.test"] });
  await assert.rejects(kubeRequest({ ...config, ca: other.ca }, { method: "GET", path: "/version", signal: AbortSignal.timeout(5000) }), /certificate/);
});
