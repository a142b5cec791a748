// Unix socket files: a listener on a path that a crashed process left behind must remove the stale
// file first (upstream --delete-existing-uds-file), but never anything that is not a socket, and
// never a socket another running process listens on: that looks the same on disk, and deleting it
// would silently take kube-apiserver's traffic from that server. Only a connect tells them apart:
// a stale socket refuses it (nobody listens), a live one accepts.
import { lstat, unlink } from "node:fs/promises";
import net from "node:net";
import { TunnelError } from "../protocol/tunnel-error.js";

/**
 * "unknown": the connect failed otherwise (permission denied, a full backlog: `code`) or did not
 * finish in time. Only a refusal proves a file stale.
 */
export type SocketState = { state: "absent" | "stale" | "served" } | { state: "unknown"; code: string };

/** What is at `path`: nothing, a socket nobody listens on, one a process serves, or cannot tell. */
export async function probeUnixSocket(path: string, timeoutMs = 1000): Promise<SocketState> {
  return new Promise((resolve) => {
    const socket = net.connect({ path });
    const done = (state: SocketState) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(state);
    };
    const timer = setTimeout(() => done({ state: "unknown", code: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.once("connect", () => done({ state: "served" }));
    socket.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") done({ state: "absent" });
      // A regular file refuses too: it is then refused below as not a socket.
      else if (err.code === "ECONNREFUSED" || err.code === "ENOTSOCK") done({ state: "stale" });
      else done({ state: "unknown", code: err.code ?? err.message });
    });
  });
}

/**
 * Removes the socket file at `path` when a crashed process left it; throws INVALID_OPTION for
 * anything else there: not a socket, a socket a process serves, or one it cannot tell. `flag` is
 * the setting that chose the path, named in the error ("--uds-name").
 */
export async function removeStaleSocket(path: string, flag = "socket path"): Promise<void> {
  try {
    const stat = await lstat(path);
    if (!stat.isSocket()) throw new TunnelError("INVALID_OPTION", `${path} exists and is not a socket; refusing to remove it`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const probe = await probeUnixSocket(path);
  if (probe.state === "served") {
    throw new TunnelError("INVALID_OPTION", `another process serves ${path}; stop it or choose another ${flag} (--delete-existing-uds-file deletes only a stale socket, which refuses connections)`);
  }
  if (probe.state === "unknown") {
    throw new TunnelError("INVALID_OPTION", `cannot tell whether another process serves ${path} (connect: ${probe.code}); remove the file if it is stale, or choose another ${flag}`);
  }
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}

/**
 * Runs `listen`, which must bind synchronously (net.Server#listen(path) does: the bind happens
 * before it returns), with the process umask set so that the socket file is created with `mode` at
 * most. A chmod after listening is not enough: under a permissive umask (0, which some container
 * entry points set) the socket existed 0777 until the chmod, and another user could connect in
 * between and keep the connection. Upstream binds under umask 0007 (konnectivity.md §1.7).
 *
 * The one place outside cli/ that touches process state, because Node offers no other way to give
 * a socket file its mode at creation. The umask is restored before anything else runs on this
 * thread; a file that a libuv worker thread creates meanwhile only gets a narrower mode. In a
 * worker thread process.umask(mask) throws, and so does this: the mode could not be guaranteed.
 */
export function bindWithMode<T>(mode: number, listen: () => T): T {
  const previous = process.umask(~mode & 0o777);
  try {
    return listen();
  } finally {
    process.umask(previous);
  }
}
