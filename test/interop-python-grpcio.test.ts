// Debian's python3-grpcio (gRPC's C core, a second independent implementation) as kube-apiserver
// against our gRPC frontend over its Unix socket: DIAL_REQ → DIAL_RSP, DATA echoed, CLOSE_REQ →
// CLOSE_RSP, then the stream ends OK. Packets are encoded by hand in Python (proto3 wire format),
// so neither our codec nor protobufjs is involved on that side.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { http2Implementations } from "../src/transport/index.js";
import { sharedPki, startAgentAgainst, startDestination, startStack, tempDir } from "./helpers/stack.js";
import { httpConnect, readUntil } from "./helpers/connect-client.js";
import { spawnJsonLines } from "./helpers/json-lines-child.js";
import { waitFor } from "./helpers/wait.js";

const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

// Proto3 wire format by hand (and a client's request outbox), shared by the Python peers: neither
// our codec nor protobufjs is involved on their side.
const packetHelpers = String.raw`def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field(num, wire, payload):
    key = varint((num << 3) | wire)
    return key + (varint(payload) if wire == 0 else varint(len(payload)) + payload)

def packet(ptype, sub_num, sub):
    head = field(1, 0, ptype) if ptype else b""
    return head + field(sub_num, 2, sub)

# A client's request stream: packets put in the outbox are sent in order; None ends the stream.
import queue
outbox = queue.Queue()
def requests():
    while True:
        item = outbox.get()
        if item is None:
            return
        yield item

def parse(buf):
    fields, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = read_varint(buf, i)
        else:
            ln, i = read_varint(buf, i)
            val, i = buf[i:i + ln], i + ln
        fields[num] = val
    return fields

def read_varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]; i += 1
        result |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return result, i

`;

const script = String.raw`
import json, sys, grpc

${packetHelpers}
def describe(raw):
    f = parse(raw)
    ptype = f.get(1, 0)
    sub = parse(f.get({1: 3, 3: 6, 4: 4}.get(ptype, 0), b"")) if ptype in (1, 3, 4) else {}
    out = {"type": ptype}
    for k, v in sub.items():
        out[str(k)] = v.decode() if isinstance(v, bytes) else v
    return out

path, address = sys.argv[1], sys.argv[2]
channel = grpc.insecure_channel("unix://" + path)
proxy = channel.stream_stream("/ProxyService/Proxy")
responses = proxy(requests(), timeout=10)
seen = []
outbox.put(packet(0, 2, field(1, 2, b"tcp") + field(2, 2, address.encode()) + field(3, 0, 424242)))
rsp = describe(next(responses)); seen.append(rsp)
cid = rsp.get("2", 0)
outbox.put(packet(4, 4, field(1, 0, cid) + field(3, 2, b"hello from grpcio")))
seen.append(describe(next(responses)))
outbox.put(packet(2, 5, field(1, 0, cid)))
seen.append(describe(next(responses)))
outbox.put(None)
rest = [describe(r) for r in responses]
print(json.dumps({"seen": seen, "rest": rest, "code": str(responses.code())}))
`;

const agentScript = String.raw`
import json, sys, queue, grpc

${packetHelpers}
ca, cert, key = [open(p, "rb").read() for p in sys.argv[1:4]]
port = sys.argv[4]
creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
channel = grpc.secure_channel("127.0.0.1:" + port, creds, options=[("grpc.ssl_target_name_override", "localhost")])
connect = channel.stream_stream("/AgentService/Connect")
responses = connect(requests(), metadata=(("agentid", "py-agent"), ("agentidentifiers", "host=py-node")))
headers = dict(responses.initial_metadata())
print(json.dumps({"event": "connected", "serverid": headers.get("serverid")}), flush=True)
next_id, echoed = 1, 0
for raw in responses:
    f = parse(raw)
    ptype = f.get(1, 0)
    if ptype == 0:  # DIAL_REQ: answer as if the dial succeeded; this agent echoes
        random = parse(f.get(2, b"")).get(3, 0)
        outbox.put(packet(1, 3, field(2, 0, next_id) + field(3, 0, random)))
        next_id += 1
    elif ptype == 4:  # DATA: back to the sender
        sub = parse(f[4])
        data = sub.get(3, b"")
        echoed += len(data)
        outbox.put(packet(4, 4, field(1, 0, sub.get(1, 0)) + field(3, 2, data)))
    elif ptype == 2:  # CLOSE_REQ
        cid = parse(f.get(5, b"")).get(1, 0)
        outbox.put(packet(3, 6, field(2, 0, cid)))
        print(json.dumps({"event": "closed", "connectID": cid, "echoed": echoed}), flush=True)
`;

