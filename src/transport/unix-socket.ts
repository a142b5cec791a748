// Unix socket files: a listener on a path that a crashed process left behind must remove the stale
// file first (upstream --delete-existing-uds-file), but never anything that is not a socket.
import { lstat, unlink } from "node:fs/promises";
import { TunnelError } from "../protocol/tunnel-error.js";

export async function removeStaleSocket(path: string): Promise<void> {
  try {
    const stat = await lstat(path);
    if (!stat.isSocket()) throw new TunnelError("INVALID_OPTION", `${path} exists and is not a socket; refusing to remove it`);
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
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
