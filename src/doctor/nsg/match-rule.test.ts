import { test } from "node:test";
import assert from "node:assert/strict";
import ipaddr from "ipaddr.js";
import { matchRule } from "./match-rule.js";
import type { AddressContext } from "./match-rule.js";
import type { NsgFlow, NsgRule } from "./nsg-model.js";

const ctx: AddressContext = { vnets: [ipaddr.parseCIDR("10.224.0.0/12")], asgs: new Map([["asg-a", ["10.224.0.7"]]]) };
const flow: NsgFlow = { protocol: "tcp", source: "10.224.0.7", destination: "10.224.0.5", port: 10250 };
const rule = (over: Partial<NsgRule>): NsgRule => ({
  name: "R", priority: 100, direction: "Inbound", access: "Deny", protocol: "*",
  sourcePrefixes: ["*"], sourceAsgs: [], sourcePorts: ["*"], destinationPrefixes: ["*"], destinationAsgs: [], destinationPorts: ["*"],
  isDefault: false, ...over,
});
const kind = (over: Partial<NsgRule>, f: NsgFlow = flow) => matchRule(rule(over), f, ctx).kind;

test("service tags: VirtualNetwork from --vnet, AzureLoadBalancer is 168.63.129.16, Internet is public outside the VNet", () => {
  assert.equal(kind({ sourcePrefixes: ["VirtualNetwork"] }), "yes");
  assert.equal(kind({ sourcePrefixes: ["virtualnetwork"] }, { ...flow, source: "10.240.0.1" }), "no");
  assert.equal(kind({ sourcePrefixes: ["AzureLoadBalancer"] }), "no");
  assert.equal(kind({ sourcePrefixes: ["AzureLoadBalancer"] }, { ...flow, source: "168.63.129.16" }), "yes");
  assert.equal(kind({ sourcePrefixes: ["Internet"] }), "no");
  assert.equal(kind({ sourcePrefixes: ["Internet"] }, { ...flow, source: "192.168.1.1" }), "no", "private but outside the VNet is not Internet");
  assert.equal(kind({ sourcePrefixes: ["Internet"] }, { ...flow, source: "20.1.2.3" }), "yes");
});

test("another service tag is unknown unless another field rules the flow out", () => {
  assert.equal(kind({ sourcePrefixes: ["Storage.WestEurope"] }), "unknown");
  assert.equal(kind({ sourcePrefixes: ["Storage.WestEurope"], protocol: "Udp" }), "no");
  assert.equal(kind({ sourcePrefixes: ["Storage.WestEurope"], destinationPorts: ["22"] }), "no");
  assert.equal(kind({ sourcePrefixes: ["Storage", "10.224.0.7"] }), "yes", "one certain prefix of a list is enough");
});

test("ASGs: members match, non-members do not, unknown ASGs are unknown", () => {
  assert.equal(kind({ sourcePrefixes: [], sourceAsgs: ["ASG-A"] }), "yes");
  assert.equal(kind({ sourcePrefixes: [], sourceAsgs: ["asg-a"] }, { ...flow, source: "10.224.0.8" }), "no");
  assert.equal(kind({ sourcePrefixes: [], sourceAsgs: ["asg-b"] }), "unknown");
});

test("ports: single, ranges, lists, * and 0-65535", () => {
  assert.equal(kind({ destinationPorts: ["10250"] }), "yes");
  assert.equal(kind({ destinationPorts: ["10000-10249", "10251-11000"] }), "no");
  assert.equal(kind({ destinationPorts: ["0-65535"] }), "yes");
  assert.equal(kind({ destinationPorts: ["10249-10250"] }), "yes");
});

test("source ports decide only when a rule restricts them", () => {
  assert.equal(kind({ sourcePorts: ["0-1023"] }), "no");
  assert.equal(kind({ sourcePorts: ["1024-65535"] }), "yes");
  assert.equal(kind({ sourcePorts: ["1024-40000", "40001-65535"] }), "yes");
  assert.equal(kind({ sourcePorts: ["40000-50000"] }), "unknown");
  assert.equal(kind({ sourcePorts: ["40000-50000"] }, { ...flow, sourcePort: 45000 }), "yes");
  assert.equal(kind({ sourcePorts: ["40000-50000"] }, { ...flow, sourcePort: 55000 }), "no");
});

test("protocols: * covers tcp and udp; Icmp, Esp and Ah cover neither", () => {
  for (const p of ["Icmp", "Esp", "Ah"] as const) assert.equal(kind({ protocol: p }), "no");
  assert.equal(kind({ protocol: "Udp" }, { ...flow, protocol: "udp" }), "yes");
  assert.equal(kind({ protocol: "Tcp" }, { ...flow, protocol: "udp" }), "no");
});

test("addresses: CIDR, single IP, IPv6 against IPv4, 0.0.0.0/0 and Any", () => {
  assert.equal(kind({ destinationPrefixes: ["10.224.0.0/24"] }), "yes");
  assert.equal(kind({ destinationPrefixes: ["10.224.0.6"] }), "no");
  assert.equal(kind({ destinationPrefixes: ["fd00::/8"] }), "no");
  assert.equal(kind({ destinationPrefixes: ["0.0.0.0/0"], sourcePrefixes: ["Any"] }), "yes");
});

test("without --vnet, VirtualNetwork (and so Internet) is unknown for an IPv6 address: the RFC 1918 stand-in holds no IPv6 space", () => {
  const assumed: AddressContext = { ...ctx, vnetsAssumed: true };
  const v6: NsgFlow = { ...flow, source: "fd00:db8:deca::7", destination: "fd00:db8:deca::5" };
  const kindAssumed = (over: Partial<NsgRule>, f: NsgFlow = v6) => matchRule(rule(over), f, assumed);
  const m = kindAssumed({ sourcePrefixes: ["VirtualNetwork"] });
  assert.equal(m.kind, "unknown");
  assert.match(m.kind === "unknown" ? m.needs : "", /^--vnet /);
  assert.equal(kindAssumed({ sourcePrefixes: ["Internet"] }, { ...v6, source: "2603:1030::7" }).kind, "unknown");
  assert.equal(kindAssumed({ sourcePrefixes: ["Internet"] }).kind, "no", "a unique local address is never Internet");
  assert.equal(kindAssumed({ sourcePrefixes: ["VirtualNetwork"], protocol: "Udp" }).kind, "no", "another field still rules it out");
  // IPv4 keeps the stand-in, which the assumptions list.
  assert.equal(kindAssumed({ sourcePrefixes: ["VirtualNetwork"] }, flow).kind, "yes");
  // Given with --vnet, the address space decides, IPv6 as IPv4.
  assert.equal(kind({ sourcePrefixes: ["VirtualNetwork"] }, v6), "no");
  assert.equal(matchRule(rule({ sourcePrefixes: ["VirtualNetwork"] }), v6, { ...ctx, vnets: [...ctx.vnets, ipaddr.parseCIDR("fd00:db8:deca::/48")] }).kind, "yes");
});