// A Konnectivity-like server's agent port: mTLS, serverid/servercount as initial metadata, then
// DIAL_REQ to the agent, 4 MiB of DATA in 64 KiB packets each echoed back before the next, and
// CLOSE_REQ; the call then ends OK. It prints what it saw as one JSON line.
const serverScript = String.raw`
import json, sys, hashlib, threading, grpc
from concurrent import futures

${packetHelpers}
ca, cert, key = [open(p, "rb").read() for p in sys.argv[1:4]]
destination = sys.argv[4].encode()
done = threading.Event()
result = {}

def connect(requests, context):
    md = dict(context.invocation_metadata())
    result["agentid"] = md.get("agentid")
    context.send_initial_metadata((("serverid", "py-server"), ("servercount", "1")))
    yield packet(0, 2, field(1, 2, b"tcp") + field(2, 2, destination) + field(3, 0, 777))
    rsp = parse(parse(next(requests))[3])
    cid = rsp.get(2, 0)
    result["dial"] = {"connectID": cid, "random": rsp.get(3, 0), "error": rsp.get(1, b"").decode()}
    sent, back = hashlib.sha256(), hashlib.sha256()
    total = echoed = 0
    for i in range(64):
        chunk = bytes((i * 7 + j) % 251 for j in range(256)) * 256
        sent.update(chunk); total += len(chunk)
        yield packet(4, 4, field(1, 0, cid) + field(3, 2, chunk))
        while echoed < total:
            f = parse(next(requests))
            if f.get(1, 0) != 4:
                raise Exception("expected DATA, got packet type %d" % f.get(1, 0))
            data = parse(f[4]).get(3, b"")
            back.update(data); echoed += len(data)
    result["echo"] = {"sent": total, "echoed": echoed, "same": sent.hexdigest() == back.hexdigest()}
    yield packet(2, 5, field(1, 0, cid))
    close = parse(next(requests))
    result["close"] = {"type": close.get(1, 0), "connectID": parse(close.get(6, b"")).get(2, 0)}
    done.set()

server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("AgentService", {
    "Connect": grpc.stream_stream_rpc_method_handler(connect)}),))
creds = grpc.ssl_server_credentials(((key, cert),), root_certificates=ca, require_client_auth=True)
port = server.add_secure_port("127.0.0.1:0", creds)
server.start()
print(json.dumps({"port": port}), flush=True)
ok = done.wait(30)
print(json.dumps(result if ok else {"timeout": True, **result}), flush=True)
server.stop(1).wait()
`;

const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(python, args, { encoding: "utf8", timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout, stderr }));
  });

const hasGrpcio = (await run(["-c", "import grpc"])).code === 0;

/** A long-running Python peer that reports as JSON lines on stdout; killed after the test. */
const spawnPython = (t: TestContext, script: string, args: string[]) => spawnJsonLines(t, python, ["-c", script, ...args]);

