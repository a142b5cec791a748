import assert from "node:assert/strict";
import { it } from "node:test";
import { PacketTally, Tally, collectPackets, collectTallies } from "./packet-tally.js";

it("hands over each segment's packet counts once, then counts from zero again", () => {
  const tally = new PacketTally(["in", "out"] as const);
  tally.add("in", "DATA");
  tally.add("in", "DATA");
  tally.add("out", "CLOSE_REQ");
  const seen: string[] = [];
  tally.flush((s, t, n) => seen.push(`${s} ${t} ${n}`));
  assert.deepEqual(seen.sort(), ["in DATA 2", "out CLOSE_REQ 1"]);

  const again: string[] = [];
  tally.flush((s, t, n) => again.push(`${s} ${t} ${n}`));
  assert.equal(again.length, 0, "nothing is reported twice");
  tally.add("out", "WINDOW_UPDATE");
  tally.flush((s, t, n) => again.push(`${s} ${t} ${n}`));
  assert.deepEqual(again, ["out WINDOW_UPDATE 1"]);
});

it("a Tally gives its sum once", () => {
  const t = new Tally();
  t.add(65536);
  t.add(1);
  assert.equal(t.take(), 65537);
  assert.equal(t.take(), 0);
});

it("feeds prom-client counters at scrape time, each count once", async () => {
  const { Counter, Registry } = await import("prom-client");
  const registry = new Registry();
  const packets = new PacketTally(["in"] as const);
  const toPeer = new Tally();
  new Counter({ name: "p_total", help: "p", labelNames: ["segment", "packet_type"], registers: [registry], collect: collectPackets(packets) });
  new Counter({ name: "b_total", help: "b", labelNames: ["direction"], registers: [registry], collect: collectTallies({ to_peer: toPeer }) });
  packets.add("in", "DATA");
  toPeer.add(100);
  const first = await registry.metrics();
  assert.match(first, /p_total\{segment="in",packet_type="DATA"\} 1\n/);
  assert.match(first, /p_total\{segment="in",packet_type="DIAL_REQ"\} 0\n/, "every type is listed from the first scrape");
  assert.match(first, /b_total\{direction="to_peer"\} 100\n/);
  packets.add("in", "DATA");
  const second = await registry.metrics();
  assert.match(second, /p_total\{segment="in",packet_type="DATA"\} 2\n/);
  assert.match(second, /b_total\{direction="to_peer"\} 100\n/);
});
