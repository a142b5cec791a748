// The agent's answer to DIAL_REQs as upstream's (net.DialTimeout(protocol, address)): only TCP
// (tcp, tcp4, tcp6) is served, an unknown network is refused with Go's text, and every DIAL_REQ takes a connection
// ID, as upstream takes it before dialling.
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import { pino } from "pino";
import { Registry } from "prom-client";
import { dialRequest, type Packet } from "../protocol/index.js";
import { createChannelPair, defaultFlowOptions } from "../tunnel/index.js";
import { AgentMetrics } from "./agent-metrics.js";
import { AgentSession } from "./agent-session.js";
import { DestinationPolicy } from "./destination-policy.js";

test("DIAL_REQ: only TCP (tcp, tcp4, tcp6) is dialled; other networks get Go's unknown-network text, and each request uses a connection ID", async (t) => {
  const listener = net.createServer((s) => s.destroy()).listen(0, "127.0.0.1");
  await once(listener, "listening");
  t.after(() => listener.close());
  const address = `127.0.0.1:${(listener.address() as net.AddressInfo).port}`;
  const [serverSide, agentSide] = createChannelPair();
  const session = new AgentSession(agentSide, {
    agentId: "node-1", serverId: "s1", credit: false, dialTimeoutMs: 2000, flow: defaultFlowOptions,
    policy: DestinationPolicy.allowAll(), metrics: new AgentMetrics(new Registry()), log: pino({ level: "silent" }),
  });
  t.after(() => session.destroy());
  const answers: Packet[] = [];
  serverSide.start({ packet: (p) => answers.push(p), drain: () => {}, close: () => {} });
  const dials: Array<[protocol: string, random: bigint]> = [["", 1n], ["udp", 2n], ["foo", 3n], ["tcp", 4n], ["tcp6", 5n], ["tcp4", 6n]];
  for (const [protocol, random] of dials) {
    serverSide.send(dialRequest(address, random, protocol));
    const deadline = Date.now() + 5000;
    while (!answers.some((p) => p.type === "DIAL_RSP" && p.random === random)) {
      assert.ok(Date.now() < deadline, `no DIAL_RSP for ${random}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  const rsp = (random: bigint) => answers.find((p): p is Extract<Packet, { type: "DIAL_RSP" }> => p.type === "DIAL_RSP" && p.random === random)!;
  assert.deepEqual([rsp(1n).connectID, rsp(1n).error], [0n, "dial: unknown network "]);
  assert.deepEqual([rsp(2n).connectID, rsp(2n).error], [0n, "dial udp: unknown network udp"]);
  assert.deepEqual([rsp(3n).connectID, rsp(3n).error], [0n, "dial foo: unknown network foo"]);
  assert.equal(rsp(4n).error, "");
  assert.equal(rsp(4n).connectID, 4n, "the three refused requests used IDs 1-3, as upstream's would");
  assert.deepEqual([rsp(5n).connectID, rsp(5n).error], [0n, "dial tcp6: address 127.0.0.1: no suitable address found"]);
  assert.deepEqual([rsp(6n).connectID, rsp(6n).error], [6n, ""]);
});
