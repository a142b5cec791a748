// An agent on a node whose only way out is an HTTP proxy reaches its servers through it, as
// upstream's agent does: grpc-go's dialer honours HTTPS_PROXY and NO_PROXY (Go's
// http.ProxyFromEnvironment) and opens the connection with an HTTP CONNECT, on which TLS then
// runs end to end. The same rules here: HTTPS_PROXY (or https_proxy), a URL whose scheme may be
// left out (http), Basic credentials from its user info; NO_PROXY (or no_proxy) as Go reads it;
// localhost and loopback addresses never through the proxy. Like grpc-go, the connection to the
// proxy itself is plain TCP, whatever the URL's scheme says.
import { once } from "node:events";
import net from "node:net";
import { TunnelError } from "../protocol/tunnel-error.js";

export interface ProxySettings {
  /** The proxy (HTTPS_PROXY); its port: proxyPort(). */
  readonly url: URL;
  /** NO_PROXY as given ("" when unset). */
  readonly noProxy: string;
  readonly rules: readonly NoProxyRule[];
}

/** One NO_PROXY entry, as golang.org/x/net/http/httpproxy keeps it. */
type NoProxyRule =
  | { readonly kind: "all" }
  | { readonly kind: "cidr"; readonly list: net.BlockList }
  | { readonly kind: "ip"; readonly list: net.BlockList; readonly port: string }
  | { readonly kind: "domain"; readonly suffix: string; readonly matchHost: boolean; readonly port: string };

/** HTTPS_PROXY and NO_PROXY from an environment; undefined when no proxy is set. Throws, naming the variable, on a URL it cannot use. */
export function proxySettingsFromEnv(env: Readonly<Record<string, string | undefined>>): ProxySettings | undefined {
  // As Go's getEnvAny: the first of the two names that is set and not empty.
  const pick = (upper: string, lower: string) => (env[upper] ? upper : env[lower] ? lower : undefined);
  const name = pick("HTTPS_PROXY", "https_proxy");
  const raw = name === undefined ? "" : env[name]!.trim();
  if (name === undefined || raw === "") return undefined;
  const noProxyName = pick("NO_PROXY", "no_proxy");
  const noProxy = noProxyName === undefined ? "" : env[noProxyName]!;
  return { url: parseProxyUrl(name, raw), noProxy, rules: parseNoProxy(noProxy) };
}

function parseProxyUrl(variable: string, raw: string): URL {
  let url: URL;
  try {
    // As Go: a value without a scheme is an http proxy.
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    // The value is not echoed: it may hold a password in a shape no pattern would hide.
    throw new TunnelError("INVALID_OPTION", `${variable}: not a URL (expected http://[user:password@]host[:port])`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TunnelError("INVALID_OPTION", `${variable}: ${url.protocol.slice(0, -1)} proxies are not supported, only HTTP CONNECT proxies (http:// or https://)`);
  }
  if (url.hostname === "") throw new TunnelError("INVALID_OPTION", `${variable}: the URL names no host`);
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    throw new TunnelError("INVALID_OPTION", `${variable}: the user or password has a malformed %-escape`);
  }
  return url;
}

/** The proxy's port: the URL's, or 80 for http and 443 for https (which a URL does not spell out). */
export function proxyPort(url: URL): number {
  return Number(url.port || (url.protocol === "https:" ? 443 : 80));
}

/** NO_PROXY as httpproxy's config.init reads it; entries it cannot parse are skipped, as there. */
function parseNoProxy(text: string): NoProxyRule[] {
  const rules: NoProxyRule[] = [];
  for (const entry of text.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    if (entry === "*") return [{ kind: "all" }];
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
    if (cidr) {
      const family = net.isIP(cidr[1]!);
      const bits = Number(cidr[2]);
      if (family !== 0 && bits <= (family === 4 ? 32 : 128)) {
        const list = new net.BlockList();
        list.addSubnet(cidr[1]!, bits, family === 6 ? "ipv6" : "ipv4");
        rules.push({ kind: "cidr", list });
      }
      continue;
    }
    // host:port or [v6]:port (Go's net.SplitHostPort), else the whole entry is the host.
    let host = entry;
    let port = "";
    const split = /^\[([^\]]*)\]:(.*)$/.exec(entry) ?? (/^([^:]*):([^:]*)$/.exec(entry));
    if (split) {
      host = split[1]!;
      port = split[2]!;
      if (host === "") continue;
    }
    const family = net.isIP(host);
    if (family !== 0) {
      const list = new net.BlockList();
      list.addAddress(host, family === 6 ? "ipv6" : "ipv4");
      rules.push({ kind: "ip", list, port });
      continue;
    }
    if (host.startsWith("*.")) host = host.slice(1);
    const matchHost = !host.startsWith(".");
    rules.push({ kind: "domain", suffix: matchHost ? `.${host}` : host, matchHost, port });
  }
  return rules;
}

/**
 * The proxy to reach host:port through, or undefined to connect directly: httpproxy's useProxy
 * (localhost and loopback addresses never, then NO_PROXY).
 */
