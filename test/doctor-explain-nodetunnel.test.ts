// `doctor explain` given nodetunnel's own "No agent available" text: the server names the endpoint
// its agents dial (src/server/explain-dial-failure.ts), and the suggested egress probe must dial
// that endpoint with the ALPN a nodetunnel server negotiates there (h2), not AKS's 443 front end
// with [konnectivity], which a server dialled directly answers with no ALPN (a false problem).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { explainError } from "../src/doctor/explain/index.js";
import { explainNoAgent, withExplanation } from "../src/server/explain-dial-failure.js";

interface Cause { id: string; why: string; check: string }
const causesOf = (text: string) => explainError(text)["causes"] as Cause[];
const serverText = (agentEndpoint: string, address = "10.224.0.5:10250") =>
  withExplanation("No agent available", explainNoAgent({ address, agentEndpoint }));

describe("doctor explain: nodetunnel's own No agent available", () => {
  it("the HTTP CONNECT answer: the egress check dials the server's agent endpoint with --alpn h2", () => {
    const text = `HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\ncurrently no tunnels available: ${serverText("127.0.0.1:34097")}`;
    const r = explainError(text);
    assert.equal(r["mechanism"], "no-agent");
    const causes = causesOf(text);
    assert.equal(causes[0]?.id, "egress");
    assert.equal(causes[0]?.check, "nodetunnel doctor egress --server 127.0.0.1:34097 --alpn h2");
    assert.match(causes[0]!.why, /tunnel server 127\.0\.0\.1:34097/);
    assert.doesNotMatch(JSON.stringify(r), /konnectivity|<tunnel-server>|:443/);
    assert.match(r.summary, /check with: nodetunnel doctor egress --server 127\.0\.0\.1:34097 --alpn h2$/);
  });

  it("as kube-apiserver passes it on, and in the brief's short form", () => {
    for (const text of [
      `Error from server: error dialing backend: ${serverText("10.225.0.4:8132")}`,
      "500 Internal Server Error: currently no tunnels available: No agent available — no connected agent serves 127.1.4; … egress from it to 10.225.0.4:8132 open?",
    ]) {
      assert.equal(causesOf(text)[0]?.check, "nodetunnel doctor egress --server 10.225.0.4:8132 --alpn h2", text);
    }
  });

  it("a server on every address (<this server>) keeps the port; an IPv6 host gets brackets", () => {
    assert.equal(causesOf(serverText("<this server>:8132"))[0]?.check, "nodetunnel doctor egress --server <tunnel-server>:8132 --alpn h2");
    assert.equal(causesOf(serverText("::1:8132"))[0]?.check, "nodetunnel doctor egress --server [::1]:8132 --alpn h2");
  });

  it("a server whose agent port is 443 is still a nodetunnel server dialled directly: h2", () => {
    assert.equal(causesOf(serverText("10.225.0.4:443"))[0]?.check, "nodetunnel doctor egress --server 10.225.0.4:443 --alpn h2");
  });

  it("without nodetunnel's explanation, the server is unknown: AKS's 443 front end with [konnectivity]", () => {
    const check = causesOf("Error from server: error dialing backend: No agent available")[0]?.check;
    assert.equal(check, "nodetunnel doctor egress --server <tunnel-server>:443 --alpn konnectivity");
  });
});
