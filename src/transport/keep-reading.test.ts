import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { GrpcClient } from "./grpc-client.js";
import { GrpcServer } from "./grpc-server.js";
import { keptReadingCount } from "./keep-reading.js";

// What keep-reading prevents is shown end to end by test/data-integrity.test.ts (512 KiB in
// flight) and test/fault-processes.test.ts (kill -9 during a bulk download); here: who is kept
// reading, and that nothing is held once sessions close.
it("keeps client sessions and readWhileWriting server sessions reading, and forgets them when they close", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "nt-keep-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const before = keptReadingCount();
  const agentLink = new GrpcServer({}, { readWhileWriting: true });
  const frontend = new GrpcServer({});
  await agentLink.listen({ path: join(dir, "a.sock") });
  await frontend.listen({ path: join(dir, "f.sock") });
  const toAgentLink = await GrpcClient.connect({ path: join(dir, "a.sock") });
  const toFrontend = await GrpcClient.connect({ path: join(dir, "f.sock") });
  // The server side of a session exists once its first frame arrived.
  for (let i = 0; i < 100 && (agentLink.sessionCount < 1 || frontend.sessionCount < 1); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(keptReadingCount() - before, 3, "both clients and the agent-link server session; not the frontend's");
  toAgentLink.destroy();
  toFrontend.destroy();
  await Promise.all([once(toAgentLink, "close"), once(toFrontend, "close")]);
  await Promise.all([agentLink.close(), frontend.close()]);
  assert.equal(keptReadingCount(), before);
});
