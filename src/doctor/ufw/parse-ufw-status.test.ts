import { test } from "node:test";
import assert from "node:assert/strict";
import { parseUfwStatus } from "./parse-ufw-status.js";
import { numberUfwRules } from "./number-ufw-rules.js";
import { ufwRuleCommand } from "./fix-ufw.js";
import { DoctorInputError } from "../input-error.js";

const header = "Status: active\n\nTo                         Action      From\n--                         ------      ----\n";

test("an overflowing To column followed by a single space still splits on the action", () => {
  const s = parseUfwStatus(header + "10250,10255/tcp (Kubelet (v6)) DENY IN     Anywhere (v6)             \n");
  const r = s.rules[0]!;
  assert.equal(r.action, "DENY");
  assert.equal(r.direction, "in");
  assert.equal(r.v6, true);
  assert.equal(r.to.app, "Kubelet");
  assert.deepEqual(r.to.ports, [[10250, 10250], [10255, 10255]]);
  assert.equal(r.to.protocol, "tcp");
  assert.equal(r.from.address, null);
});

test("interface, comment, log attribute, address and source ports are all read", () => {
  const s = parseUfwStatus(header +
    "10.224.0.5 6000:6007,10250/tcp on azv0123456789ab ALLOW       10.0.0.0/8 1024:65535/tcp (log-all) # a # in a comment\n");
  const r = s.rules[0]!;
  assert.equal(r.to.address, "10.224.0.5");
  assert.equal(r.to.iface, "azv0123456789ab");
  assert.deepEqual(r.to.ports, [[6000, 6007], [10250, 10250]]);
  assert.equal(r.from.address, "10.0.0.0/8");
  assert.deepEqual(r.from.ports, [[1024, 65535]]);
  assert.equal(r.log, "log-all");
  assert.equal(r.comment, "a # in a comment");
});

test("route rules put the in-interface on From and are FWD", () => {
  const s = parseUfwStatus(header + "10.244.0.0/16 10250/tcp on eth1 ALLOW FWD   Anywhere on eth0          \n");
  assert.equal(s.rules[0]!.direction, "fwd");
  assert.equal(s.rules[0]!.from.iface, "eth0");
  assert.equal(s.rules[0]!.to.iface, "eth1");
});

test("IPv6 addresses are not mistaken for port ranges, and (v6) after the address family is read", () => {
  const s = parseUfwStatus(header + "10250                      DENY        2001:db8:1::/48           \n10250/tcp (v6) on eth0     ALLOW       Anywhere (v6)\n");
  assert.equal(s.rules[0]!.from.address, "2001:db8:1::/48");
  assert.equal(s.rules[0]!.v6, true);
  assert.equal(s.rules[0]!.to.protocol, null);
  assert.equal(s.rules[1]!.v6, true);
  assert.equal(s.rules[1]!.to.iface, "eth0");
});

test("format detection: plain, verbose (defaults), numbered (numbers and (out))", () => {
  assert.equal(parseUfwStatus(header).format, "plain");
  const v = parseUfwStatus("Status: active\nLogging: on (low)\nDefault: reject (incoming), allow (outgoing), disabled (routed)\nNew profiles: skip\n");
  assert.equal(v.format, "verbose");
  assert.deepEqual(v.defaults, { incoming: "reject", outgoing: "allow", routed: "disabled", text: "Default: reject (incoming), allow (outgoing), disabled (routed)" });
  const n = parseUfwStatus("Status: active\n\n     To                         Action      From\n     --                         ------      ----\n[ 1] 1194/udp                   DENY OUT    Anywhere                   (out)\n[12] 22/tcp                     ALLOW IN    Anywhere\n");
  assert.equal(n.format, "numbered");
  assert.deepEqual(n.rules.map((r) => [r.shownNumber, r.direction, r.log]), [[1, "out", null], [12, "in", null]]);
});

