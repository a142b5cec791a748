import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { explainListenError, type FlagListener } from "./listen-error.js";

const listenError = (code: string, address: string, port = -1) =>
  Object.assign(new Error(`listen ${code}: ${address}`), { code, syscall: "listen", address, port });

const listeners: FlagListener[] = [
  { flag: "--agent-port", bindFlag: "--agent-bind-address", port: 8132 },
  { flag: "--health-port", bindFlag: "--health-bind-address", port: 8134, host: "10.0.0.1" },
  { flag: "--admin-port", bindFlag: "--admin-bind-address", port: 8134, host: "127.0.0.1" },
  { flag: "--uds-name", path: "/nonexistent-dir/k.sock" },
  { flag: "--frontend", port: 8090, host: "127.0.0.1", value: "http-connect=tcp:127.0.0.1:8090" },
];

describe("explainListenError", () => {
  it("names the flag of a port in use and how to find its holder", () => {
    assert.match(explainListenError(listenError("EADDRINUSE", "::", 8132), listeners)!.message, /^--agent-port=8132: \*:8132 is already in use: another process listens there \(`ss -ltnp 'sport = :8132'`/);
    assert.match(explainListenError(listenError("EADDRINUSE", "127.0.0.1", 8090), listeners)!.message, /^--frontend=http-connect=tcp:127\.0\.0\.1:8090: 127\.0\.0\.1:8090 is already in use/);
  });

  it("tells two of the command's own flags on one port only when their addresses overlap", () => {
    const same = [...listeners, { flag: "--server-port", port: 8132 }];
    assert.match(explainListenError(listenError("EADDRINUSE", "::", 8132), same)!.message, /^--agent-port and --server-port are both 8132/);
    // 10.0.0.1 and 127.0.0.1 do not clash: someone else holds the port.
    assert.match(explainListenError(listenError("EADDRINUSE", "10.0.0.1", 8134), listeners)!.message, /^--health-port=8134: 10\.0\.0\.1:8134 is already in use/);
  });

  it("names the bind address no interface has, and privileged ports", () => {
    assert.match(explainListenError(listenError("EADDRNOTAVAIL", "10.0.0.1", 8134), listeners)!.message, /^--health-bind-address=10\.0\.0\.1: no interface/);
    assert.match(explainListenError(listenError("EACCES", "::", 443), [{ flag: "--agent-port", port: 443 }])!.message, /ports below 1024 need root or the CAP_NET_BIND_SERVICE capability/);
  });

  it("says a socket's directory does not exist (Node says EACCES)", () => {
    assert.match(explainListenError(listenError("EACCES", "/nonexistent-dir/k.sock"), listeners)!.message, /^--uds-name \/nonexistent-dir\/k\.sock: the directory \/nonexistent-dir does not exist/);
    const dir = mkdtempSync(join(tmpdir(), "nt-listen-error-"));
    try {
      const path = join(dir, "k.sock");
      assert.match(explainListenError(listenError("EADDRINUSE", path), [{ flag: "--uds-name", path }])!.message, /the file exists and --delete-existing-uds-file=false keeps it/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("leaves other errors alone", () => {
    assert.equal(explainListenError(new Error("boom"), listeners), undefined);
    assert.equal(explainListenError(listenError("EADDRINUSE", "::", 9999), listeners), undefined);
  });
});
