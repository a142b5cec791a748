// Entry script for the SNAT-exhaustion fault: a client on a node that opens a NEW connection per
// request to the control plane (troubleshooting.md §1.3 cause 5, §5.4: each connection to one
// destination IP:port takes its own SNAT port, held for the TIME_WAIT of the NAT after close).
// Each connection stays open (a request in flight that the slow server has not answered) until the
// run ends: Linux's NAT reuses a port whose connection is in TIME_WAIT for a new one, where Azure's
// load balancer holds it, so in the lab only connections still open use the ports up.
// Bounded in count and time; writes its running totals as JSON to the stats file after every attempt.
// Input: NODETUNNEL_LAB_CHATTY (JSON: host, port, attempts, connectTimeoutMs, statsFile).
import { renameSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";

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
      clearTimeout(timer);
      // A request whose headers are not finished: the connection stays open and is never reused.
      socket.write(`GET /healthz HTTP/1.1\r\nHost: ${config.host}\r\n`);
      socket.resume();
      open.push(socket);
      resolve("ok");
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

const open: Socket[] = [];
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
  writeStats();
}
stats.done = true;
writeStats();
// Hold the connections (bounded) until stopped, then close them.
const holdUntil = Date.now() + 120_000;
while (!stopped && Date.now() < holdUntil) await new Promise((r) => setTimeout(r, 200));
for (const s of open) s.destroy();

/** Written whole and renamed into place: the lab reads the file while this process runs. */
function writeStats(): void {
  writeFileSync(`${config.statsFile}.tmp`, JSON.stringify(stats));
  renameSync(`${config.statsFile}.tmp`, config.statsFile);
}
