// Bytes arrive intact and in order through server and agent over real mTLS gRPC, with several
// connections interleaved on the agent stream (pooled frame buffers, round-robin chunks, credit).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { after, before, it } from "node:test";
import { pino } from "pino";
import { Registry } from "prom-client";
import { NodetunnelAgent, resolveAgentOptions } from "../src/agent/index.js";
import { NodetunnelServer, resolveServerOptions } from "../src/server/index.js";
import { createPki } from "../src/transport/index.js";

const log = pino({ level: "silent" });
let server: NodetunnelServer;
let agent: NodetunnelAgent;
let echo: net.Server;

before(async () => {
  const pki = await createPki();
  echo = net.createServer((s) => s.pipe(s)).listen(0, "127.0.0.1");
  await once(echo, "listening");
  server = await NodetunnelServer.start(resolveServerOptions({
    frontends: [{ mode: "http-connect", listen: { port: 0, host: "127.0.0.1" } }],
    agentListen: { port: 0, host: "127.0.0.1" },
    agentTls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca },
  }), { log, registry: new Registry() });
  agent = await NodetunnelAgent.start(resolveAgentOptions({
    agentId: "node-1",
    proxyServerPort: server.addresses.agentPort,
    tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key, alpnProtocols: [] },
  }), { log, registry: new Registry() });
  await agent.waitForServers(1);
});

after(() => {
  agent.destroy();
  server.destroy();
  echo.close();
});

async function echoThrough(payload: Buffer): Promise<string> {
  const port = server.addresses.frontends[0]!.port!;
  const s = net.connect(port, "127.0.0.1");
  await once(s, "connect");
  s.write(`CONNECT 127.0.0.1:${(echo.address() as net.AddressInfo).port} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  const hash = createHash("sha256");
  let head = Buffer.alloc(0);
  let got = 0;
  const done = new Promise<void>((resolve, reject) => {
    s.on("error", reject);
    s.on("close", () => reject(new Error(`connection closed after ${got} of ${payload.length} bytes`)));
    s.on("data", (c: Buffer) => {
      if (head !== null && head.length < 39) {
        head = Buffer.concat([head, c]);
        if (head.length < 39) return;
        assert.equal(head.subarray(0, 39).toString(), "HTTP/1.1 200 Connection Established\r\n\r\n");
        c = head.subarray(39);
        // Send only after the 200, in uneven pieces.
        let off = 0;
        const pump = () => {
          while (off < payload.length) {
            const n = Math.min(payload.length - off, 1000 + Math.floor(Math.random() * 200_000));
            const ok = s.write(payload.subarray(off, off + n));
            off += n;
            if (!ok) return void s.once("drain", pump);
          }
        };
        pump();
      }
      hash.update(c);
      got += c.length;
      if (got >= payload.length) resolve();
    });
  });
  await done;
  s.destroy();
  return hash.digest("hex");
}

it("echoes 4 × 24 MiB of random bytes through interleaved connections, every byte intact", async () => {
  const payloads = [0, 1, 2, 3].map(() => randomBytes(24 * 1024 * 1024));
  const digests = await Promise.all(payloads.map((p) => echoThrough(p)));
  for (let i = 0; i < payloads.length; i++) assert.equal(digests[i], createHash("sha256").update(payloads[i]!).digest("hex"), `connection ${i}`);
});
