// `lab curl`'s reason for a failed CONNECT: curl shows the status but never the body, where the
// tunnel says why (the dial error and its explanation). The server records every failed dial with
// that text; the lab reads the record for the dial curl made, and shows it beside curl's lines.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { dialFailureOf, withDialFailure } from "./lab.js";

const timeout = { error: "dial tcp 10.224.0.5:10250: i/o timeout", explanation: "the agent reached nothing at 10.224.0.5:10250 before its dial timeout" };
const snapshot = (failures: unknown[]) => JSON.stringify({ agents: [], pendingDials: [], recentFailures: failures });

describe("lab curl: the server's reason for a failed CONNECT", () => {
  test("dialFailureOf: the newest failure for the address since the curl started, as the error body words it", () => {
    const json = snapshot([
      { at: 900, address: "10.224.0.5:10250", agentId: "node-1", reason: "error_response", error: "old", explanation: "before this curl" },
      { at: 1000, address: "10.224.0.5:10250", agentId: "node-1", reason: "error_response", ...timeout },
      { at: 1001, address: "10.224.0.6:10250", agentId: "node-1", reason: "error_response", error: "another node", explanation: "x" },
    ]);
    assert.equal(dialFailureOf(json, "10.224.0.5:10250", 950), `${timeout.error} — ${timeout.explanation}`);
    assert.equal(dialFailureOf(json, "10.224.0.5:10250", 1001), null, "nothing since the curl started");
    assert.equal(dialFailureOf(json, "10.224.0.7:10250", 0), null);
    assert.equal(dialFailureOf("not json", "10.224.0.5:10250", 0), null);
    assert.equal(dialFailureOf("{}", "10.224.0.5:10250", 0), null);
  });

  test("withDialFailure: a `* CONNECT` line before curl's own error line, so lab curl prints it", () => {
    const stderr = "* Connected to 127.0.0.1\n< HTTP/1.1 504 Gateway Timeout\n* CONNECT tunnel failed, response 504\ncurl: (56) CONNECT tunnel failed, response 504\n";
    const reason = `${timeout.error} — ${timeout.explanation}`;
    const shown = withDialFailure(stderr, 504, reason).split("\n").filter((l) => /^curl:|^< HTTP|^\* CONNECT/.test(l));
    assert.deepEqual(shown, [
      "< HTTP/1.1 504 Gateway Timeout", "* CONNECT tunnel failed, response 504", `* CONNECT 504: the server says: ${reason}`, "curl: (56) CONNECT tunnel failed, response 504",
    ]);
    assert.equal(withDialFailure(stderr, 504, null), stderr);
    assert.equal(withDialFailure("", 502, "x"), "* CONNECT 502: the server says: x\n");
  });
});
