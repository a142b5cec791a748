// A loopback port for a child process to bind by number (a CLI flag). Taken below the kernel's
// ephemeral range: a port the kernel hands out for `listen(0)` or an outgoing connection is free
// again the moment it is closed, and another test running at the same time can get the same one
// between our check and the child's bind (it happened: a server's health port answered for a
// different process). Ports below the range are never handed out that way.
import { readFileSync } from "node:fs";
import * as net from "node:net";

const given = new Set<number>();

function ephemeralStart(): number {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (low !== undefined && Number.isInteger(low) && low > 12_000) return low;
  } catch {
    // not Linux: IANA's dynamic range starts at 49152
  }
  return 32_768;
}

const canBind = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });

/** A port on 127.0.0.1 that was free a moment ago, not in the ephemeral range, not given before. */
export async function freePort(): Promise<number> {
  const high = ephemeralStart() - 1;
  const low = Math.max(10_000, high - 10_000);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (given.has(port) || !(await canBind(port))) continue;
    given.add(port);
    return port;
  }
  throw new Error(`no free port found between ${low} and ${high}`);
}
