// Parses `ss -tan` (State Recv-Q Send-Q Local:Port Peer:Port [Process], optionally with a Netid
// column) and `conntrack -L` (also `-o extended`) into outbound connections, for the churn check
// (doctor-cli.md `snat --connections`). Format detected from the content.
import { DoctorInputError } from "../input-error.js";

export interface Connection {
  readonly protocol: "tcp" | "udp";
  /** Upper case with underscores: ESTABLISHED, TIME_WAIT, SYN_SENT...; "" for UDP. */
  readonly state: string;
  readonly source: string;
  /** `ip:port` (IPv6 in brackets); from conntrack, the address after any DNAT (the reply's source). */
  readonly destination: string;
  /** conntrack only: the reply goes to another address than the source, so this device SNATed the flow. */
  readonly sourceNatted?: boolean;
}

export interface ParsedConnections {
  readonly format: "ss" | "conntrack";
  readonly connections: readonly Connection[];
}

const ssStates: Record<string, string> = {
  ESTAB: "ESTABLISHED", "TIME-WAIT": "TIME_WAIT", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV",
  "FIN-WAIT-1": "FIN_WAIT_1", "FIN-WAIT-2": "FIN_WAIT_2", "CLOSE-WAIT": "CLOSE_WAIT", "LAST-ACK": "LAST_ACK",
  CLOSING: "CLOSING", CLOSED: "CLOSED", LISTEN: "LISTEN", UNCONN: "UNCONN",
};

/** `10.0.0.1:443`, `[::ffff:10.0.0.1]:443`, `[fd00::1]:443`, `::ffff:10.0.0.1:443`, `*:*` → host and port. */
function splitAddress(s: string): { host: string; port: string } | null {
  const m = /^\[(.+)\]:(\S+)$/.exec(s) ?? /^(.*):([^:]+)$/.exec(s);
  if (!m) return null;
  let host = m[1]!.replace(/%\S+$/, "");
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(host)) host = host.slice(7);
  return { host, port: m[2]! };
}

const joinAddress = (host: string, port: string) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);

function parseSs(lines: readonly string[]): Connection[] {
  const rows: { state: string; local: { host: string; port: string }; peer: { host: string; port: string }; proto: "tcp" | "udp" }[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "" || /^(Netid\s+)?State\s/.test(line)) return;
    let f = line.trim().split(/\s+/);
    let proto: "tcp" | "udp" = "tcp";
    if (/^(tcp|udp|u_str|u_dgr|u_seq|raw|nl|p_raw|p_dgr)$/.test(f[0]!)) {
      if (f[0] !== "tcp" && f[0] !== "udp") return;
      proto = f[0];
      f = f.slice(1);
    }
    const state = ssStates[f[0]!];
    const local = f[3] ? splitAddress(f[3]) : null;
    const peer = f[4] ? splitAddress(f[4]) : null;
    if (!state || !local || !peer || !/^\d+$/.test(f[1]!) || !/^\d+$/.test(f[2]!)) {
      throw new DoctorInputError(`not an ss line: ${line.trim()}`, { line: i + 1, expected: "State Recv-Q Send-Q Local-Address:Port Peer-Address:Port, as `ss -tan` prints" });
    }
    rows.push({ state, local, peer, proto });
  });
  // Connections accepted on a listening port are inbound: they use no SNAT port.
  const listening = new Set(rows.filter((r) => r.state === "LISTEN").map((r) => r.local.port));
  return rows
    .filter((r) => r.state !== "LISTEN" && r.peer.port !== "*" && !listening.has(r.local.port))
    .map((r) => ({
      protocol: r.proto, state: r.proto === "udp" ? "" : r.state,
      source: joinAddress(r.local.host, r.local.port), destination: joinAddress(r.peer.host, r.peer.port),
    }));
}

function parseConntrack(lines: readonly string[]): Connection[] {
  const out: Connection[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "" || /^conntrack v[\d.]+/.test(line)) return;
    const f = line.trim().split(/\s+/);
    const at = f[0] === "ipv4" || f[0] === "ipv6" ? 2 : 0;
    const proto = f[at];
    // Each key twice: the original tuple, then the reply tuple.
    const all = (key: string) => f.filter((x) => x.startsWith(`${key}=`)).map((x) => x.slice(key.length + 1));
    const [src, replySrc] = all("src");
    const [dst, replyDst] = all("dst");
    const [sport, replySport] = all("sport");
    const [dport] = all("dport");
    if (!proto || !/^\d+$/.test(f[at + 1] ?? "") || !src || !dst) {
      throw new DoctorInputError(`not a conntrack line: ${line.trim()}`, { line: i + 1, expected: "proto num timeout [state] src= dst= sport= dport= ..., as `conntrack -L` prints" });
    }
    if (proto !== "tcp" && proto !== "udp") return;
    const state = proto === "tcp" && /^[A-Z_]+$/.test(f[at + 3] ?? "") ? f[at + 3]! : "";
    // Where the flow really goes is the reply tuple's source: after a DNAT (a Service ClusterIP
    // that kube-proxy sends to its endpoint) the original destination is only the virtual address.
    const destination = replySrc !== undefined ? joinAddress(replySrc, replySport ?? dport ?? "0") : joinAddress(dst, dport ?? "0");
    out.push({ protocol: proto, state, source: joinAddress(src, sport ?? "0"), destination, sourceNatted: replyDst !== undefined && replyDst !== src });
  });
  return out;
}

export function parseConnections(text: string): ParsedConnections {
  const lines = text.split("\n");
  const content = lines.filter((l) => l.trim() !== "");
  if (content.length === 0) throw new DoctorInputError("empty connections file", { line: 1, expected: "`ss -tan` or `conntrack -L` output" });
  if (content.some((l) => /\bsrc=\S+ dst=\S+/.test(l))) return { format: "conntrack", connections: parseConntrack(lines) };
  if (content.some((l) => /^(Netid\s+)?State\s+Recv-Q/.test(l) || /^(tcp\s+|udp\s+)?(ESTAB|TIME-WAIT|LISTEN|SYN-SENT|CLOSE-WAIT|FIN-WAIT-[12]|UNCONN)\s+\d+\s+\d+\s/.test(l))) {
    return { format: "ss", connections: parseSs(lines) };
  }
  const first = lines.findIndex((l) => l.trim() !== "");
  throw new DoctorInputError("neither `ss -tan` nor `conntrack -L` output", { line: first + 1, expected: "`ss -tan` or `conntrack -L` output" });
}
