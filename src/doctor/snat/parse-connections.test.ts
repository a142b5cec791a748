import { test } from "node:test";
import assert from "node:assert/strict";
import { DoctorInputError } from "../input-error.js";
import { parseConnections } from "./parse-connections.js";

test("ss -tan: outbound connections kept; LISTEN and connections accepted on a listening port dropped", () => {
  const text = [
    "State     Recv-Q Send-Q Local Address:Port  Peer Address:Port Process",
    "LISTEN    0      4096         0.0.0.0:10250      0.0.0.0:*",
    "ESTAB     0      0         10.224.0.5:10250  10.224.0.7:51234",
    "ESTAB     0      0         10.224.0.5:40100  20.1.2.3:443",
    "TIME-WAIT 0      0   [::ffff:10.224.0.5]:40102  [::ffff:20.1.2.3]:443",
    "ESTAB     0      0         [fd00::5]:40104  [2603:1020::1]:443   users:((\"agent\",pid=9,fd=3))",
  ].join("\n");
  const p = parseConnections(text);
  assert.equal(p.format, "ss");
  assert.deepEqual(p.connections.map((c) => [c.state, c.destination]), [
    ["ESTABLISHED", "20.1.2.3:443"], ["TIME_WAIT", "20.1.2.3:443"], ["ESTABLISHED", "[2603:1020::1]:443"],
  ]);
});

test("ss with a Netid column (ss -tuan) keeps tcp and udp rows", () => {
  const text = "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port\ntcp   ESTAB  0      0      10.0.0.1:4000 10.0.0.2:443\nudp   ESTAB  0      0      10.0.0.1:5000 10.0.0.3:53\n";
  assert.deepEqual(parseConnections(text).connections.map((c) => [c.protocol, c.destination]), [["tcp", "10.0.0.2:443"], ["udp", "10.0.0.3:53"]]);
});

test("conntrack: the original direction's destination, with and without -o extended", () => {
  const plain = "tcp      6 119 TIME_WAIT src=10.0.0.1 dst=20.1.2.3 sport=40000 dport=443 src=20.1.2.3 dst=52.1.1.1 sport=443 dport=1024 [ASSURED] mark=0 use=1";
  const ext = "ipv4     2 udp      17 27 src=10.0.0.1 dst=168.63.129.16 sport=50001 dport=53 src=168.63.129.16 dst=10.0.0.1 sport=53 dport=50001 mark=0 use=1";
  const p = parseConnections(`${plain}\n${ext}\nconntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.\n`);
  assert.equal(p.format, "conntrack");
  assert.deepEqual(p.connections.map((c) => [c.protocol, c.state, c.destination]), [["tcp", "TIME_WAIT", "20.1.2.3:443"], ["udp", "", "168.63.129.16:53"]]);
});

test("conntrack: after a DNAT (a Service ClusterIP) the destination is the endpoint the reply comes from", () => {
  const line = "tcp      6 110 TIME_WAIT src=10.224.0.5 dst=10.0.0.1 sport=41240 dport=443 src=20.61.99.7 dst=10.224.0.5 sport=443 dport=41240 [ASSURED] mark=0 use=1";
  assert.deepEqual(parseConnections(line).connections.map((c) => [c.source, c.destination, c.sourceNatted]), [["10.224.0.5:41240", "20.61.99.7:443", false]]);
});

test("conntrack: a reply to another address than the source means this device SNATed the flow", () => {
  const natted = "tcp      6 117 TIME_WAIT src=10.224.0.8 dst=10.60.1.2 sport=40112 dport=443 src=10.60.1.2 dst=10.226.0.1 sport=443 dport=1031 [ASSURED] mark=0 use=1";
  assert.equal(parseConnections(natted).connections[0]?.sourceNatted, true);
});

test("text in neither format, or a broken line, is an input error with its line", () => {
  assert.throws(() => parseConnections("hello\nworld"), (e: unknown) => e instanceof DoctorInputError && e.line === 1);
  assert.throws(
    () => parseConnections("State Recv-Q Send-Q Local Address:Port Peer Address:Port\nESTAB 0 0 10.0.0.1:1 10.0.0.2:2\nESTAB zero 0 x y\n"),
    (e: unknown) => e instanceof DoctorInputError && e.line === 3,
  );
});
