// Whether a Unix socket file is in use. --delete-existing-uds-file is for the file a crashed
// server left behind; a socket another running server listens on looks the same on disk, and
// deleting it would silently take kube-apiserver's traffic from that server. Only a connect tells
// them apart: a stale socket refuses it (nobody listens), a live one accepts.
import net from "node:net";

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
      // A regular file refuses too: removeStaleSocket then refuses to delete it.
      else if (err.code === "ECONNREFUSED" || err.code === "ENOTSOCK") done({ state: "stale" });
      else done({ state: "unknown", code: err.code ?? err.message });
    });
  });
}
