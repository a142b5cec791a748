// The agentidentifiers value as upstream's server reads it (header.GenAgentIdentifiers: the first
// default-route value, through Go's strconv.ParseBool) and as nodetunnel's agent checks its own flag.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAgentIdentifiers } from "./agent-identifiers.js";

describe("agentidentifiers on the server (lenient)", () => {
  const route = (text: string) => parseAgentIdentifiers(text).defaultRoute;
  it("reads default-route from its first value only", () => {
    assert.equal(route("default-route=false&default-route=true"), false);
    assert.equal(route("default-route=true&default-route=false"), true);
  });
  it("takes what Go's ParseBool takes as true, with its case, and anything else as false", () => {
    for (const v of ["1", "t", "T", "TRUE", "true", "True"]) assert.equal(route(`default-route=${v}`), true, v);
    for (const v of ["tRuE", "yes", "", "0", "False"]) assert.equal(route(`default-route=${v}`), false, v);
  });
  it("keeps the address lists and ignores unknown keys", () => {
    assert.deepEqual(parseAgentIdentifiers("ipv4=10.0.0.5&uid=x&cidr=10.0.0.0/24&ipv6=fd00::5"),
      { host: [], ipv4: ["10.0.0.5"], ipv6: ["fd00::5"], cidr: ["10.0.0.0/24"], defaultRoute: false });
  });
});

describe("the agent's own --agent-identifiers (strict)", () => {
  const strict = (text: string) => () => parseAgentIdentifiers(text, { strict: true });
  it("refuses addresses that are not addresses, naming the value", () => {
    assert.throws(strict("ipv6=:"), /"\:" is not an IPv6 address/);
    assert.throws(strict("ipv4=010.0.0.1"), /"010\.0\.0\.1" is not an IPv4 address/);
    assert.throws(strict("ipv4=fd00::1"), /not an IPv4 address/);
  });
  it("refuses a default-route that is not a Go boolean, or given twice", () => {
    assert.throws(strict("default-route=yes"), /default-route must be true or false, not "yes"/);
    assert.throws(strict("default-route=tRuE"), /default-route must be true or false/);
    assert.throws(strict("default-route=true&default-route=false"), /default-route is given twice/);
    assert.equal(parseAgentIdentifiers("default-route=True", { strict: true }).defaultRoute, true);
  });
});
