// The CLI's logger on a real stack: JSON lines with component and agent ids as fields, named
// tracers (NODETUNNEL_TRACE) that log at debug without lowering the level for everything else,
// and an agent's bearer token that never reaches the log, accepted or rejected.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions } from "../agent/index.js";
import { NodetunnelServer, resolveServerOptions } from "../server/index.js";
import { createPki } from "../transport/index.js";
import type { CliIo } from "./cli-io.js";
import { agentTracers, createLogger, enabledTracers, serverTracers } from "./logger.js";
import { httpConnect } from "../../test/helpers/connect-client.js";

const TOKEN = "eyJhbGciOiJSUzI1NiJ9.good-agent-token.c2lnbmF0dXJl";
const BAD_TOKEN = "eyJhbGciOiJSUzI1NiJ9.stolen-agent-token.c2lnbmF0dXJl";

function fakeIo(env: Record<string, string>): CliIo {
  const sink = { write: () => true, isTTY: false };
  return { stdout: sink, stderr: sink, stdin: Readable.from([]), env, exit: () => {} };
}

/** A logger whose JSON lines are kept in memory. */
function capture(env: Record<string, string>, level = "info") {
  const lines: string[] = [];
  const io = fakeIo(env);
  const log = createLogger(io, { level, destination: { write: (s: string) => void lines.push(s) } });
  const records = () => lines.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { io, log, lines, records };
}

/** A CONNECT through the frontend; `status` is the response's status line. */
async function connectVia(port: number, target: string): Promise<{ status: string; socket: net.Socket }> {
  const { head, socket, rest } = await httpConnect({ port }, target);
  if (rest.length > 0) socket.unshift(rest);
  socket.resume(); // the shared client pauses after the head; these tests read with once("data")
  return { status: head.split("\r\n")[0]!, socket };
}

