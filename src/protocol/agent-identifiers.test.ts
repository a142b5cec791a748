// The agentidentifiers value as upstream's server reads it (header.GenAgentIdentifiers: the first
// default-route value, through Go's strconv.ParseBool) and as nodetunnel's agent checks its own flag.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { goQueryError, parseAgentIdentifiers } from "./agent-identifiers.js";

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

describe("goQueryError: what Go's url.ParseQuery refuses", () => {
  it("a semicolon in a pair, a % without two hex digits; nothing else", () => {
    assert.equal(goQueryError("host=a;b"), "invalid semicolon separator in query");
    assert.equal(goQueryError("ipv4=10.0.0.5&host=n%zz"), 'invalid URL escape "%zz"');
    assert.equal(goQueryError("host=n%4"), 'invalid URL escape "%4"');
    assert.equal(goQueryError("host=%"), 'invalid URL escape "%"');
    for (const ok of ["", "host=node%2D1&ipv4=10.0.0.5", "a+b=c+d", "&&host=x&", "=x", "host"]) assert.equal(goQueryError(ok), null, ok);
  });
  it("the agent's strict parse refuses them too", () => {
    assert.throws(() => parseAgentIdentifiers("host=n%zz", { strict: true }), /agent identifiers: invalid URL escape "%zz"/);
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
