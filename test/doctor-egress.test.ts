// doctor egress against real loopback listeners: TLS servers that speak konnectivity or h2, TLS
// servers that do not agree on ALPN, a closed port, a server that takes TCP but never answers TLS.
// Only loopback is ever dialled; name resolution is injected where a failure is wanted.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createTcpServer, type AddressInfo, type LookupFunction, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type TlsOptions } from "node:tls";
import { checkEgress, parseHostPort, probeEndpoint } from "../src/doctor/egress/index.js";
import { renderText } from "../src/doctor/report/index.js";

function selfSignedCert(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), "nt-egress-"));
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
      "-subj", "/CN=egress test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore", timeout: 20_000 });
    return { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hasOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

interface Listener { port: number; close(): Promise<void> }

// Every socket a server accepts is tracked so close() cannot hang on a held-open connection.
async function listen(server: Server): Promise<Listener> {
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

function tlsListener(opts: TlsOptions): Promise<Listener> {
  const server = createTlsServer(opts, (s) => s.end());
  server.on("tlsClientError", () => {});
  return listen(server);
}

describe("doctor egress probes (loopback)", { skip: hasOpenssl ? false : "needs openssl to make a test certificate" }, () => {
  const listeners: Listener[] = [];
  let h2: Listener, konnectivity: Listener, http11Only: Listener, noAlpn: Listener, silent: Listener, plain: Listener;
  let closedPort: number;

  before(async () => {
    const pem = selfSignedCert();
    h2 = await tlsListener({ ...pem, ALPNProtocols: ["h2"] });
    konnectivity = await tlsListener({ ...pem, ALPNProtocols: ["konnectivity"] });
    http11Only = await tlsListener({ ...pem, ALPNProtocols: ["http/1.1"] });
    noAlpn = await tlsListener({ ...pem });
    silent = await listen(createTcpServer(() => {})); // takes TCP, never says a word
    plain = await listen(createTcpServer((s) => s.end("HTTP/1.1 400 Bad Request\r\n\r\n")));
    listeners.push(h2, konnectivity, http11Only, noAlpn, silent, plain);
    const gone = await listen(createTcpServer());
    closedPort = gone.port;
    await gone.close();
  });
  after(async () => {
    await Promise.all(listeners.map((l) => l.close()));
  });

  const local = (port: number) => ({ host: "127.0.0.1", port });

  it("connects and reports the negotiated ALPN when the server speaks the one asked for", async () => {
    const p = await probeEndpoint(local(konnectivity.port), { alpn: "konnectivity", timeoutMs: 2000 });
    assert.equal(p.result, "connected");
    assert.equal(p.tls, true);
    assert.equal(p.alpn, "konnectivity");
    assert.deepEqual(p.offeredAlpn, ["konnectivity"], "only what the AKS agent offers (troubleshooting.md §5.1)");
    assert.equal(p.certificate?.verified, false, "a self-signed certificate does not verify against system CAs");
    assert.match(p.certificate?.issuer ?? "", /CN=egress test/);
    assert.ok(p.elapsedMs >= 0 && p.elapsedMs < 2000);
  });

  it("connects with ALPN h2 when h2 is asked for (a gRPC tunnel server dialled directly)", async () => {
    const p = await probeEndpoint(local(h2.port), { alpn: "h2", timeoutMs: 2000 });
    assert.equal(p.result, "connected");
    assert.equal(p.alpn, "h2");
    assert.deepEqual(p.offeredAlpn, ["h2"]);
  });

  it("classifies an h2-only server as alpn-mismatch when konnectivity was asked for", async () => {
    const p = await probeEndpoint(local(h2.port), { alpn: "konnectivity", timeoutMs: 2000 });
    assert.equal(p.result, "alpn-mismatch");
    assert.notEqual(p.alpn, "konnectivity");
    const r = await checkEgress({ targets: [local(h2.port)], alpn: "konnectivity", timeoutMs: 2000 });
    assert.equal(r.status, "problem");
    assert.doesNotMatch(r.summary, /TLS completed with ALPN h2/);
    assert.match(r.summary, /without ALPN konnectivity/);
  });

  it("classifies a server that refuses every offered ALPN protocol as alpn-mismatch", async () => {
    const p = await probeEndpoint(local(http11Only.port), { alpn: "konnectivity", timeoutMs: 2000 });
    assert.equal(p.result, "alpn-mismatch");
    assert.match(p.reason ?? "", /\(konnectivity\)/);
  });

  it("classifies TLS without any negotiated ALPN (what an ALPN-stripping proxy gives) as alpn-mismatch", async () => {
    const p = await probeEndpoint(local(noAlpn.port), { alpn: "konnectivity", timeoutMs: 2000 });
    assert.equal(p.result, "alpn-mismatch");
    assert.equal(p.alpn, null);
  });

  it("classifies a closed port as refused, in Go's dial wording", async () => {
    const p = await probeEndpoint(local(closedPort), { timeoutMs: 2000 });
    assert.equal(p.result, "refused");
    assert.equal(p.reason, `dial tcp 127.0.0.1:${closedPort}: connect: connection refused`);
  });

  it("classifies a server that accepts TCP but never answers TLS as a tls timeout", async () => {
    const started = Date.now();
    const p = await probeEndpoint(local(silent.port), { alpn: "konnectivity", timeoutMs: 300 });
    assert.equal(p.result, "tls");
    assert.match(p.reason ?? "", /no TLS answer within 300 ms/);
    assert.ok(Date.now() - started < 2000, "the deadline bounds the probe");
    assert.ok(p.elapsedMs >= 290, `elapsed ${p.elapsedMs} ms covers the wait`);
  });

  it("classifies a plain-text answer to a TLS handshake as tls (not TLS)", async () => {
    const p = await probeEndpoint(local(plain.port), { alpn: "konnectivity", timeoutMs: 2000 });
    assert.equal(p.result, "tls");
    assert.ok(p.reason && p.reason.length > 0);
  });

  it("only connects over TCP on a port that is not a TLS port and no --alpn", async () => {
    const p = await probeEndpoint(local(silent.port), { timeoutMs: 2000 });
    assert.equal(p.result, "connected");
    assert.equal(p.tls, false);
    assert.equal(p.offeredAlpn, null);
  });

  it("classifies a failed lookup as dns without sending a query anywhere", async () => {
    const lookup = ((_host: string, _opts: unknown, cb: (err: Error | null) => void) => {
      cb(Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" }));
    }) as unknown as LookupFunction;
    const p = await probeEndpoint({ host: "tunnel.example.invalid", port: 443 }, { timeoutMs: 1000, lookup });
    assert.equal(p.result, "dns");
    assert.equal(p.reason, "dial tcp: lookup tunnel.example.invalid: no such host");
  });

  it("names the address it dialled: the IP given, the one a name resolved to, none when the lookup failed", async () => {
    assert.equal((await probeEndpoint(local(closedPort), { timeoutMs: 2000 })).address, "127.0.0.1");
    // A name that resolves (to loopback, by a lookup of the test's own: no query leaves the machine).
    const toLoopback = ((_host: string, opts: { all?: boolean }, cb: (err: Error | null, address: unknown, family?: number) => void) => {
      if (opts.all) cb(null, [{ address: "127.0.0.1", family: 4 }]);
      else cb(null, "127.0.0.1", 4);
    }) as unknown as LookupFunction;
    const named = await probeEndpoint({ host: "tunnel.example.invalid", port: closedPort }, { timeoutMs: 2000, lookup: toLoopback });
    assert.equal(named.result, "refused");
    assert.equal(named.address, "127.0.0.1");
    const failed = ((_host: string, _opts: unknown, cb: (err: Error | null) => void) => {
      cb(Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" }));
    }) as unknown as LookupFunction;
    assert.equal((await probeEndpoint({ host: "tunnel.example.invalid", port: 443 }, { timeoutMs: 1000, lookup: failed })).address, null);
  });

  it("names every address of a name it tried, in order, when all of them fail", async () => {
    const twoLoopbacks = ((_host: string, opts: { all?: boolean }, cb: (err: Error | null, address: unknown, family?: number) => void) => {
      if (opts.all) cb(null, [{ address: "127.0.0.1", family: 4 }, { address: "127.0.0.2", family: 4 }]);
      else cb(null, "127.0.0.1", 4);
    }) as unknown as LookupFunction;
    const p = await probeEndpoint({ host: "tunnel.example.invalid", port: closedPort }, { timeoutMs: 2000, lookup: twoLoopbacks });
    assert.equal(p.result, "refused");
    assert.deepEqual(p.addresses, ["127.0.0.1", "127.0.0.2"]);
    assert.equal(p.address, "127.0.0.2");
    assert.deepEqual((await probeEndpoint(local(closedPort), { timeoutMs: 2000 })).addresses, ["127.0.0.1"]);
  });

  it("classifies a connect that never completes as timeout, bounded by the deadline", async () => {
    const lookup = (() => {}) as unknown as LookupFunction; // the connect never starts: our deadline must fire
    const p = await probeEndpoint({ host: "hangs.example.invalid", port: 8132 }, { timeoutMs: 200, lookup });
    assert.equal(p.result, "timeout");
    assert.equal(p.reason, "dial tcp hangs.example.invalid:8132: i/o timeout");
    assert.ok(p.elapsedMs >= 190 && p.elapsedMs < 1500);
  });

  it("checkEgress: ok when every target connects, problem naming the first failure otherwise", async () => {
    const ok = await checkEgress({ targets: [local(konnectivity.port)], alpn: "konnectivity", timeoutMs: 2000 });
    assert.equal(ok.check, "egress");
    assert.equal(ok.status, "ok");
    assert.deepEqual(ok.fixes, []);
    assert.match(ok.summary, /ALPN konnectivity/);

    const bad = await checkEgress({ targets: [local(konnectivity.port), local(closedPort), local(noAlpn.port)], alpn: "konnectivity", timeoutMs: 2000 });
    assert.equal(bad.status, "problem");
    const probes = bad.probes as { result: string; target: string }[];
    assert.deepEqual(probes.map((p) => p.result), ["connected", "refused", "alpn-mismatch"]);
    assert.match(bad.summary, new RegExp(`127\\.0\\.0\\.1:${closedPort} refused`));
    assert.equal(bad.fixes.length, 2);
    assert.match(bad.fixes[1]!.command, /openssl s_client -connect 127\.0\.0\.1:\d+ -alpn konnectivity </);
    const text = renderText(bad, { color: false });
    assert.match(text, /^PROBLEM {2}egress\n/);
    assert.match(text, /TARGET +RESULT +ELAPSED +DETAIL/);
    assert.match(text, /alpn-mismatch/);
  });

  it("checkEgress: an aborted signal ends the check with the abort reason", async () => {
    const controller = new AbortController();
    const pending = checkEgress({ targets: [local(silent.port)], alpn: "x", timeoutMs: 5000, signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stop")), 50);
    await assert.rejects(pending, /stop/);
  });
});

describe("parseHostPort", () => {
  it("reads host:port, [v6]:port and rejects what is not one", () => {
    assert.deepEqual(parseHostPort("tunnel.hcp.westeurope.azmk8s.io:443"), { host: "tunnel.hcp.westeurope.azmk8s.io", port: 443 });
    assert.deepEqual(parseHostPort("[::1]:8132"), { host: "::1", port: 8132 });
    assert.equal(parseHostPort("10.0.0.1"), undefined);
    assert.equal(parseHostPort("10.0.0.1:0"), undefined);
    assert.equal(parseHostPort("10.0.0.1:65536"), undefined);
    assert.equal(parseHostPort("::1:443"), undefined);
  });
});