describe("python3-grpcio client against the gRPC frontend", { skip: hasGrpcio ? false : "needs python3-grpcio (apt-get install python3-grpcio)" }, () => {
  it("dials, echoes DATA and closes with CLOSE_REQ → CLOSE_RSP", async (t) => {
    const stack = await startStack(t);
    await stack.startAgent("node-1", "ipv4=127.0.0.1");
    const echo = await startDestination(t);
    const r = await run(["-c", script, stack.grpcPath, echo.address]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { seen: Array<Record<string, unknown>>; rest: unknown[]; code: string };
    // DIAL_RSP: type 1, connectID (field 2) ≥ 1, random (field 3) echoed, no error (field 1).
    assert.equal(out.seen[0]!.type, 1);
    assert.equal(out.seen[0]!["3"], 424242);
    assert.equal(out.seen[0]!["1"], undefined);
    const connectID = out.seen[0]!["2"] as number;
    assert.ok(connectID >= 1);
    assert.deepEqual(out.seen[1], { type: 4, 1: connectID, 3: "hello from grpcio" });
    assert.deepEqual(out.seen[2], { type: 3, 2: connectID });
    assert.deepEqual(out.rest, []);
    assert.equal(out.code, "StatusCode.OK");
    await waitFor(() => echo.open === 0, "the destination socket to close");
    await stack.settled();
  });
});

// Debian's grpcio (gRPC's C core: its own HTTP/2, BDP pings, HPACK with a dynamic table) as an
// agent over mTLS against the agent port, on both HTTP/2 implementations the server offers: the
// closest peer to upstream's grpc-go agent that this machine has.
describe("python3-grpcio agent against the agent port", { skip: hasGrpcio ? false : "needs python3-grpcio (apt-get install python3-grpcio)" }, () => {
  for (const agentHttp2 of ["builtin", "node"] as const) {
    it(`registers over mTLS, answers a dial and echoes 4 MiB intact (agent port on ${agentHttp2})`, { timeout: 60_000 }, async (t) => {
      const stack = await startStack(t, { agentHttp2 });
      const files = ["ca.crt", "agent.crt", "agent.key"].map((name) => join(stack.dir, name));
      writeFileSync(files[0]!, stack.pki.ca);
      writeFileSync(files[1]!, stack.pki.client.cert);
      writeFileSync(files[2]!, stack.pki.client.key, { mode: 0o600 });
      const agent = spawnPython(t, agentScript, [...files, String(stack.agentPort)]);
      const events = agent.lines;
      await waitFor(() => events.some((e) => e.event === "connected"), `the python agent to connect (${agent.stderr()})`, 15_000);
      assert.equal(events[0]!.serverid, "conformance-server");
      await waitFor(() => stack.server.proxy.registry.streamsOf("py-agent").length === 1, "the server to register py-agent");

      const { head, socket, rest } = await httpConnect({ port: stack.connectPort }, "py-node:10250");
      assert.match(head, /^HTTP\/1\.1 200 /);
      const payload = randomBytes(4 * 1024 * 1024);
      socket.write(payload);
      const echoed = await readUntil(socket, rest, (b) => b.length >= payload.length, 30_000);
      assert.equal(createHash("sha256").update(echoed).digest("hex"), createHash("sha256").update(payload).digest("hex"));
      socket.destroy();
      await waitFor(() => events.some((e) => e.event === "closed"), "CLOSE_REQ to reach the python agent", 10_000);
      assert.equal(events.find((e) => e.event === "closed")!.echoed, payload.length);
      await stack.settled();
    });
  }
});

// The other direction: Debian's grpcio as the server that our agent connects to, as upstream's
// grpc-go konnectivity-server would be, with the agent on each HTTP/2 client it offers.
describe("our agent against a python3-grpcio agent port", { skip: hasGrpcio ? false : "needs python3-grpcio (apt-get install python3-grpcio)" }, () => {
  for (const serverHttp2 of http2Implementations) {
    it(`connects over mTLS, answers the dial, echoes 4 MiB intact and closes (agent on ${serverHttp2})`, { timeout: 60_000 }, async (t) => {
      const pki = await sharedPki();
      const dir = tempDir(t);
      const files = [["ca.crt", pki.ca], ["server.crt", pki.server.cert], ["server.key", pki.server.key]].map(([name, pem]) => {
        const file = join(dir, name!);
        writeFileSync(file, pem!, { mode: 0o600 });
        return file;
      });
      const echo = await startDestination(t);
      const server = spawnPython(t, serverScript, [...files, echo.address]);
      const lines = server.lines;
      await waitFor(() => lines.length >= 1, `the python server to listen (${server.stderr()})`, 15_000);
      await startAgentAgainst(t, lines[0]!.port as number, { agentId: "node-py", serverHttp2 });
      await waitFor(() => lines.length >= 2, `the python server's result (${server.stderr()})`, 40_000);
      const result = lines[1]!;
      assert.equal(result.timeout, undefined, `the exchange finished: ${JSON.stringify(result)} ${server.stderr()}`);
      assert.equal(result.agentid, "node-py");
      assert.deepEqual(result.dial, { connectID: 1, random: 777, error: "" });
      assert.deepEqual(result.echo, { sent: 4 * 1024 * 1024, echoed: 4 * 1024 * 1024, same: true });
      assert.deepEqual(result.close, { type: 3, connectID: 1 });
      await waitFor(() => echo.open === 0, "the destination socket to close");
    });
  }
});
