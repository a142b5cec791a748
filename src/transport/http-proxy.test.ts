import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test, type TestContext } from "node:test";
import { isTunnelError } from "../protocol/tunnel-error.js";
import { connectThroughProxy, proxyFor, proxyPort, proxySettingsFromEnv, redactedProxy } from "./http-proxy.js";

test("HTTPS_PROXY is read as Go reads it: scheme optional, default ports, the upper-case name first", () => {
  assert.equal(proxySettingsFromEnv({}), undefined);
  assert.equal(proxySettingsFromEnv({ HTTPS_PROXY: "  " }), undefined);
  assert.equal(proxySettingsFromEnv({ HTTPS_PROXY: "proxy.corp:3128" })!.url.href, "http://proxy.corp:3128/");
  assert.equal(proxyPort(proxySettingsFromEnv({ HTTPS_PROXY: "http://proxy.corp" })!.url), 80);
  assert.equal(proxyPort(proxySettingsFromEnv({ HTTPS_PROXY: "https://proxy.corp" })!.url), 443);
  assert.equal(proxyPort(proxySettingsFromEnv({ HTTPS_PROXY: "https://proxy.corp:80" })!.url), 80);
  assert.equal(proxySettingsFromEnv({ https_proxy: "http://lower:1" })!.url.hostname, "lower");
  assert.equal(proxySettingsFromEnv({ HTTPS_PROXY: "http://upper:1", https_proxy: "http://lower:1" })!.url.hostname, "upper");
  assert.equal(proxySettingsFromEnv({ HTTPS_PROXY: "http://[fd00::1]:3128" })!.url.hostname, "[fd00::1]");
  assert.equal(proxySettingsFromEnv({ HTTPS_PROXY: "p:1", no_proxy: ".corp" })!.noProxy, ".corp");
  assert.equal(proxySettingsFromEnv({ HTTPS_PROXY: "p:1", NO_PROXY: "", no_proxy: ".corp" })!.noProxy, ".corp", "an empty NO_PROXY hides nothing");
  assert.equal(proxySettingsFromEnv({ HTTPS_PROXY: "", https_proxy: "http://lower:1" })!.url.hostname, "lower");
});

test("an HTTPS_PROXY that cannot be used stops the start, naming the variable and hiding the password", () => {
  const refused = (env: Record<string, string>, pattern: RegExp) => assert.throws(() => proxySettingsFromEnv(env), (err: Error) => {
    assert.ok(isTunnelError(err, "INVALID_OPTION"));
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /s3cret/);
    return true;
  });
  refused({ HTTPS_PROXY: "socks5://proxy:1080" }, /^HTTPS_PROXY: socks5 proxies are not supported/);
  refused({ https_proxy: "http://user:s3cret@" }, /^https_proxy: (the URL names no host|not a URL)/);
  refused({ HTTPS_PROXY: "http://user:s3cret@bad host:1" }, /^HTTPS_PROXY: not a URL \(expected http:\/\/\[user:password@\]host\[:port\]\)$/);
  refused({ HTTPS_PROXY: "http://u:pa/s3cret@proxy:3128x" }, /^HTTPS_PROXY: not a URL/);
  refused({ HTTPS_PROXY: "u:s3cret@proxy:notaport" }, /^HTTPS_PROXY: not a URL/);
  refused({ HTTPS_PROXY: "http://u%zz:s3cret@proxy:3128" }, /^HTTPS_PROXY: the user or password has a malformed %-escape$/);
});

