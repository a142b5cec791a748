// What an error text tells about where it happened: the address dialled, the node's name, the
// HTTP status a proxy answered with, and which leg of the tunnel failed — the agent's own link to
// the server, or the dial from the agent (or kube-apiserver) to a node or pod.
export type Leg = "destination" | "server" | "unknown";

export interface ErrorContext {
  /** Host (IP or name) of the address the failing dial went to. */
  readonly host: string | null;
  readonly port: number | null;
  /** The node's name, from a kubelet URL such as `https://<node>:10250/containerLogs/...`. */
  readonly nodeName: string | null;
  /** The status of an HTTP CONNECT answer (konnectivity.md §1.6) when the text shows one. */
  readonly httpCode: number | null;
  readonly leg: Leg;
  /**
   * The tunnel server's agent endpoint (host:port, IPv6 in brackets) where nodetunnel's own
   * explanation names it: the address the agents dial, where a nodetunnel server negotiates h2.
   * The host is `<tunnel-server>` where the server listens on every address.
   */
  readonly agentEndpoint: string | null;
  /** The text analysed (nodetunnel's appended explanation removed). */
  readonly raw: string;
}

// nodetunnel's server explains "No agent available" with the endpoint its agents dial
// (src/server/explain-dial-failure.ts explainNoAgent): "... is egress from it to <host>:<port>
// open? run 'nodetunnel doctor egress --server <host>:<port>' ...". The host is "<this server>"
// where the agent port listens on every address, and an IPv6 host is printed without brackets.
function agentEndpointOf(ownExplanation: string): string | null {
  const m = /egress from it to (.+?) open\?/.exec(ownExplanation) ?? /doctor egress --server (.+?)'/.exec(ownExplanation);
  if (!m) return null;
  const text = m[1]!.trim();
  const bracketed = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text);
  const plain = /^(.+):(\d{1,5})$/.exec(text);
  const parts = bracketed ?? plain;
  if (!parts) return null;
  const host = parts[1]!;
  const port = Number(parts[2]);
  if (port < 1 || port > 65535) return null;
  if (/^<[^<>]+>$/.test(host) || host === "0.0.0.0" || host === "::") return `<tunnel-server>:${port}`;
  if (/[\s<>'"]/.test(host)) return null;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `host:port` with IPv6 in brackets. */
function splitHostPort(s: string): { host: string; port: number } | null {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([^\s:/"]+):(\d{1,5})$/.exec(s);
  return m ? { host: m[1]!, port: Number(m[2]) } : null;
}

const tunnelPorts = new Set([8090, 8091, 8131, 8132, 9000, 1194]);
const agentWords = /konnectivity-agent|error reading from server|proxy-agent|cannot connect once|AgentService|server-connected|no servers connected|connect to (?:the )?(?:proxy|konnectivity|tunnel) server|agent (?:could not|cannot|failed to) (?:reach|connect)/i;
const destinationWords = /containerLogs|\/exec\/|\/attach\/|\/portForward|error dialing backend|failed calling webhook|kubelet|10250/i;

/** `ownExplanation`: what nodetunnel appended after ` — `, read only for the endpoint it names. */
export function extractContext(text: string, ownExplanation = ""): ErrorContext {
  let host: string | null = null;
  let port: number | null = null;
  const take = (hp: string | undefined) => {
    const parsed = hp ? splitHostPort(hp.replace(/[,;]$/, "")) : null;
    if (parsed && host === null) ({ host, port } = parsed);
  };
  take(/while dialing (\S+)/.exec(text)?.[1]);
  take(/dial (?:tcp|tcp4|tcp6|udp) (\S+?):? /.exec(text)?.[1]);
  const curl = /(?:Failed to connect to|connect to) (\S+) port (\d{1,5})/.exec(text);
  if (curl && host === null) {
    host = curl[1]!;
    port = Number(curl[2]);
  }
  take(/CONNECT (\S+:\d+) HTTP/.exec(text)?.[1]);
  take(/(?:read|write) (?:tcp|tcp4|tcp6) \S+->(\S+?):? /.exec(text)?.[1]);
  const url = /https?:\/\/(\[[^\]]+\]|[^/:"\s]+)(?::(\d{1,5}))?\//.exec(text);
  let nodeName: string | null = null;
  if (url) {
    const urlHost = url[1]!.replace(/^\[|\]$/g, "");
    if (!/^[\d.]+$/.test(urlHost) && !urlHost.includes(":")) nodeName = urlHost;
    if (host === null) {
      host = urlHost;
      port = url[2] ? Number(url[2]) : null;
    }
  }
  const lookup = /lookup (\S+?)(?: on \S+)?: /.exec(text) ?? /Could not resolve (?:host|proxy): (\S+)/.exec(text);
  if (lookup && host === null) host = lookup[1]!;
  const bare = /\b(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})\b/.exec(text);
  if (bare && host === null) {
    host = bare[1]!;
    port = Number(bare[2]);
  }

  const code = /code (\d{3})\b/.exec(text) ?? /HTTP code (\d{3})/.exec(text) ?? /response (\d{3})\b/.exec(text) ?? /HTTP\/1\.[01] (\d{3})/.exec(text);
  const httpCode = code ? Number(code[1]) : null;

  let leg: Leg = "unknown";
  if (agentWords.test(text) || (port !== null && tunnelPorts.has(port)) || (port === 443 && /rpc error/i.test(text))) leg = "server";
  if (port === 10250 || port === 10255 || (leg === "unknown" && destinationWords.test(text))) leg = "destination";
  return { host, port, nodeName, httpCode, leg, agentEndpoint: agentEndpointOf(ownExplanation), raw: text };
}
