import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TunnelError } from "../protocol/index.js";
import { GrpcStatus, GrpcStatusError } from "../transport/index.js";
import { explainConnectError, type ConnectErrorContext } from "./explain-connect-error.js";

const context: ConnectErrorContext = { host: "10.0.0.11", caFile: "/ca.crt", hasToken: false, hasClientCertificate: false };
const tlsError = (code: string, message: string, extra: object = {}) => Object.assign(new Error(message), { code }, extra);

describe("explainConnectError", () => {
  it("says which CA file did not sign the server's certificate, or that the system's CAs were asked", () => {
    const err = tlsError("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate");
    assert.match(explainConnectError(err, context).message, /^cannot reach the server: unable to verify the first certificate: the server's certificate is not signed by --ca-cert \/ca\.crt/);
    assert.match(explainConnectError(err, { ...context, caFile: undefined }).message, /no --ca-cert was given, so the system's CAs were asked/);
  });

  it("lists the certificate's SANs and the address it lacks", () => {
    const err = tlsError("ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames: IP: 10.0.0.11 is not in the cert's list: ",
      { cert: { subjectaltname: "DNS:cp.example, IP Address:10.0.0.10" } });
    assert.match(explainConnectError(err, context).message,
      /the server's certificate names DNS:cp\.example, IP:10\.0\.0\.10, not 10\.0\.0\.11, which the agent dials \(--proxy-server-host\): .*needs IP:10\.0\.0\.11 among its SANs/);
    assert.match(explainConnectError(err, { ...context, servername: "cp2.example" }).message, /needs DNS:cp2\.example/);
  });

  it("names --service-account-token-path when the server wants a token and none was sent", () => {
    const err = new GrpcStatusError(GrpcStatus.UNAUTHENTICATED, "expected one authorization metadata value of the form 'Bearer <token>'");
    const e = explainConnectError(err, context);
    assert.match(e.message, /^the server refused the agent: grpc status 16 UNAUTHENTICATED: .*; the server authenticates agents by token: give --service-account-token-path/);
    assert.equal(e.isLocal, false);
    const cert = new GrpcStatusError(GrpcStatus.UNAUTHENTICATED, "a client certificate signed by --cluster-ca-cert is required");
    assert.match(explainConnectError(cert, context).message, /give --agent-cert and --agent-key/);
  });

  it("keeps a local problem (the token file) apart from the server", () => {
    const e = explainConnectError(new TunnelError("INVALID_OPTION", "cannot read --service-account-token-path /t: no such file (ENOENT)"), context);
    assert.deepEqual(e, { message: "cannot read --service-account-token-path /t: no such file (ENOENT)", isLocal: true });
    assert.equal(explainConnectError(Object.assign(new Error("connect ECONNREFUSED 10.0.0.11:8132"), { code: "ECONNREFUSED" }), context).message,
      "cannot reach the server: connect ECONNREFUSED 10.0.0.11:8132");
  });
});