test("NO_PROXY as Go's httpproxy reads it: names with their subdomains, leading dots and *. for subdomains only, IPs, CIDRs, ports as text, *; localhost and loopback never proxied", () => {
  const via = (noProxy: string, host: string, port = 8132) => proxyFor(proxySettingsFromEnv({ HTTPS_PROXY: "http://proxy:3128", NO_PROXY: noProxy }), host, port) !== undefined;
  assert.equal(via("", "konnectivity.example"), true);
  assert.equal(via("example", "konnectivity.example"), false, "a name covers its subdomains");
  assert.equal(via("example", "example"), false);
  assert.equal(via("ample", "konnectivity.example"), true, "whole labels only");
  assert.equal(via(".example", "example"), true, "a leading dot: subdomains only");
  assert.equal(via(".example", "a.example"), false);
  assert.equal(via("*.example", "example"), true);
  assert.equal(via("*.example", "a.example"), false);
  assert.equal(via("EXAMPLE", "Konnectivity.Example"), false, "case does not matter");
  assert.equal(via("example", "konnectivity.example."), true, "a trailing dot is another name, as in Go");
  assert.equal(via("example:", "konnectivity.example", 9999), false, "an empty port matches every port");
  assert.equal(via("example:080", "konnectivity.example", 80), true, "ports compare as text, as in Go");
  assert.equal(via("10.0.0.0/33,::/129", "10.1.2.3"), true, "a prefix too long is skipped, not fatal");
  assert.equal(via("[fd00::7]:8132", "fd00::7", 8132), false);
  assert.equal(via("10.0.0.0/8", "::ffff:10.1.2.3"), false, "an IPv4-mapped address matches IPv4 entries");
  assert.equal(via("10.0.0.0/8", "10.1.2.3"), false);
  assert.equal(via("10.0.0.0/8", "11.1.2.3"), true);
  assert.equal(via("fd00::/8", "fd12::1"), false);
  assert.equal(via("192.0.2.7", "192.0.2.7"), false);
  assert.equal(via("192.0.2.7:8132", "192.0.2.7", 8132), false);
  assert.equal(via("192.0.2.7:443", "192.0.2.7", 8132), true, "another port");
  assert.equal(via("server.corp:8132", "server.corp", 8132), false);
  assert.equal(via("a.corp, *", "anything"), false);
  assert.equal(via("10.0.0.0/8", "ten.example"), true, "a CIDR does not match names");
  for (const host of ["localhost", "127.0.0.1", "127.9.9.9", "::1", "[::1]", "::ffff:127.0.0.1"]) assert.equal(via("", host), false, host);
  for (const host of ["LOCALHOST", "api.localhost", "localhost."]) assert.equal(via("", host), true, `${host}: proxied, as Go does`);
  assert.equal(proxyFor(undefined, "konnectivity.example", 8132), undefined);
});

test("a proxy URL in logs shows the user, never the password", () => {
  assert.equal(redactedProxy(new URL("http://proxy:3128")), "http://proxy:3128");
  assert.equal(redactedProxy(new URL("http://proxy")), "http://proxy:80");
  assert.equal(redactedProxy(new URL("http://svc:s3cret@proxy:3128")), "http://svc:***@proxy:3128");
});

interface TestProxy {
  readonly url: (auth?: string) => URL;
  readonly heads: string[];
}

/** A CONNECT proxy on loopback that answers with `answer(head)` and, on 200, pipes to the echo. */
async function testProxy(t: TestContext, answer: (head: string) => string | null): Promise<TestProxy & { echoPort: number }> {
  const echo = net.createServer((s) => s.on("error", () => {}).pipe(s)).listen(0, "127.0.0.1");
  const heads: string[] = [];
  const proxy = net.createServer((client) => {
    let buf = "";
    client.on("error", () => {});
    const onData = (c: Buffer) => {
      buf += c.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      client.off("data", onData);
      const head = buf.slice(0, end);
      heads.push(head);
      const reply = answer(head);
      if (reply === null) return; // say nothing
      client.write(reply);
      if (!reply.startsWith("HTTP/1.1 200")) return void client.end();
      const upstream = net.connect((echo.address() as net.AddressInfo).port, "127.0.0.1");
      upstream.on("error", () => client.destroy());
      client.pipe(upstream).pipe(client);
    };
    client.on("data", onData);
  }).listen(0, "127.0.0.1");
  await Promise.all([once(echo, "listening"), once(proxy, "listening")]);
  t.after(() => {
    proxy.close();
    echo.close();
  });
  const port = (proxy.address() as net.AddressInfo).port;
  return { url: (auth = "") => new URL(`http://${auth}127.0.0.1:${port}`), heads, echoPort: (echo.address() as net.AddressInfo).port };
}

const options = { timeoutMs: 2000, userAgent: "nodetunnel-test" };

