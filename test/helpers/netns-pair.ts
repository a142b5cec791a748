// Two network namespaces for the doctor's kernel cross-checks: a "node" (eth0, `nodeAddr`/16)
// where the rules under test are loaded and a listener accepts on `ports`, and a "peer"
// (peer0, 10.250.0.2/16 plus the extra /32 source addresses) that sends real SYNs to it over a
// veth. ICMP rate limiting is off inside the node namespace only, so a burst of REJECTs to one
// source does not turn into timeouts. Needs root; traffic stays inside the two namespaces.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";

/** Accepts and closes on every port given, printing "ready" once all are bound. */
const LISTEN = `
import socket, sys, threading
def serve(port):
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("0.0.0.0", port)); t.listen(128)
    return t
socks = [serve(int(p)) for p in sys.argv[1:]]
print("ready", flush=True)
def loop(t):
    while True:
        c, _ = t.accept(); c.close()
ts = [threading.Thread(target=loop, args=(t,), daemon=True) for t in socks]
[t.start() for t in ts]; [t.join() for t in ts]
`;

export interface NetnsPair {
  readonly node: string;
  readonly peer: string;
  /** Runs a command (args[0] is the program), optionally with stdin; throws on failure. */
  sh(args: string[], input?: string): string;
  /** Kills the listener and deletes both namespaces (idempotent). */
  remove(): void;
}

export function runCommand(args: string[], input?: string, timeoutMs = 20_000): string {
  return execFileSync(args[0]!, args.slice(1), { input, encoding: "utf8", timeout: timeoutMs, stdio: ["pipe", "pipe", "pipe"] });
}

export async function startNetnsPair(o: { name: string; nodeAddr: string; sources: readonly string[]; ports: readonly number[] }): Promise<NetnsPair> {
  const node = `nt-${o.name}-${process.pid}-n`;
  const peer = `nt-${o.name}-${process.pid}-p`;
  let listener: ChildProcess | undefined;
  const pair: NetnsPair = {
    node,
    peer,
    sh: (args, input) => runCommand(args, input),
    remove() {
      if (listener?.pid !== undefined && listener.exitCode === null) listener.kill();
      spawnSync("ip", ["netns", "del", node]);
      spawnSync("ip", ["netns", "del", peer]);
    },
  };
  try {
    const sh = pair.sh;
    sh(["ip", "netns", "add", node]);
    sh(["ip", "netns", "add", peer]);
    sh(["ip", "link", "add", "eth0", "netns", node, "type", "veth", "peer", "name", "peer0", "netns", peer]);
    for (const [ns, dev, addr] of [[node, "eth0", `${o.nodeAddr}/16`], [peer, "peer0", "10.250.0.2/16"]] as const) {
      sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
      sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
      sh(["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    sh(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=100000"]);
    const extra = o.sources.filter((s) => s !== "10.250.0.2");
    if (extra.length > 0) sh(["ip", "-n", peer, "-batch", "-"], extra.map((s) => `addr add ${s}/32 dev peer0`).join("\n") + "\n");
    listener = spawn("ip", ["netns", "exec", node, "python3", "-c", LISTEN, ...o.ports.map(String)], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      listener!.stdout!.once("data", () => resolve());
      listener!.once("exit", (code) => reject(new Error(`listener exited ${code}`)));
    });
  } catch (err) {
    pair.remove();
    throw err;
  }
  return pair;
}

/**
 * Opens one TCP connection per (source, destination) pair at once from namespace `ns`, each bound
 * to its source, and tells how each ended: connected, refused, unreachable, timeout (0.5 s), or
 * `error <errno>`. The doctor's kernel cross-checks compare these with the evaluators' effects.
 */
export function probeConnections(ns: string, port: number, pairs: ReadonlyArray<readonly [source: string, destination: string]>): string[] {
  return runCommand(["ip", "netns", "exec", ns, "python3", "-c", PROBE, String(port), ...pairs.map(([s, d]) => `${s}>${d}`)]).trim().split(" ");
}

const PROBE = `
import socket, sys, errno, threading
port = int(sys.argv[1]); pairs = [a.split(">") for a in sys.argv[2:]]; out = {}
def probe(i, src, dst):
    s = socket.socket(); s.bind((src, 0)); s.settimeout(0.5)
    try: s.connect((dst, port)); out[i] = "connected"
    except socket.timeout: out[i] = "timeout"
    except ConnectionRefusedError: out[i] = "refused"
    except OSError as e: out[i] = "unreachable" if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "error %d" % e.errno
    finally: s.close()
ts = [threading.Thread(target=probe, args=(i, s, d)) for i, (s, d) in enumerate(pairs)]
[t.start() for t in ts]; [t.join() for t in ts]
print(" ".join(out[i] for i in range(len(pairs))))
`;

/** Why a kernel cross-check cannot run here (not root, a tool missing), or false. */
export function kernelCheckSkip(tools: readonly string[], install: string): string | false {
  if (process.getuid?.() !== 0) return "needs root: creates network namespaces";
  const missing = tools.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
  return missing.length === 0 ? false : `needs ${missing.join(", ")} (${install})`;
}