test("plain numbering is exact without out/routed rules and a lower bound with them", () => {
  const plain = parseUfwStatus(header + "22/tcp  ALLOW  Anywhere\n10250  DENY  Anywhere\n22/tcp (v6)  ALLOW  Anywhere (v6)\n");
  assert.deepEqual([...numberUfwRules(plain).values()], [{ number: 1, exact: true }, { number: 2, exact: true }, { number: 3, exact: true }]);
  const withOut = parseUfwStatus(header + "22/tcp  ALLOW  Anywhere\n10250  DENY  Anywhere\n\n1194/udp  DENY OUT  Anywhere\n");
  assert.deepEqual(numberUfwRules(withOut).get(withOut.rules[1]!), { number: 2, exact: false });
});

test("rules are spelled back in ufw syntax for `ufw delete <rule>`", () => {
  const s = parseUfwStatus(header + "10250/tcp on eth0          DENY        10.224.0.5                 (log)\nApache Full                ALLOW       Anywhere\n");
  assert.equal(ufwRuleCommand(s.rules[0]!), "deny in on eth0 log from 10.224.0.5 to any port 10250 proto tcp");
  assert.equal(ufwRuleCommand(s.rules[1]!), "allow from any to any app 'Apache Full'");
});

test("input errors name the line and what was expected", () => {
  for (const [text, line] of [["", 1], ["Status: active\nTo  Action  From\n--  ------  ----\n10250/tcp  PERMIT  Anywhere\n", 4], ["Status: inactive\nfoo\n", 2], ["Status: active\nDefault: maybe (incoming), allow (outgoing), deny (routed)\n", 2]] as const) {
    assert.throws(() => parseUfwStatus(text), (e: unknown) => e instanceof DoctorInputError && e.line === line && e.expected !== undefined);
  }
});

test("an address that is not one (300.1.1.1, a /33, a v6 /129) is an input error naming its line; real ones parse", () => {
  const table = "Status: active\n\nTo                         Action      From\n--                         ------      ----\n";
  for (const bad of ["300.1.1.1", "10.0.0.0/33", "fd00::/129", "10.0.0.5/33/tcp", "1:2:3"]) {
    assert.throws(() => parseUfwStatus(`${table}10250/tcp                  ALLOW       ${bad}\n`),
      (e: unknown) => e instanceof DoctorInputError && e.line === 5 && /is not an address or CIDR/.test(e.message), bad);
  }
  for (const good of ["10.224.0.0/16", "10.224.0.7", "fd00::/64", "fd00::7", "10.250.2.0/24/tcp"]) {
    assert.doesNotThrow(() => parseUfwStatus(`${table}10250/tcp                  ALLOW       ${good}\n`), good);
  }
});

test("an address with a protocol and no port (\"10.250.2.0/24/tcp\") keeps address and protocol apart", () => {
  // Real ufw 0.36.2 output: `ufw deny from 10.250.2.0/24 proto tcp`, `... from 10.250.0.5 to 10.9.9.9 proto udp`,
  // `... from 2001:db8::/32 proto tcp`. Found by test/doctor-ufw-kernel.test.ts.
  const n = "Status: active\n\n     To                         Action      From\n     --                         ------      ----\n" +
    "[ 1] Anywhere                   DENY IN     10.250.2.0/24/tcp         \n" +
    "[ 2] 10.9.9.9/udp on eth0       DENY IN     10.250.0.5/udp            \n" +
    "[ 3] Anywhere (v6)              DENY IN     2001:db8::/32/tcp         \n";
  const s = parseUfwStatus(n);
  assert.deepEqual(s.rules.map((r) => [r.from.address, r.to.address, r.to.protocol, r.to.ports, r.v6]), [
    ["10.250.2.0/24", null, "tcp", null, false],
    ["10.250.0.5", "10.9.9.9", "udp", null, false],
    ["2001:db8::/32", null, "tcp", null, true],
  ]);
  assert.equal(s.rules[1]!.to.iface, "eth0");
});
