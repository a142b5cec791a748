// An IPv6 flow through doctor nsg: AllowVnetInBound (65000) lets intra-VNet traffic in, IPv6 too, so
// without --vnet (the RFC 1918 stand-in has no IPv6 space) the verdict is indeterminate, not blocked
// by DenyAllInBound; and an IPv6 endpoint is written [address]:port wherever the result names one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkNsg } from "../src/doctor/nsg/index.js";
import { DoctorInputError } from "../src/doctor/input-error.js";

const file = "a2-aks-nic.json";
const destNic = { label: file, text: readFileSync(join(import.meta.dirname, "fixtures/doctor/nsg", file), "utf8") };
const flow = { source: "fd00:db8:deca::7", destination: "fd00:db8:deca::5", port: 10250, protocol: "tcp" as const, asgs: {} };

test("an IPv6 flow without --vnet is indeterminate at AllowVnetInBound, asking for --vnet, and proposes no rule", () => {
  const r = checkNsg({ destNic }, { ...flow, vnets: [] });
  assert.deepEqual([r.status, r.verdict, r.effect], ["indeterminate", "indeterminate", null]);
  assert.deepEqual(r.decidedBy && [r.decidedBy["rule"], r.decidedBy["priority"], r.decidedBy["access"]], ["AllowVnetInBound", 65000, "Allow"]);
  assert.match(r.summary, /give --vnet CIDR/);
  assert.deepEqual(r.fixes, []);
});

test("an IPv6 endpoint is [address]:port in every text of the result, and never address:port", () => {
  for (const vnets of [[], ["fd00:db8:deca::/48"], ["fd00:db8:beef::/48"]]) {
    const r = checkNsg({ destNic }, { ...flow, vnets });
    const text = JSON.stringify([r.summary, r.details, r.fixes.map((f) => f.description), r.assumptions]);
    assert.doesNotMatch(text, /(?<!\[)fd00:db8:deca::5:10250/, text);
    assert.match(r.summary, /\[fd00:db8:deca::5\]:10250/);
  }
});

test("--source and --destination of different families are an input error (exit 2), not a verdict; a mapped IPv4 address is IPv4", () => {
  assert.throws(() => checkNsg({ destNic }, { ...flow, destination: "10.224.0.5", vnets: [] }), (e: unknown) =>
    e instanceof DoctorInputError && /--source fd00:db8:deca::7 is IPv6 and --destination 10\.224\.0\.5 is IPv4/.test(e.message));
  const mapped = checkNsg({ destNic }, { ...flow, source: "::ffff:10.224.0.7", destination: "10.224.0.5", vnets: [] });
  const plain = checkNsg({ destNic }, { ...flow, source: "10.224.0.7", destination: "10.224.0.5", vnets: [] });
  assert.deepEqual(mapped.flow, plain.flow, "the flow is the IPv4 one");
  assert.deepEqual([mapped.verdict, mapped.fixes], [plain.verdict, plain.fixes], "fix commands name 10.224.0.7, not ::ffff:10.224.0.7");
});
