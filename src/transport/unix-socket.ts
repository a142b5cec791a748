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
