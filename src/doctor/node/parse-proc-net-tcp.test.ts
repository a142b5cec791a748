import assert from "node:assert/strict";
import { test } from "node:test";
import { listensOn, parseProcNetTcp } from "./parse-proc-net-tcp.js";

// Captured from a lab node: kubelet on 0.0.0.0:10250, agent health on *:8093 (tcp6), one established connection.
const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:280A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0
   1: 050000E0:C8F2 040000E1:1FC4 01 00000000:00000000 02:000A6D2E 00000000     0        0 41240 2 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F9D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41250 1 0000000000000000 100 0 0 10 0
`;
const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F9D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41251 1 0000000000000000 100 0 0 10 0
`;

test("listening sockets are read from /proc/net/tcp with addresses in host byte order", () => {
  assert.deepEqual(parseProcNetTcp(tcp), [{ address: "0.0.0.0", port: 10250 }, { address: "127.0.0.1", port: 8093 }]);
  assert.deepEqual(parseProcNetTcp(tcp6), [{ address: "::", port: 8093 }]);
});

test("a wildcard listener serves the node's address; a loopback one does not", () => {
  const l = parseProcNetTcp(tcp);
  assert.equal(listensOn(l, 10250, "10.224.0.5"), true);
  assert.equal(listensOn(l, 8093, "10.224.0.5"), false);
  assert.equal(listensOn(l, 8093), true);
  assert.equal(listensOn(l, 10255), false);
});

test("text that is not /proc/net/tcp is an input error naming line 1", () => {
  assert.throws(() => parseProcNetTcp("State Recv-Q Send-Q\n"), (e: Error & { line?: number }) => e.line === 1);
});
