import { test } from "node:test";
import assert from "node:assert/strict";
import { extractContext } from "./extract-context.js";

test("Go dial errors give host and port, IPv6 in brackets too", () => {
  const v4 = extractContext("dial tcp 10.224.0.5:10250: i/o timeout");
  assert.deepEqual([v4.host, v4.port, v4.leg], ["10.224.0.5", 10250, "destination"]);
  const v6 = extractContext("dial tcp [fd00:10::5]:10250: connect: connection refused");
  assert.deepEqual([v6.host, v6.port], ["fd00:10::5", 10250]);
});

test("the kubelet URL gives the node name; the dial address wins for the host", () => {
  const c = extractContext('Get "https://aks-np-0001:10250/containerLogs/ns/p/c": dial tcp 10.1.2.3:10250: i/o timeout');
  assert.deepEqual([c.nodeName, c.host, c.port], ["aks-np-0001", "10.1.2.3", 10250]);
});

test("an agent's dial to the server on 443 is the server leg; a webhook on 443 is not", () => {
  assert.equal(extractContext('"cannot connect once" err="rpc error: ... dial tcp 20.1.2.3:443: i/o timeout"').leg, "server");
  assert.equal(extractContext('failed calling webhook "x": Post "https://svc.ns.svc:443/": dial tcp 10.0.0.9:443: i/o timeout').leg, "destination");
});

test("HTTP CONNECT statuses from kube-apiserver and curl", () => {
  assert.equal(extractContext("proxy error from 127.0.0.1:8131 while dialing 10.0.0.5:10250, code 504: 504 Gateway Timeout").httpCode, 504);
  assert.equal(extractContext("curl: (56) CONNECT tunnel failed, response 502").httpCode, 502);
  assert.equal(extractContext("curl: (56) Received HTTP code 500 from proxy after CONNECT").httpCode, 500);
  assert.equal(extractContext("proxy error from 127.0.0.1:8131 while dialing 10.0.0.5:10250, code 502").host, "10.0.0.5", "the dialled address, not the proxy");
});

test("DNS names from Go and curl", () => {
  assert.equal(extractContext("dial tcp: lookup node-1 on 10.0.0.10:53: no such host").host, "node-1");
  assert.equal(extractContext("curl: (6) Could not resolve host: example.invalid").host, "example.invalid");
});
