import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hostIdentities, noIdentifiers, type AgentIdentifiers } from "../protocol/index.js";
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

  it("moves an agent's dials to its other stream when the one in use drains", () => {
    const r = new AgentRegistry(["destHost"]);
    const older = agent("n", { ipv4: ["10.0.0.3"] });
    const newer = agent("n", { ipv4: ["10.0.0.3"] });
    r.add(older);
    r.add(newer);
    assert.equal(r.pick("10.0.0.3:10250")?.agent, older);
    older.isDraining = true;
    r.drained(older);
    assert.equal(r.pick("10.0.0.3:10250")?.agent, newer);
    newer.isDraining = true;
    r.drained(newer);
    assert.equal(r.pick("10.0.0.3:10250")?.agent, older, "all drain: the oldest stream");
  });

  it("routes each host to the streams that claim it, whichever stream of the agent id is in use", () => {
    const r = new AgentRegistry(["destHost", "defaultRoute"]);
    const old = agent("n", { ipv4: ["10.0.0.4"], defaultRoute: true });
    const renamed = agent("n", { ipv4: ["10.0.0.5"] });
    r.add(old);
    r.add(renamed);
    assert.equal(r.pick("10.0.0.5:10250")?.agent, renamed, "the newer stream's own address, while the older is in use");
    old.isDraining = true;
    r.drained(old);
    assert.equal(r.pick("10.0.0.4:10250")?.agent, old, "a draining stream still serves what only it claims");
    assert.equal(r.pick("10.0.0.5:10250")?.agent, renamed);
    assert.equal(r.countFor("defaultRoute"), 0);
    assert.equal(r.countFor("destHost"), 1);
    r.remove(old);
    assert.equal(r.pick("10.0.0.4:10250"), undefined);
  });

  it("a stream that joins another agent's id first does not take that agent's address away (found by an ops audit)", () => {
    // An agent with another node's credential announces its own address under node-a's id, before
    // node-a (re)connects: node-a's own address must still route to node-a.
    const r = new AgentRegistry(["destHost"]);
    const impostor = agent("node-a", { ipv4: ["127.0.1.2"] });
    const real = agent("node-a", { ipv4: ["127.0.1.1"] });
    r.add(impostor);
    r.add(real);
    assert.equal(r.pick("127.0.1.1:10250")?.agent, real);
    assert.equal(r.pick("127.0.1.2:10250")?.agent, impostor);
  });

  // The indexes against the rule they implement, written as a scan of every agent (the registry's
  // first form), over random sequences of streams coming, draining and going.
  it("agrees with a scan of every agent over random connects, drains and disconnects", () => {
    type Stream = RegisteredAgent & { isDraining: boolean };
    const hosts = ["10.0.0.1", "10.0.0.2", "fd00::1", "node-a", "Node-B"];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const preferred = (streams: readonly Stream[]) => streams.find((s) => !s.isDraining) ?? streams[0]!;
    const claims = (s: Stream, host?: string) => {
      const ids = hostIdentities(s.identifiers).map((h) => h.toLowerCase());
      return host === undefined ? ids.length > 0 : ids.includes(host.toLowerCase());
    };
    // default and defaultRoute: each agent id's preferred stream. destHost: every stream that claims
    // the host (upstream's per-identifier lists); its count is the agent ids with such a stream.
    const scan = (live: Map<string, Stream[]>, strategy: "default" | "defaultRoute" | "destHost", host?: string): Stream[] => {
      if (strategy === "default") return [...live.values()].map(preferred);
      if (strategy === "defaultRoute") return [...live.values()].map(preferred).filter((s) => s.identifiers.defaultRoute);
      if (host === undefined) return [...live.values()].filter((ss) => ss.some((s) => claims(s))).map((ss) => ss.find((s) => claims(s))!);
      return [...live.values()].flat().filter((s) => claims(s, host));
    };
    const registries = {
      default: new AgentRegistry<Stream>(["default"]),
      defaultRoute: new AgentRegistry<Stream>(["defaultRoute"]),
      destHost: new AgentRegistry<Stream>(["destHost"]),
    };
    const live = new Map<string, Stream[]>();
    for (let step = 0; step < 3000; step++) {
      const op = random(10);
      const id = `a${random(12)}`;
      const streams = live.get(id) ?? [];
      if (op < 5) {
        const claimed = hosts.filter(() => random(3) === 0);
        const s = agent(id, {
          ipv4: claimed.filter((h) => h.startsWith("10.")),
          ipv6: claimed.filter((h) => h.includes(":")),
          host: claimed.filter((h) => /^node/i.test(h)),
          defaultRoute: random(4) === 0,
        });
        live.set(id, [...streams, s]);
        for (const r of Object.values(registries)) r.add(s);
      } else if (op < 7 && streams.length > 0) {
        const s = streams[random(streams.length)]!;
        s.isDraining = true;
        for (const r of Object.values(registries)) r.drained(s);
      } else if (streams.length > 0) {
        const s = streams[random(streams.length)]!;
        const rest = streams.filter((x) => x !== s);
        if (rest.length > 0) live.set(id, rest);
        else live.delete(id);
        for (const r of Object.values(registries)) r.remove(s);
      }
      for (const [strategy, r] of Object.entries(registries) as Array<[keyof typeof registries, AgentRegistry<Stream>]>) {
        assert.equal(r.countFor(strategy), scan(live, strategy).length, `step ${step}: count for ${strategy}`);
        assert.equal(r.isReady, scan(live, strategy).length > 0);
        for (const host of strategy === "destHost" ? [...hosts, "NODE-A", "10.9.9.9"] : ["x"]) {
          const expected = scan(live, strategy, host);
          const picked = r.pick(host.includes(":") ? `[${host}]:10250` : `${host}:10250`)?.agent;
          if (expected.length === 0) {
            assert.equal(picked, undefined, `step ${step}: ${strategy} ${host}`);
            continue;
          }
          assert.ok(picked && expected.includes(picked), `step ${step}: ${strategy} ${host} picked a stream the rule does not allow`);
          if (expected.some((s) => !s.isDraining)) assert.equal(picked.isDraining, false, `step ${step}: picked a draining stream`);
        }
      }
    }
  });
});
