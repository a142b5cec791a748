// The server's Lease objects (upstream's --enable-lease-controller, konnectivity.md §2.1): each
// server holds `konnectivity-proxy-server-<serverID>` in --lease-namespace with the --lease-label
// labels, renewed every 15 s for 30 s, and every server deletes the expired leases under those
// labels every 15 s. Upstream agents started with --count-server-leases count the valid leases to
// learn how many servers to connect to; without them such an agent assumes one server, and in an
// HA control plane reaches only the server its load balancer picks.
import type { Logger } from "pino";
import { Counter, Histogram, type Registry } from "prom-client";
import type { KubeClientConfig } from "../agent-auth/kube-client-config.js";
import { kubeRequest, type KubeResponse } from "./kube-request.js";

export interface LeaseControllerOptions {
  readonly serverId: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly durationSeconds?: number;
  readonly renewIntervalMs?: number;
  readonly gcIntervalMs?: number;
  /** Each request to the API gives up after this. */
  readonly requestTimeoutMs?: number;
}

/** The fields of a coordination.k8s.io/v1 Lease this controller reads and writes. */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; [k: string]: unknown };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; [k: string]: unknown };
}

export const leaseName = (serverId: string): string => `konnectivity-proxy-server-${serverId}`;

/** `k8s-app=konnectivity-server,tier=cp` → labels; throws naming the flag on anything else. */
export function parseLeaseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const m = /^([A-Za-z0-9][-A-Za-z0-9_./]*)=([-A-Za-z0-9_.]*)$/.exec(part);
    if (!m) throw new Error(`--lease-label: "${part}" is not key=value (e.g. k8s-app=konnectivity-server)`);
    labels[m[1]!] = m[2]!;
  }
  if (Object.keys(labels).length === 0) throw new Error("--lease-label must give at least one key=value: the leases are found by their labels");
  return labels;
}

/** `--lease-namespace` as Kubernetes takes a namespace name (RFC 1123 label); throws naming the flag. */
export function parseLeaseNamespace(text: string): string {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(text)) throw new Error(`--lease-namespace: "${text}" is not a namespace name`);
  return text;
}

/** Kubernetes' MicroTime: RFC 3339 with six fractional digits. */
export const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

/** As upstream's IsLeaseValid: renewTime (or acquireTime) plus the duration is still ahead. */
export function isLeaseValid(lease: Lease, now: number): boolean {
  const at = lease.spec?.renewTime ?? lease.spec?.acquireTime;
  const duration = lease.spec?.leaseDurationSeconds;
  if (at === undefined || typeof duration !== "number") return false;
  const t = Date.parse(at);
  return Number.isFinite(t) && t + duration * 1000 > now;
}

const P = "konnectivity_network_proxy_server_";

/** Kubernetes' Status.reason of an error answer ("NotFound", "Conflict"), or "" when there is none. */
function statusReason(r: KubeResponse): string {
  try {
    const reason = (JSON.parse(r.text) as { reason?: unknown }).reason;
    return typeof reason === "string" ? reason : "";
  } catch {
    return "";
  }
}

export class LeaseController {
  readonly name: string;
  private readonly durationSeconds: number;
  private readonly renewIntervalMs: number;
  private readonly gcIntervalMs: number;
  private readonly timeoutMs: number;
  private readonly base: string;
  private readonly selector: string;
  /** The lease as last read or written (its resourceVersion makes the next update safe). */
  private held: Lease | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private gcTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private readonly culled: Counter;
  private readonly deletes: Counter<"http_status_code" | "reason">;
  private readonly deleteLatency: Histogram<"http_status_code">;
  private readonly lists: Counter<"http_status_code" | "reason">;
  private readonly listLatency: Histogram<"http_status_code">;

