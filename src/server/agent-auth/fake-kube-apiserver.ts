// A stand-in for kube-apiserver's TokenReview endpoint, for tests and labs: HTTPS on loopback,
// answering POST /apis/authentication.k8s.io/v1/tokenreviews the way the real one does — a token
// is authenticated only for the audiences it was issued for, and `status.audiences` is the
// intersection with `spec.audiences`. The caller must present `clientToken` or a client certificate.
// It also keeps coordination.k8s.io/v1 Leases in memory (get, list by equality label selector,
// create, update and delete, with resourceVersion checks as the real API makes them).
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";

export interface FakeToken {
  readonly username: string;
  readonly audiences: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

export interface FakeKubeApiserverOptions {
  readonly cert: string;
  readonly key: string;
  /** Verifies client certificates when set (they are then accepted instead of a bearer token). */
  readonly ca?: string;
  /** The bearer token the server's own identity must present. */
  readonly clientToken?: string;
  readonly tokens: Readonly<Record<string, FakeToken>>;
}

export interface ReviewRequest {
  readonly token: string;
  readonly audiences: readonly string[];
  readonly authorization: string | undefined;
}

export interface FakeKubeApiserver {
  readonly url: string;
  readonly requests: ReviewRequest[];
  /**
   * How the next requests are answered: normally, after a delay, with an HTTP error, or as a
   * TokenReview server that ignores spec.audiences (it checks every token against its own
   * audience, accepts any known token, and answers with no status.audiences).
   */
  behaviour: { kind: "normal" } | { kind: "delay"; ms: number } | { kind: "status"; code: number } | { kind: "audienceUnaware" };
  /** Leases by `namespace/name`, as stored (with metadata.resourceVersion). */
  readonly leases: Map<string, FakeLease>;
  close(): Promise<void>;
}

export interface FakeLease {
  metadata: { name: string; namespace: string; resourceVersion: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

const leasePath = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/?]+)\/leases(?:\/([^/?]+))?(?:\?(.*))?$/;

export async function startFakeKubeApiserver(o: FakeKubeApiserverOptions): Promise<FakeKubeApiserver> {
  const requests: ReviewRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let version = 1;
  const fake: FakeKubeApiserver = {
    url: "",
    requests,
    behaviour: { kind: "normal" },
    leases: new Map(),
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = https.createServer({ cert: o.cert, key: o.key, ca: o.ca, requestCert: o.ca !== undefined, rejectUnauthorized: false }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const send = (code: number, body: unknown) => {
        res.writeHead(code, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      const socket = req.socket as TLSSocket;
      const hasClientCert = o.ca !== undefined && socket.authorized;
      if (!hasClientCert && (o.clientToken === undefined || req.headers.authorization !== `Bearer ${o.clientToken}`)) {
        return send(401, { kind: "Status", code: 401, message: "Unauthorized" });
      }
      const lease = leasePath.exec(req.url ?? "");
      if (lease) {
        const b = fake.behaviour;
        if (b.kind === "status") return send(b.code, { kind: "Status", code: b.code, reason: "InternalError", message: "injected failure" });
        return serveLease(req.method ?? "", decodeURIComponent(lease[1]!), lease[2] === undefined ? undefined : decodeURIComponent(lease[2]), new URLSearchParams(lease[3] ?? ""), Buffer.concat(chunks).toString("utf8"), send);
      }
      if (req.method !== "POST" || req.url !== "/apis/authentication.k8s.io/v1/tokenreviews") return send(404, { kind: "Status", code: 404 });
      let spec: { token?: unknown; audiences?: unknown } = {};
      try {
        spec = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { spec?: typeof spec }).spec ?? {};
      } catch {
        return send(400, { kind: "Status", code: 400 });
      }
      const token = typeof spec.token === "string" ? spec.token : "";
      const audiences = Array.isArray(spec.audiences) ? spec.audiences.filter((a): a is string => typeof a === "string") : [];
      requests.push({ token, audiences, authorization: req.headers.authorization });
      const answer = () => {
        const b = fake.behaviour;
        if (b.kind === "status") return send(b.code, { kind: "Status", code: b.code, message: "injected failure" });
        const known = o.tokens[token];
        if (b.kind === "audienceUnaware") {
          const status = known
            ? { authenticated: true, user: { username: known.username, uid: "uid-1", groups: ["system:serviceaccounts"], extra: known.extra ?? {} } }
            : { authenticated: false, error: "invalid bearer token" };
          return send(201, { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token: "", audiences }, status });
        }
        const matching = known ? known.audiences.filter((a) => audiences.length === 0 || audiences.includes(a)) : [];
        const status = known && matching.length > 0
          ? { authenticated: true, user: { username: known.username, uid: "uid-1", groups: ["system:serviceaccounts"], extra: known.extra ?? {} }, audiences: matching }
          : { authenticated: false, error: known ? "token audiences do not match" : "invalid bearer token" };
        send(201, { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token: "", audiences }, status });
      };
      if (fake.behaviour.kind === "delay") {
        const t = setTimeout(() => {
          timers.delete(t);
          if (!res.destroyed) answer();
        }, fake.behaviour.ms);
        timers.add(t);
      } else answer();
    });
  });
  const status = (code: number, reason: string, message: string) => ({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message });
  function serveLease(method: string, ns: string, name: string | undefined, query: URLSearchParams, text: string, send: (code: number, body: unknown) => void): void {
    const key = `${ns}/${name ?? ""}`;
    const stored = fake.leases.get(key);
    let body: { metadata?: { name?: string; resourceVersion?: string; labels?: Record<string, string> }; spec?: Record<string, unknown>; preconditions?: { resourceVersion?: string } } = {};
    if (text !== "") {
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        return send(400, status(400, "BadRequest", "body is not JSON"));
      }
    }
    const save = (code: number) => {
      const lease: FakeLease = { metadata: { name: body.metadata?.name ?? name ?? "", namespace: ns, resourceVersion: String(++version), labels: body.metadata?.labels }, spec: body.spec };
      fake.leases.set(`${ns}/${lease.metadata.name}`, lease);
      send(code, { apiVersion: "coordination.k8s.io/v1", kind: "Lease", ...lease });
    };
    if (method === "GET" && name === undefined) {
      const wanted = (query.get("labelSelector") ?? "").split(",").filter((p) => p !== "").map((p) => p.split("=") as [string, string]);
      const items = [...fake.leases.values()].filter((l) => l.metadata.namespace === ns && wanted.every(([k, v]) => l.metadata.labels?.[k] === v));
      return send(200, { apiVersion: "coordination.k8s.io/v1", kind: "LeaseList", metadata: { resourceVersion: String(version) }, items });
    }
    if (method === "POST" && name === undefined) {
      if (fake.leases.has(`${ns}/${body.metadata?.name ?? ""}`)) return send(409, status(409, "AlreadyExists", `leases "${body.metadata?.name}" already exists`));
      return save(201);
    }
    if (!stored) return send(404, status(404, "NotFound", `leases "${name}" not found`));
    if (method === "GET") return send(200, { apiVersion: "coordination.k8s.io/v1", kind: "Lease", ...stored });
    if (method === "PUT") {
      if (body.metadata?.resourceVersion !== stored.metadata.resourceVersion) return send(409, status(409, "Conflict", "the object has been modified"));
      return save(200);
    }
    if (method === "DELETE") {
      const rv = body.preconditions?.resourceVersion;
      if (rv !== undefined && rv !== stored.metadata.resourceVersion) return send(409, status(409, "Conflict", "precondition failed: resourceVersion"));
      fake.leases.delete(key);
      return send(200, status(200, "", "deleted"));
    }
    send(405, status(405, "MethodNotAllowed", method));
  }
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  (fake as { url: string }).url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
