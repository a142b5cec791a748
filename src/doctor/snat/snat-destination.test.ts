import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { takesSnatPort } from "./snat-destination.js";

describe("takesSnatPort", () => {
  const takes = takesSnatPort();

  it("counts public destinations, IPv4 and IPv6", () => {
    for (const d of ["20.50.1.2:443", "52.174.10.20:80", "[2603:1020::1]:443", "[::ffff:20.50.1.2]:443", "100.128.0.1:443", "172.32.0.1:443", "11.0.0.1:443"]) {
      assert.equal(takes(d), true, d);
    }
  });

  it("does not count private, shared, loopback, link-local, Azure host and IPv6 ULA/link-local destinations", () => {
    for (const d of [
      "10.96.0.1:443", "10.224.0.9:10250", "172.16.0.1:443", "172.31.255.255:1", "192.168.1.1:53",
      "100.64.0.1:443", "100.127.255.254:443", "127.0.0.1:8094", "169.254.169.254:80", "168.63.129.16:53",
      "[::1]:443", "[fd00::1]:443", "[fc00::5]:10250", "[fe80::1]:179", "[::ffff:10.0.0.1]:443",
    ]) {
      assert.equal(takes(d), false, d);
    }
  });

  it("adds the --vnet ranges (a VNet with public addresses) to those reached without SNAT", () => {
    const withVnet = takesSnatPort(["20.50.0.0/16", "2603:1020::/32"]);
    assert.equal(withVnet("20.50.1.2:443"), false);
    assert.equal(withVnet("[2603:1020::1]:443"), false);
    assert.equal(withVnet("20.51.1.2:443"), true);
  });

  it("counts what is not an address rather than hide it", () => {
    assert.equal(takes("*:*"), true);
    assert.equal(takes("example.com:443"), true);
  });
});
