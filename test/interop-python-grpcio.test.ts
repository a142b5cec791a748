// Debian's python3-grpcio (gRPC's C core, a second independent implementation) as kube-apiserver
// against our gRPC frontend over its Unix socket: DIAL_REQ → DIAL_RSP, DATA echoed, CLOSE_REQ →
// CLOSE_RSP, then the stream ends OK. Packets are encoded by hand in Python (proto3 wire format),
// so neither our codec nor protobufjs is involved on that side.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { startDestination, startStack } from "./helpers/stack.js";
import { httpConnect, readUntil } from "./helpers/connect-client.js";
import { waitFor } from "./helpers/wait.js";

const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

// Proto3 wire format by hand, shared by both Python peers: neither our codec nor protobufjs is
// involved on their side.
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
import queue
outbox = queue.Queue()
def requests():
    while True:
        item = outbox.get()
        if item is None:
            return
        yield item
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
outbox = queue.Queue()
def requests():
    while True:
        item = outbox.get()
        if item is None:
            return
        yield item
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

const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(python, args, { encoding: "utf8", timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout, stderr }));
  });

const hasGrpcio = (await run(["-c", "import grpc"])).code === 0;

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
      const agent = spawn(python, ["-c", agentScript, ...files, String(stack.agentPort)], { stdio: ["ignore", "pipe", "pipe"] });
      t.after(() => void agent.kill("SIGKILL"));
      const events: Array<Record<string, unknown>> = [];
      let stderr = "";
      agent.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      let partial = "";
      agent.stdout.on("data", (c: Buffer) => {
        partial += c.toString();
        for (let i = partial.indexOf("\n"); i >= 0; i = partial.indexOf("\n")) {
          events.push(JSON.parse(partial.slice(0, i)) as Record<string, unknown>);
          partial = partial.slice(i + 1);
        }
      });
      await waitFor(() => events.some((e) => e.event === "connected"), `the python agent to connect (${stderr})`, 15_000);
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