  constructor(
    private readonly config: KubeClientConfig,
    private readonly o: LeaseControllerOptions,
    private readonly log: Logger,
    registry: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.name = leaseName(o.serverId);
    this.durationSeconds = o.durationSeconds ?? 30;
    this.renewIntervalMs = o.renewIntervalMs ?? 15_000;
    this.gcIntervalMs = o.gcIntervalMs ?? 15_000;
    this.timeoutMs = o.requestTimeoutMs ?? 10_000;
    this.base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(o.namespace)}/leases`;
    this.selector = Object.entries(o.labels).map(([k, v]) => `${k}=${v}`).join(",");
    const registers = [registry];
    this.culled = new Counter({ name: P + "culled_leases_count", help: "Number of expired leases deleted by this server", registers });
    this.deletes = new Counter({ name: P + "lease_delete_total", help: "Lease deletions, by HTTP status code and reason", labelNames: ["http_status_code", "reason"], registers });
    this.deleteLatency = new Histogram({ name: P + "lease_delete_latency_seconds", help: "Latency of lease deletions in seconds", labelNames: ["http_status_code"], registers });
    this.lists = new Counter({ name: P + "lease_list_total", help: "Lease lists, by HTTP status code and reason", labelNames: ["http_status_code", "reason"], registers });
    this.listLatency = new Histogram({ name: P + "lease_list_latency_seconds", help: "Latency of lease lists in seconds", labelNames: ["http_status_code"], registers });
  }

  /** Acquires the lease now, then renews it and collects expired leases on their intervals. */
  start(): void {
    void this.renewLoop();
    void this.gcLoop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    clearTimeout(this.gcTimer);
  }

  private async renewLoop(): Promise<void> {
    if (this.stopped) return;
    let delay = this.renewIntervalMs;
    try {
      await this.renew();
      if (this.failures > 0) this.log.info({ lease: this.name }, "lease renewed again");
      this.failures = 0;
    } catch (err) {
      this.failures++;
      // As client-go's lease controller: retry soon, backing off, instead of waiting a whole interval.
      delay = Math.min(this.renewIntervalMs, 200 * 2 ** Math.min(this.failures - 1, 6));
      this.log.warn({ lease: this.name, namespace: this.o.namespace, failures: this.failures, err: (err as Error).message }, "could not renew this server's lease; agents that count leases may not see this server");
    }
    if (!this.stopped) this.renewTimer = setTimeout(() => void this.renewLoop(), delay).unref();
  }

  private async gcLoop(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.collect();
    } catch (err) {
      this.log.warn({ namespace: this.o.namespace, err: (err as Error).message }, "could not collect expired leases");
    }
    if (!this.stopped) this.gcTimer = setTimeout(() => void this.gcLoop(), this.gcIntervalMs).unref();
  }

  private request(method: "GET" | "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<KubeResponse> {
    return kubeRequest(this.config, { method, path, body, signal: AbortSignal.timeout(this.timeoutMs) });
  }

  private fail(what: string, r: KubeResponse): never {
    throw new Error(`${what}: HTTP ${r.status}${r.status === 403 ? " (may the server's identity get, create and update leases in this namespace?)" : ""}: ${r.text.slice(0, 200)}`);
  }

  /** One renewal: read the lease if we hold none, create it if it is missing, else update it. */
  async renew(): Promise<void> {
    const path = `${this.base}/${encodeURIComponent(this.name)}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!this.held) {
        const got = await this.request("GET", path);
        if (got.status === 404) {
          const created = await this.request("POST", this.base, this.desired(undefined));
          if (created.status === 201 || created.status === 200) {
            this.held = JSON.parse(created.text) as Lease;
            return;
          }
          if (created.status === 409) continue; // another writer created it meanwhile: read it
          this.fail(`creating lease ${this.o.namespace}/${this.name}`, created);
        }
        if (got.status !== 200) this.fail(`reading lease ${this.o.namespace}/${this.name}`, got);
        this.held = JSON.parse(got.text) as Lease;
      }
      const updated = await this.request("PUT", path, this.desired(this.held));
      if (updated.status === 200) {
        this.held = JSON.parse(updated.text) as Lease;
        return;
      }
      this.held = undefined;
      // Changed since we read it (409), or deleted (404): read it again and retry once.
      if (updated.status !== 409 && updated.status !== 404) this.fail(`updating lease ${this.o.namespace}/${this.name}`, updated);
    }
    throw new Error(`lease ${this.o.namespace}/${this.name} kept changing under this server's updates`);
  }

  private desired(current: Lease | undefined): Lease {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        ...current?.metadata,
        name: this.name,
        namespace: this.o.namespace,
        labels: { ...current?.metadata.labels, ...this.o.labels },
      },
      spec: {
        ...current?.spec,
        holderIdentity: this.o.serverId,
        leaseDurationSeconds: this.durationSeconds,
        renewTime: microTime(new Date(this.now())),
      },
    };
  }

  /** Deletes the expired leases under our labels, each only if nobody renewed it since the list. */
  async collect(): Promise<void> {
    const t0 = performance.now();
    const listed = await this.request("GET", `${this.base}?labelSelector=${encodeURIComponent(this.selector)}`);
    this.lists.labels(String(listed.status), listed.status === 200 ? "" : statusReason(listed)).inc();
    this.listLatency.labels(String(listed.status)).observe((performance.now() - t0) / 1000);
    if (listed.status !== 200) this.fail(`listing leases in ${this.o.namespace} with ${this.selector}`, listed);
    const items = (JSON.parse(listed.text) as { items?: Lease[] }).items ?? [];
    const now = this.now();
    for (const lease of items) {
      if (isLeaseValid(lease, now)) continue;
      const t1 = performance.now();
      const deleted = await this.request("DELETE", `${this.base}/${encodeURIComponent(lease.metadata.name)}`, {
        apiVersion: "v1", kind: "DeleteOptions", preconditions: { resourceVersion: lease.metadata.resourceVersion },
      });
      const ok = deleted.status === 200 || deleted.status === 202;
      this.deletes.labels(String(deleted.status), ok ? "" : statusReason(deleted)).inc();
      this.deleteLatency.labels(String(deleted.status)).observe((performance.now() - t1) / 1000);
      if (ok) {
        this.culled.inc();
        this.log.info({ lease: lease.metadata.name, holder: lease.spec?.holderIdentity }, "deleted an expired server lease");
      } else if (deleted.status !== 404 && deleted.status !== 409) {
        // 404: another server collected it first; 409: renewed since the list. Both are fine.
        this.log.warn({ lease: lease.metadata.name, status: deleted.status }, "could not delete an expired server lease");
      }
    }
  }
}
