import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createPki } from "../../transport/index.js";
import { startFakeKubeApiserver, type FakeKubeApiserver } from "../agent-auth/fake-kube-apiserver.js";
import type { KubeClientConfig } from "../agent-auth/kube-client-config.js";
import { LeaseController, isLeaseValid, leaseName, microTime, parseLeaseLabels } from "./lease-controller.js";

const log = pino({ level: "silent" });
const labels = { "k8s-app": "konnectivity-server" };

describe("LeaseController against an API server that keeps leases", () => {
  let api: FakeKubeApiserver;
  let config: KubeClientConfig;
  before(async () => {
    const pki = await createPki({ serverIps: ["127.0.0.1"] });
    api = await startFakeKubeApiserver({ cert: pki.server.cert, key: pki.server.key, clientToken: "server-token", tokens: {} });
    config = { server: api.url, ca: pki.ca, token: "server-token", insecureSkipTlsVerify: false, source: "test" };
  });
  after(() => api.close());

  const controller = (serverId: string, now: () => number = Date.now, registry = new Registry()) =>
    new LeaseController(config, { serverId, namespace: "kube-system", labels }, log, registry, now);

  it("creates konnectivity-proxy-server-<id> with upstream's fields, then renews it in place", async () => {
    let t = Date.parse("2026-11-27T08:00:00.123Z");
    const c = controller("s1", () => t);
    await c.renew();
    const created = api.leases.get("kube-system/konnectivity-proxy-server-s1");
    assert.ok(created, "created");
    assert.deepEqual(created.metadata.labels, labels);
    assert.deepEqual(created.spec, { holderIdentity: "s1", leaseDurationSeconds: 30, renewTime: "2026-11-27T08:00:00.123000Z" });
    t += 15_000;
    await c.renew();
    const renewed = api.leases.get("kube-system/konnectivity-proxy-server-s1")!;
    assert.equal(renewed.spec?.renewTime, "2026-11-27T08:00:15.123000Z");
    assert.notEqual(renewed.metadata.resourceVersion, created.metadata.resourceVersion);
    assert.equal(api.leases.size, 1);
  });

  it("reads the lease again when someone else changed it, and creates it again when it was deleted", async () => {
    const c = controller("s2");
    await c.renew();
    const key = "kube-system/konnectivity-proxy-server-s2";
    const stored = api.leases.get(key)!;
    // Another writer bumps the version (an operator adding a label): our next PUT conflicts.
    api.leases.set(key, { ...stored, metadata: { ...stored.metadata, resourceVersion: "999999", labels: { ...labels, extra: "kept" } } });
    await c.renew();
    assert.deepEqual(api.leases.get(key)!.metadata.labels, { ...labels, extra: "kept" }, "their label is kept, ours are set");
    assert.notEqual(api.leases.get(key)!.metadata.resourceVersion, "999999");
    api.leases.delete(key);
    await c.renew();
    assert.equal(api.leases.get(key)?.spec?.holderIdentity, "s2");
  });

  it("deletes only expired leases under its labels, and counts them", async () => {
    api.leases.clear(); // the earlier tests' leases carry fixed times, long expired by now
    const now = Date.now();
    const put = (name: string, renewedAgoMs: number, l: Record<string, string> = labels) =>
      api.leases.set(`kube-system/${name}`, {
        metadata: { name, namespace: "kube-system", resourceVersion: "7", labels: l },
        spec: { holderIdentity: name, leaseDurationSeconds: 30, renewTime: microTime(new Date(now - renewedAgoMs)) },
      });
    put("expired", 31_000);
    put("fresh", 5_000);
    put("other-labels", 60_000, { app: "else" });
    api.leases.set("kube-system/no-times", { metadata: { name: "no-times", namespace: "kube-system", resourceVersion: "7", labels }, spec: { leaseDurationSeconds: 30 } });
    const registry = new Registry();
    await controller("gc", () => now, registry).collect();
    assert.equal(api.leases.has("kube-system/expired"), false);
    assert.equal(api.leases.has("kube-system/no-times"), false, "a lease with neither renew nor acquire time is expired, as upstream");
    assert.equal(api.leases.has("kube-system/fresh"), true);
    assert.equal(api.leases.has("kube-system/other-labels"), true);
    const text = await registry.metrics();
    assert.match(text, /konnectivity_network_proxy_server_culled_leases_count 2/);
    assert.match(text, /konnectivity_network_proxy_server_lease_delete_total\{http_status_code="200",reason=""\} 2/);
    assert.match(text, /konnectivity_network_proxy_server_lease_list_total\{http_status_code="200",reason=""\} 1/);
    for (const n of ["fresh", "other-labels"]) api.leases.delete(`kube-system/${n}`);
  });

  it("keeps a lease renewed between its list and its delete (the resourceVersion precondition)", async () => {
    const now = Date.now();
    const name = "raced";
    api.leases.set(`kube-system/${name}`, {
      metadata: { name, namespace: "kube-system", resourceVersion: "5", labels },
      spec: { holderIdentity: name, leaseDurationSeconds: 30, renewTime: microTime(new Date(now - 40_000)) },
    });
    // The holder renews right after the list: wrap the map's get so the list sees the old copy.
    const c = controller("gc2", () => now);
    const list = api.leases.get(`kube-system/${name}`)!;
    const realValues = api.leases.values.bind(api.leases);
    api.leases.values = () => {
      const out = [...realValues()].map((l) => ({ ...l }));
      api.leases.set(`kube-system/${name}`, { ...list, metadata: { ...list.metadata, resourceVersion: "6" } });
      return out.values();
    };
    try {
      await c.collect();
    } finally {
      api.leases.values = realValues;
    }
    assert.equal(api.leases.has(`kube-system/${name}`), true, "not deleted: it changed since the list");
    api.leases.delete(`kube-system/${name}`);
  });

  it("retries soon after a failed renewal and says why in the log", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (l: string) => void lines.push(l) });
    const c = new LeaseController(config, { serverId: "s3", namespace: "kube-system", labels, renewIntervalMs: 60_000 }, logger, new Registry());
    api.behaviour = { kind: "status", code: 403 };
    c.start();
    try {
      for (let i = 0; i < 100 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.match(lines[0] ?? "", /could not renew this server's lease/);
      assert.match(lines[0] ?? "", /HTTP 403 \(may the server's identity get, create and update leases/);
      api.behaviour = { kind: "normal" };
      // The first retry comes after 200 ms, not after the 60 s interval.
      for (let i = 0; i < 100 && !api.leases.has("kube-system/konnectivity-proxy-server-s3"); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(api.leases.has("kube-system/konnectivity-proxy-server-s3"));
    } finally {
      c.stop();
      api.behaviour = { kind: "normal" };
    }
  });
});

describe("lease helpers", () => {
  it("name the lease as upstream does and parse --lease-label", () => {
    assert.equal(leaseName("abc"), "konnectivity-proxy-server-abc");
    assert.deepEqual(parseLeaseLabels("k8s-app=konnectivity-server, tier=control-plane"), { "k8s-app": "konnectivity-server", tier: "control-plane" });
    assert.throws(() => parseLeaseLabels("k8s-app"), /--lease-label: "k8s-app" is not key=value/);
    assert.throws(() => parseLeaseLabels(""), /--lease-label must give at least one key=value/);
  });
  it("judge a lease valid while renewTime (or acquireTime) plus its duration is ahead", () => {
    const at = Date.parse("2026-11-27T08:00:00Z");
    const lease = (spec: Record<string, unknown>) => ({ metadata: { name: "x" }, spec });
    assert.equal(isLeaseValid(lease({ leaseDurationSeconds: 30, renewTime: "2026-11-27T08:00:00.000000Z" }), at + 29_999), true);
    assert.equal(isLeaseValid(lease({ leaseDurationSeconds: 30, renewTime: "2026-11-27T08:00:00.000000Z" }), at + 30_000), false);
    assert.equal(isLeaseValid(lease({ leaseDurationSeconds: 30, acquireTime: "2026-11-27T08:00:00.000000Z" }), at + 1000), true);
    assert.equal(isLeaseValid(lease({ leaseDurationSeconds: 30 }), at), false);
  });
});
