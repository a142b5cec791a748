// Entry script for the SNAT-exhaustion fault: a client on a node that opens a NEW connection per
// request to the control plane (troubleshooting.md §1.3 cause 5, §5.4: each connection to one
// destination IP:port takes its own SNAT port, held for the TIME_WAIT of the NAT after close).
// Bounded in count and time; writes its running totals as JSON to the stats file after every attempt.
// Input: NODETUNNEL_LAB_CHATTY (JSON: host, port, attempts, connectTimeoutMs, statsFile).
import { writeFileSync } from "node:fs";
import { connect } from "node:net";

const config = JSON.parse(process.env.NODETUNNEL_LAB_CHATTY ?? "{}") as {
  host: string; port: number; attempts: number; connectTimeoutMs: number; statsFile: string;
};
const attempts = Math.min(Math.max(1, config.attempts), 500);
const stats = { attempts: 0, succeeded: 0, failed: 0, timeouts: 0, firstFailureAt: null as number | null, done: false };

function once(): Promise<"ok" | "timeout" | "error"> {
  return new Promise((resolve) => {
    const socket = connect({ host: config.host, port: config.port });
    let connected = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(connected ? "ok" : "timeout");
    }, config.connectTimeoutMs);
    socket.once("connect", () => {
      connected = true;
      // One request, then close from our side: the connection is not reused (no keep-alive).
      socket.end(`GET /healthz HTTP/1.1\r\nHost: ${config.host}\r\nConnection: close\r\n\r\n`);
      socket.resume();
    });
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(connected ? "ok" : "error");
    });
    socket.once("error", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve("error");
    });
  });
}

let stopped = false;
process.once("SIGTERM", () => { stopped = true; });
for (let i = 0; i < attempts && !stopped; i++) {
  const outcome = await once();
  stats.attempts++;
  if (outcome === "ok") stats.succeeded++;
  else {
    stats.failed++;
    if (outcome === "timeout") stats.timeouts++;
    stats.firstFailureAt ??= stats.attempts;
  }
  writeFileSync(config.statsFile, JSON.stringify(stats));
}
stats.done = true;
writeFileSync(config.statsFile, JSON.stringify(stats));
