import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { probeUnixSocket, removeStaleSocket } from "./unix-socket.js";

it("tells a served socket from a stale one and from none, and removes only a stale one", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "nt-unix-socket-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const served = join(dir, "served.sock");
  const server = net.createServer((s) => s.destroy()).listen(served);
  await once(server, "listening");
  t.after(() => server.close());
  assert.deepEqual(await probeUnixSocket(served), { state: "served" });
  assert.deepEqual(await probeUnixSocket(join(dir, "none.sock")), { state: "absent" });
  // Left by a process that died: bound, never unlinked.
  const stale = join(dir, "stale.sock");
  const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(stale)},()=>console.log("up"))`], { stdio: ["ignore", "pipe", "inherit"] });
  await once(child.stdout, "data");
  child.kill("SIGKILL");
  await once(child, "close");
  assert.deepEqual(await probeUnixSocket(stale), { state: "stale" });

  // removeStaleSocket deletes only the stale one: a served socket and a regular file stop it.
  await assert.rejects(removeStaleSocket(served, "--uds-name"), /another process serves .*served\.sock; stop it or choose another --uds-name/);
  writeFileSync(join(dir, "file"), "not a socket");
  await assert.rejects(removeStaleSocket(join(dir, "file")), /exists and is not a socket/);
  await removeStaleSocket(stale);
  assert.equal(existsSync(stale), false);
  assert.equal(existsSync(served), true);
  await removeStaleSocket(join(dir, "none.sock"));
});