test("CONNECT through a proxy: the request grpc-go sends, Basic credentials from the URL, then a clean byte stream", async (t) => {
  const proxy = await testProxy(t, () => "HTTP/1.1 200 Connection established\r\n\r\n");
  const socket = await connectThroughProxy(proxy.url("svc%40corp:p%40ss:w@rd@"), "konnectivity.example", 8132, options);
  t.after(() => socket.destroy());
  const lines = proxy.heads[0]!.split("\r\n");
  assert.equal(lines[0], "CONNECT konnectivity.example:8132 HTTP/1.1");
  assert.ok(lines.includes("Host: konnectivity.example:8132"));
  assert.ok(lines.includes("User-Agent: nodetunnel-test"));
  assert.ok(lines.includes(`Proxy-Authorization: Basic ${Buffer.from("svc@corp:p@ss:w@rd").toString("base64")}`), lines.join(" | "));
  socket.write("through");
  socket.resume();
  const [echoed] = await once(socket, "data") as [Buffer];
  assert.equal(echoed.toString(), "through");

  const lf = await testProxy(t, () => "HTTP/1.0 200 OK\nVia: test\n\n");
  (await connectThroughProxy(lf.url(), "konnectivity.example", 8132, options)).destroy();

  const v6 = await connectThroughProxy(proxy.url(), "fd00::7", 8132, options);
  v6.destroy();
  assert.match(proxy.heads[1]!, /^CONNECT \[fd00::7\]:8132 HTTP\/1\.1\r\nHost: \[fd00::7\]:8132\r\n/);
  assert.doesNotMatch(proxy.heads[1]!, /Proxy-Authorization/, "no credentials, no header");
});

test("a proxy's refusal, silence, hang-up or stray bytes fail the connect with what the proxy did, the password hidden", async (t) => {
  const reject = async (answer: (head: string) => string | null, pattern: RegExp, code: string, timeoutMs = 2000) => {
    const proxy = await testProxy(t, answer);
    const started = Date.now();
    await assert.rejects(connectThroughProxy(proxy.url("svc:s3cret@"), "konnectivity.example", 8132, { ...options, timeoutMs }), (err: Error) => {
      assert.ok(isTunnelError(err, code as never), `${code}: ${err.message}`);
      assert.match(err.message, pattern);
      assert.doesNotMatch(err.message, /s3cret/);
      return true;
    });
    return Date.now() - started;
  };
  await reject(() => "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
    /^proxy http:\/\/svc:\*\*\*@127\.0\.0\.1:\d+ refused the tunnel to konnectivity\.example:8132: 407 Proxy Authentication Required$/, "DIAL_FAILED");
  await reject(() => "HTTP/1.1 403 Forbidden\r\n\r\n", /refused the tunnel to konnectivity\.example:8132: 403 Forbidden$/, "DIAL_FAILED");
  await reject(() => "SSH-2.0-OpenSSH_9\r\n\r\n", /did not answer CONNECT with HTTP: "SSH-2.0-OpenSSH_9"/, "PROTOCOL");
  await reject(() => "HTTP/1.1 200 OK\r\n\r\nhello", /sent 5 bytes after its 200/, "PROTOCOL");
  await reject(() => "", /closed the connection before answering CONNECT/, "DIAL_FAILED");
  const waited = await reject(() => null, /no tunnel to konnectivity\.example:8132 within 300 ms/, "DIAL_TIMEOUT", 300);
  assert.ok(waited < 1500, `gave up after ${waited} ms`);

  const closed = net.createServer().listen(0, "127.0.0.1");
  await once(closed, "listening");
  const port = (closed.address() as net.AddressInfo).port;
  closed.close();
  await assert.rejects(connectThroughProxy(new URL(`http://127.0.0.1:${port}`), "konnectivity.example", 8132, options),
    /^Error: proxy http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED|proxy http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/);

  const aborted = new AbortController();
  const proxy = await testProxy(t, () => null);
  const pending = connectThroughProxy(proxy.url(), "konnectivity.example", 8132, { ...options, signal: aborted.signal });
  setTimeout(() => aborted.abort(), 50);
  await assert.rejects(pending, (err: Error) => isTunnelError(err, "CANCELLED"));
});