export function proxyFor(settings: ProxySettings | undefined, host: string, port: number): URL | undefined {
  if (!settings) return undefined;
  const bare = host.replace(/^\[|\]$/g, "");
  if (bare === "localhost") return undefined;
  const family = net.isIP(bare);
  if (family !== 0 && isLoopback(bare, family)) return undefined;
  const name = bare.trim().toLowerCase();
  const portText = String(port);
  const type = family === 6 ? "ipv6" : "ipv4";
  for (const rule of settings.rules) {
    if (rule.kind === "all") return undefined;
    if (rule.kind === "cidr" || rule.kind === "ip") {
      if (family !== 0 && rule.list.check(name, type) && (rule.kind === "cidr" || rule.port === "" || rule.port === portText)) return undefined;
      continue;
    }
    // Domain entries are matched as text against every host, addresses included, as in Go.
    if ((name.endsWith(rule.suffix) || (rule.matchHost && name === rule.suffix.slice(1))) && (rule.port === "" || rule.port === portText)) return undefined;
  }
  return settings.url;
}

function isLoopback(address: string, family: number): boolean {
  if (family === 4) return address.startsWith("127.");
  const list = new net.BlockList();
  list.addAddress("::1", "ipv6");
  list.addSubnet("::ffff:127.0.0.0", 104, "ipv6");
  return list.check(address, "ipv6");
}
/** A proxy URL fit for logs and errors: the password replaced. */
export function redactedProxy(url: URL): string {
  const where = `${url.hostname}:${proxyPort(url)}`;
  return url.password === "" ? `${url.protocol}//${where}` : `${url.protocol}//${url.username}:***@${where}`;
}


/** The largest proxy response head read before giving up on it. */
const maxResponseHeadBytes = 16 * 1024;

/**
 * Opens a TCP connection to `proxy` and asks it, with HTTP CONNECT, for a tunnel to host:port.
 * Resolves with the socket once the proxy answered 200; anything else destroys the socket and
 * rejects with an error that names the proxy and its answer.
 */
export async function connectThroughProxy(
  proxy: URL, host: string, port: number, o: { readonly timeoutMs: number; readonly signal?: AbortSignal; readonly userAgent: string },
): Promise<net.Socket> {
  const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
  const where = `proxy ${redactedProxy(proxy)}`;
  const socket = net.connect({ host: proxy.hostname.replace(/^\[|\]$/g, ""), port: proxyPort(proxy) });
  socket.setNoDelay(true);
  const fail = (err: Error): never => {
    socket.destroy();
    throw err;
  };
  const timer = setTimeout(() => socket.destroy(new TunnelError("DIAL_TIMEOUT", `${where}: no tunnel to ${authority} within ${o.timeoutMs} ms`)), o.timeoutMs);
  const onAbort = () => socket.destroy(new TunnelError("CANCELLED", `${where}: connect aborted`));
  o.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await once(socket, "connect").catch((err: Error) => fail(err instanceof TunnelError ? err : new TunnelError("DIAL_FAILED", `${where}: ${err.message}`)));
    return await handshake();
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener("abort", onAbort);
  }

  async function handshake(): Promise<net.Socket> {
    let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: ${o.userAgent}\r\n`;
    if (proxy.username !== "") {
      const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      head += `Proxy-Authorization: Basic ${Buffer.from(credentials).toString("base64")}\r\n`;
    }
    socket.write(`${head}\r\n`);
    const response = await readResponseHead(socket).catch((err: Error) =>
      fail(err instanceof TunnelError ? err : new TunnelError("DIAL_FAILED", `${where}: ${err.message}`)));
    const headEnd = headLength(response)!;
    const statusLine = response.subarray(0, response.indexOf("\n")).toString("latin1").replace(/\r$/, "");
    const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!status) fail(new TunnelError("PROTOCOL", `${where} did not answer CONNECT with HTTP: ${JSON.stringify(statusLine.slice(0, 100))}`));
    if (status![1] !== "200") {
      fail(new TunnelError("DIAL_FAILED", `${where} refused the tunnel to ${authority}: ${status![1]} ${status![2] ?? ""}`.trimEnd()));
    }
    // A TLS server speaks only after our ClientHello: bytes after the head are the proxy's.
    const extra = response.length - headEnd;
    if (extra > 0) fail(new TunnelError("PROTOCOL", `${where} sent ${extra} bytes after its 200, before the server could speak`));
    return socket;
  }
}

/** The length of a response head up to its blank line, CRLF or (as Go's reader accepts) bare LF. */
function headLength(buf: Buffer): number | undefined {
  const m = /\r?\n\r?\n/.exec(buf.toString("latin1"));
  return m ? m.index + m[0].length : undefined;
}

function readResponseHead(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err?: Error) => {
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (headLength(buf) !== undefined) done();
      else if (buf.length > maxResponseHeadBytes) done(new Error(`answered CONNECT with over ${maxResponseHeadBytes} bytes and no end of the head`));
    };
    const onError = (err: Error) => done(err);
    const onClose = () => done(new Error("closed the connection before answering CONNECT"));
    socket.on("data", onData);
    socket.once("error", onError);
    socket.once("close", onClose);
  });
}
