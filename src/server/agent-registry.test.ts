import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { noIdentifiers, type AgentIdentifiers } from "../protocol/index.js";
import { AgentRegistry, type RegisteredAgent } from "./agent-registry.js";

const agent = (agentId: string, ids: Partial<AgentIdentifiers> = {}, isDraining = false): RegisteredAgent & { isDraining: boolean } =>
  ({ agentId, identifiers: { ...noIdentifiers, ...ids }, isDraining });

describe("AgentRegistry", () => {
  it("tries strategies in flag order and falls through on 'not found'", () => {
    const r = new AgentRegistry(["destHost", "default"]);
    const n1 = agent("n1", { ipv4: ["10.0.0.1"] });
    const other = agent("other");
    r.add(n1);
    r.add(other);
    assert.equal(r.pick("10.0.0.1:10250")?.agent, n1);
    assert.equal(r.pick("10.0.0.1:10250")?.strategy, "destHost");
    assert.equal(r.pick("10.0.0.9:10250")?.strategy, "default");
  });

  it("matches destHost on ipv4, ipv6 (bracketed) and host identities, host case-insensitively", () => {
    const r = new AgentRegistry(["destHost"]);
    const a = agent("a", { ipv6: ["fd00::5"], host: ["node-a"] });
    r.add(a);
    assert.equal(r.pick("[fd00::5]:10250")?.agent, a);
    assert.equal(r.pick("NODE-A:10250")?.agent, a);
    assert.equal(r.pick("10.0.0.1:10250"), undefined);
  });

  it("routes defaultRoute only to agents that advertise it", () => {
    const r = new AgentRegistry(["defaultRoute"]);
    r.add(agent("plain"));
    assert.equal(r.pick("1.2.3.4:443"), undefined);
    const gw = agent("gw", { defaultRoute: true });
    r.add(gw);
    assert.equal(r.pick("1.2.3.4:443")?.agent, gw);
  });

  it("avoids draining agents unless every candidate drains", () => {
    const r = new AgentRegistry(["default"]);
    const draining = agent("d", {}, true);
    const live = agent("l");
    r.add(draining);
    r.add(live);
    for (let i = 0; i < 20; i++) assert.equal(r.pick("x:1")?.agent, live);
    r.remove(live);
    assert.equal(r.pick("x:1")?.agent, draining);
  });

  it("uses an agent's oldest stream and forgets the agent with its last stream", () => {
    const r = new AgentRegistry(["default"]);
    const first = agent("n");
    const second = agent("n");
    r.add(first);
    r.add(second);
    assert.equal(r.agentCount, 1);
    assert.equal(r.pick("x:1")?.agent, first);
    r.remove(first);
    assert.equal(r.pick("x:1")?.agent, second);
    r.remove(second);
    assert.equal(r.agentCount, 0);
    assert.equal(r.pick("x:1"), undefined);
  });

  it("is ready when the first strategy has an agent, as upstream", () => {
    const r = new AgentRegistry(["destHost", "default"]);
    r.add(agent("no-identity"));
    assert.equal(r.isReady, false);
    r.add(agent("node", { ipv4: ["10.0.0.2"] }));
    assert.equal(r.isReady, true);
  });
});
