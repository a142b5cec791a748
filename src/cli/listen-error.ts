// A listener that cannot bind, said in terms of the flag that configured it. Node's words
// ("listen EADDRINUSE: address already in use :::8132", or EACCES for a Unix socket whose
// directory does not exist, even as root) name neither the flag nor the fix.
import { statSync } from "node:fs";
import { dirname } from "node:path";
import { UsageError } from "./command-support.js";

/** One listener of a command and the flags that configure it. */
export interface FlagListener {
  /** The flag of the port or the socket path: "--agent-port", "--uds-name", "--frontend". */
  readonly flag: string;
  /** The flag's value as given, when it is more than the port or path ("grpc=unix:/x" of --frontend). */
  readonly value?: string;
  /** The flag of its bind address, if it has one: "--agent-bind-address". */
  readonly bindFlag?: string;
  readonly port?: number;
  readonly host?: string;
  readonly path?: string;
}

const isAnyAddress = (host: string | undefined) => host === undefined || host === "" || host === "0.0.0.0" || host === "::";
const overlaps = (a: FlagListener, b: FlagListener) => isAnyAddress(a.host) || isAnyAddress(b.host) || a.host === b.host;
const hostPort = (host: string | undefined, port: number) => `${isAnyAddress(host) ? "*" : host!.includes(":") ? `[${host}]` : host}:${port}`;
const uid = () => (typeof process.getuid === "function" ? ` (this process runs as uid ${process.getuid()})` : "");

/**
 * The usage error (exit 2) for `err` when it is a listener's failure to bind one of `listeners`;
 * undefined for anything else, which the caller reports as it is.
 */
export function explainListenError(err: unknown, listeners: readonly FlagListener[]): UsageError | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (typeof e !== "object" || e === null || (e.syscall !== "listen" && e.syscall !== "bind")) return undefined;
  const socket = listeners.find((l) => l.path !== undefined && l.path === e.address);
  if (socket) return new UsageError(unixSocketProblem(socket, e));
  const matching = listeners.filter((l) => l.port !== undefined && l.port !== 0 && l.port === e.port);
  const listener = matching[0];
  if (!listener) return undefined;
  const port = listener.port!;
  const where = hostPort(listener.host, port);
  const given = `${listener.flag}=${listener.value ?? port}`;
  switch (e.code) {
    case "EADDRINUSE": {
      const clashing = matching.filter((l) => l !== listener && overlaps(l, listener));
      if (clashing.length > 0) {
        const flags = [listener, ...clashing].map((l) => l.flag);
        return new UsageError(`${flags.join(" and ")} are ${flags.length === 2 ? "both" : "all"} ${port} on the same address: each listener needs a port of its own`);
      }
      return new UsageError(`${given}: ${where} is already in use: another process listens there (\`ss -ltnp 'sport = :${port}'\` names it); stop it or choose another ${listener.flag}`);
    }
    case "EACCES":
      return new UsageError(port < 1024
        ? `${given}: ports below 1024 need root or the CAP_NET_BIND_SERVICE capability${uid()}; choose a port from 1024 up, or grant the capability`
        : `${given}: permission denied listening on ${where}${uid()}`);
    case "EADDRNOTAVAIL":
      return new UsageError(`${listener.bindFlag ?? listener.flag}=${listener.host}: no interface of this machine has that address (${listener.flag} listens on it); give one of its addresses, or leave it empty for all`);
    default:
      return new UsageError(`${given}: cannot listen on ${where}: ${e.message}`);
  }
}

function unixSocketProblem(l: FlagListener, e: NodeJS.ErrnoException): string {
  const path = l.path!;
  const given = l.value === undefined ? `${l.flag} ${path}` : `${l.flag}=${l.value}`;
  const dir = dirname(path);
  let isDirectory: boolean | undefined;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return `${given}: the directory ${dir} does not exist; create it (or mount it) first, or choose another ${l.flag}`;
  }
  if (isDirectory === false) return `${given}: ${dir} is not a directory; choose another ${l.flag}`;
  switch (e.code) {
    case "EACCES":
    case "EPERM":
      return `${given}: permission denied creating a socket in ${dir}${uid()}; give the process write access to ${dir}, or choose another ${l.flag}`;
    case "EADDRINUSE":
      return `${given}: the file exists and --delete-existing-uds-file=false keeps it; remove it, or let the server delete it when stale (--delete-existing-uds-file=true, the default)`;
    default:
      return `${given}: cannot listen: ${e.message}`;
  }
}