describe("logs of a running stack with tracers on", () => {
  const cleanups: Array<() => unknown> = [];
  const out = capture({ NODETUNNEL_TRACE: "packets,dials" });

  before(async () => {
    const pki = await createPki();
    const dir = mkdtempSync(join(tmpdir(), "nt-logger-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "token"), TOKEN);
    writeFileSync(join(dir, "bad-token"), BAD_TOKEN);
    const server = await NodetunnelServer.start(
      resolveServerOptions({
        frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }],
        agentListen: { port: 0, host: "127.0.0.1" },
        agentTls: { cert: pki.server.cert, key: pki.server.key },
        tokenAuth: { agentNamespace: "kube-system", agentServiceAccount: "konnectivity-agent", audience: "system:konnectivity-server" },
        proxyStrategies: ["destHost"],
      }),
      {
        log: out.log,
        registry: new Registry(),
        tracers: serverTracers(out.io, out.log),
        authenticateToken: async (token) => {
          if (token !== TOKEN) throw new Error("the token is not valid for this audience");
          return "system:serviceaccount:kube-system:konnectivity-agent";
        },
      },
    );
    cleanups.push(() => server.destroy());
    const echo = net.createServer((s) => s.on("error", () => {}).pipe(s)).listen(0, "127.0.0.1");
    cleanups.push(() => echo.close());
    await new Promise((r) => echo.once("listening", r));
    const echoPort = (echo.address() as net.AddressInfo).port;

    const agent = await NodetunnelAgent.start(
      resolveAgentOptions({
        agentId: "node-1", identifiers: "ipv4=127.0.0.1", proxyServerHost: "127.0.0.1", proxyServerPort: server.addresses.agentPort,
        tls: { ca: pki.ca, alpnProtocols: [] }, serviceAccountTokenPath: join(dir, "token"),
      }),
      { log: out.log, registry: new Registry(), tracers: agentTracers(out.io, out.log) },
    );
    cleanups.push(() => agent.destroy());
    await agent.waitForServers(1, 10_000);
    // An agent with a token the reviewer rejects: refused, and logged without the token.
    const intruder = await NodetunnelAgent.start(
      resolveAgentOptions({
        agentId: "node-2", identifiers: "ipv4=127.0.0.2", proxyServerHost: "127.0.0.1", proxyServerPort: server.addresses.agentPort,
        tls: { ca: pki.ca, alpnProtocols: [] }, serviceAccountTokenPath: join(dir, "bad-token"),
      }),
      { log: out.log, registry: new Registry() },
    );
    cleanups.push(() => intruder.destroy());
    for (let i = 0; i < 100 && !out.lines.some((l) => l.includes("agent connection refused")); i++) await new Promise((r) => setTimeout(r, 20));

    const port = server.addresses.frontends[0]!.port!;
    const ok = await connectVia(port, `127.0.0.1:${echoPort}`);
    assert.match(ok.status, /^HTTP\/1\.1 200/);
    ok.socket.write("ping");
    await new Promise((r) => ok.socket.once("data", r));
    ok.socket.destroy();
    const failed = await connectVia(port, "127.0.0.9:10250");
    failed.socket.destroy();
    for (let i = 0; i < 100 && server.proxy.establishedCount > 0; i++) await new Promise((r) => setTimeout(r, 20));
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("writes JSON lines with component and agentId as fields", () => {
    const records = out.records();
    assert.ok(records.length > 5);
    for (const r of records) {
      assert.equal(typeof r.level, "number");
      assert.equal(typeof r.time, "number");
      assert.equal(typeof r.msg, "string");
    }
    const connected = records.find((r) => r.msg === "agent connected");
    assert.ok(connected, "the server logs the agent's arrival");
    assert.equal(connected.component, "server");
    assert.equal(connected.agentId, "node-1");
    assert.equal(connected.authenticatedAs, "token:system:serviceaccount:kube-system:konnectivity-agent");
    const agentSide = records.find((r) => r.msg === "connected to server");
    assert.ok(agentSide);
    assert.equal(agentSide.component, "agent");
    assert.equal(agentSide.agentId, "node-1");
    const refused = records.find((r) => r.msg === "agent connection refused");
    assert.ok(refused, "the rejected token is logged as a refusal");
    assert.equal(refused.component, "agent-service");
    assert.match(String(refused.reason), /token rejected: the token is not valid/);
  });

  it("never logs a token or an authorization header", () => {
    const all = out.lines.join("");
    assert.ok(!all.includes(TOKEN), "the accepted token is not in the log");
    assert.ok(!all.includes(BAD_TOKEN), "the rejected token is not in the log");
    assert.ok(!all.includes("good-agent-token") && !all.includes("stolen-agent-token"));
    assert.ok(!/bearer /i.test(all), "no Bearer credential in the log");
    assert.ok(!/"authorization"/i.test(all), "no authorization field in the log");
  });

  it("traces packets (type and ids, no payload) and dials at debug, and nothing else at debug", () => {
    const records = out.records();
    const packets = records.filter((r) => r.tracer === "packets" && r.component === "server");
    assert.ok(packets.every((r) => r.level === 20 && r.agentId === "node-1"));
    const dialRsp = packets.find((r) => r.type === "DIAL_RSP");
    assert.ok(dialRsp, "the DIAL_RSP is traced");
    assert.match(String(dialRsp.connectID), /^\d+$/);
    const data = packets.find((r) => r.type === "DATA");
    assert.ok(data, "DATA is traced");
    assert.equal(data.bytes, 4);
    assert.equal(data.connectID, dialRsp.connectID);
    assert.ok(!out.lines.join("").includes("cGluZw"), "no payload (base64 of 'ping')");
    assert.ok(packets.some((r) => r.type === "CLOSE_RSP"));

    const dials = records.filter((r) => r.tracer === "dials" && r.component === "server");
    const start = dials.find((r) => r.msg === "dial start");
    assert.ok(start);
    assert.equal(start.agentId, "node-1");
    assert.equal(start.strategy, "destHost");
    const established = dials.find((r) => r.msg === "dial end" && r.outcome === "established");
    assert.ok(established);
    assert.equal(established.dialID, start.dialID);
    assert.equal(typeof established.ms, "number");
    const failed = dials.find((r) => r.msg === "dial end" && r.outcome === "failed");
    assert.ok(failed);
    assert.equal(failed.address, "127.0.0.9:10250");
    assert.equal(failed.reason, "no_agent");
    // The agent's tracers: its side of the same packets, and its dial to the destination.
    const agentPackets = records.filter((r) => r.tracer === "packets" && r.component === "agent");
    assert.ok(agentPackets.every((r) => r.level === 20 && r.agentId === "node-1" && typeof r.serverId === "string"));
    const dialReq = agentPackets.find((r) => r.msg === "packet from server" && r.type === "DIAL_REQ");
    assert.ok(dialReq, "the agent traces the DIAL_REQ it received");
    assert.equal(dialReq.dialID, start.dialID);
    const sentRsp = agentPackets.find((r) => r.msg === "packet to server" && r.type === "DIAL_RSP");
    assert.ok(sentRsp, "the agent traces the DIAL_RSP it sent");
    assert.equal(sentRsp.connectID, dialRsp.connectID);
    const agentDials = records.filter((r) => r.tracer === "dials" && r.component === "agent");
    const agentStart = agentDials.find((r) => r.msg === "dial start");
    assert.ok(agentStart);
    assert.equal(agentStart.dialID, start.dialID);
    assert.equal(agentStart.address, start.address);
    const agentEnd = agentDials.find((r) => r.msg === "dial end" && r.dialID === start.dialID);
    assert.ok(agentEnd);
    assert.equal(agentEnd.outcome, "established");
    assert.equal(agentEnd.connectID, dialRsp.connectID);
    assert.equal(typeof agentEnd.ms, "number");
    // The level stays info: the only debug lines are the tracers'.
    assert.deepEqual(records.filter((r) => r.level === 20 && r.tracer === undefined).map((r) => r.msg), []);
  });
});

describe("tracer selection", () => {
  it("is off by default: no tracer loggers at all", () => {
    const { io, log, records } = capture({});
    const t = serverTracers(io, log);
    assert.equal(t.packets, undefined);
    assert.equal(t.dials, undefined);
    assert.deepEqual(records(), []);
  });

  it("turns on every tracer with 'all' and warns about unknown names", () => {
    const { io, log, records } = capture({ NODETUNNEL_TRACE: "all, bogus" });
    assert.deepEqual([...enabledTracers(io, log)].sort(), ["dials", "packets"]);
    const warn = records().find((r) => r.msg === "NODETUNNEL_TRACE names an unknown tracer");
    assert.ok(warn);
    assert.equal(warn.tracer, "bogus");
  });

  it("redacts authorization and token fields should a caller ever log them", () => {
    const { log, lines } = capture({});
    log.info({ headers: { authorization: `Bearer ${TOKEN}` }, metadata: { authorization: `Bearer ${TOKEN}` }, token: TOKEN }, "request");
    const text = lines.join("");
    assert.ok(!text.includes(TOKEN));
    assert.equal((text.match(/\[redacted\]/g) ?? []).length, 3);
  });

  it("takes its level from NODETUNNEL_LOG_LEVEL", () => {
    const { log } = capture({ NODETUNNEL_LOG_LEVEL: "warn" });
    assert.equal(createLogger(fakeIo({ NODETUNNEL_LOG_LEVEL: "warn" }), { destination: { write: () => {} } }).level, "warn");
    assert.equal(log.level, "info", "an explicit level wins over the environment");
  });
});
