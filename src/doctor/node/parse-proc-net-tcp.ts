// /proc/net/tcp and /proc/net/tcp6 → listening sockets (state 0A = TCP_LISTEN). Read instead of
// running `ss -ltn` so the check works on minimal node images; the kernel's format is fixed:
// "sl local_address rem_address st ...", addresses as hex in host byte order (little endian here).
import { DoctorInputError } from "../input-error.js";

export interface Listener {
  readonly address: string;
  readonly port: number;
}

const TCP_LISTEN = "0A";

export function parseProcNetTcp(text: string): Listener[] {
  const lines = text.split("\n");
  if (!/^\s*sl\s+local_address\s+(rem|remote)_address\s+st\b/.test(lines[0] ?? "")) {
    throw new DoctorInputError("not a /proc/net/tcp listing", { line: 1, expected: "the header 'sl local_address rem_address st ...'" });
  }
  const out: Listener[] = [];
  lines.slice(1).forEach((line, i) => {
    if (line.trim() === "") return;
    const f = line.trim().split(/\s+/);
    const m = /^([0-9A-Fa-f]+):([0-9A-Fa-f]{4})$/.exec(f[1] ?? "");
    if (!m || f[3] === undefined) throw new DoctorInputError(`unexpected /proc/net/tcp row: ${line.trim()}`, { line: i + 2, expected: "sl: ADDR:PORT ADDR:PORT ST ..." });
    if (f[3].toUpperCase() !== TCP_LISTEN) return;
    out.push({ address: hexAddress(m[1]!), port: parseInt(m[2]!, 16) });
  });
  return out;
}

// IPv4: one 32-bit word in host order; IPv6: four such words.
function hexAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)));
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  const v6 = groups.join(":");
  if (v6 === "0:0:0:0:0:0:0:0") return "::";
  if (v6.startsWith("0:0:0:0:0:ffff:")) return `::ffff:${bytes.slice(12).join(".")}`;
  return v6;
}

/** Does a listener accept connections to `ip:port` (a wildcard address counts)? */
export function listensOn(listeners: readonly Listener[], port: number, ip?: string): boolean {
  return listeners.some((l) => l.port === port && (ip === undefined || ["0.0.0.0", "::", ip, `::ffff:${ip}`].includes(l.address)));
}
