// The two ends of a bulk transfer for flow-control tests: a source that streams as fast as its
// connection takes it, and a reader slower than the tunnel but steady (`kubectl cp` out of a pod
// to a laptop on a slow link).
import type net from "node:net";

const sourceChunk = Buffer.alloc(64 * 1024, 0x61);

/** Writes to `socket` as fast as it takes the bytes, `limitBytes` at most (every load is bounded). */
export function streamBytes(socket: net.Socket, limitBytes: number): void {
  let sent = 0;
  const pump = () => {
    while (sent < limitBytes && socket.writable) {
      sent += sourceChunk.length;
      if (!socket.write(sourceChunk)) return void socket.once("drain", pump);
    }
  };
  pump();
}

/**
 * Reads a socket at about `bytesPerSecond`, pausing it whenever it is ahead; resolves with the
 * bytes read once `bytes` arrived, rejects when the socket closes first or after timeoutMs.
 */
export function readSlowly(socket: net.Socket, bytes: number, bytesPerSecond: number, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let got = 0;
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => fail(`read ${got} of ${bytes} bytes in ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string) => {
      clearTimeout(t);
      socket.destroy();
      reject(new Error(why));
    };
    socket.on("close", () => fail(`the connection closed after ${got} of ${bytes} bytes`));
    socket.on("data", (c: Buffer) => {
      got += c.length;
      if (got >= bytes) {
        clearTimeout(t);
        resolve(got);
        socket.destroy();
        return;
      }
      const aheadMs = (got / bytesPerSecond) * 1000 - (performance.now() - started);
      if (aheadMs > 5) {
        socket.pause();
        setTimeout(() => socket.resume(), aheadMs);
      }
    });
    socket.resume();
  });
}
