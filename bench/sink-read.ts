// Reads handed to a sink as views of one shared buffer, valid only during the call, as a Go
// client's io.Copy reads into one reused buffer. Node's 'data' events allocate a 64 KiB buffer per
// read, and in the bench process (a larger heap than a client's) that rate of allocation kept V8
// in back-to-back mark-compacts: 2.3–3.5 ms of the client's CPU per MB downloaded, the cores the
// server and agent needed (docs/benchmarks.md, Method).
import type { OnReadOpts } from "node:net";

// One buffer for every connection: each read is handed on before the next one fills it.
const buffer = Buffer.allocUnsafe(64 * 1024);

export function readInto(deliver: (bytes: Buffer) => void): OnReadOpts {
  return {
    buffer,
    callback: (n: number) => {
      deliver(buffer.subarray(0, n));
      return true; // keep reading (false would pause the socket)
    },
  };
}
