// The agent's side of lease counting (upstream's --count-server-leases): list the Leases under a
// label selector and count the valid ones. Lives beside the lease controller because it reads what
// the servers write; the CLI hands `count` to the agent, which only sees a number.
import { Counter, Histogram, type Registry } from "prom-client";
import type { KubeClientConfig } from "../agent-auth/kube-client-config.js";
import { isLeaseValid, type Lease } from "./lease-controller.js";
import { kubeRequest } from "./kube-request.js";

export interface ServerLeaseCounterOptions {
  readonly namespace: string;
  /** Equality selector, `k8s-app=konnectivity-server[,k=v]`. */
  readonly selector: string;
  readonly requestTimeoutMs?: number;
}

const P = "konnectivity_network_proxy_agent_";

export class ServerLeaseCounter {
  private readonly lists: Counter<"http_status_code">;
  private readonly latency: Histogram<"http_status_code">;

  constructor(
    private readonly config: KubeClientConfig,
    private readonly o: ServerLeaseCounterOptions,
    registry: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.lists = new Counter({ name: P + "lease_lists_total", help: "Lease lists made to count the servers, by HTTP status code", labelNames: ["http_status_code"], registers: [registry] });
    this.latency = new Histogram({ name: P + "lease_list_latency_seconds", help: "Latency of lease lists in seconds", labelNames: ["http_status_code"], registers: [registry] });
  }

  /** The valid leases under the selector now; rejects naming the API's answer when the list fails. */
  async count(): Promise<number> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.o.namespace)}/leases?labelSelector=${encodeURIComponent(this.o.selector)}`;
    const t0 = performance.now();
    const r = await kubeRequest(this.config, { method: "GET", path, signal: AbortSignal.timeout(this.o.requestTimeoutMs ?? 10_000) });
    this.lists.labels(String(r.status)).inc();
    this.latency.labels(String(r.status)).observe((performance.now() - t0) / 1000);
    if (r.status !== 200) {
      throw new Error(`listing leases in ${this.o.namespace} with ${this.o.selector}: HTTP ${r.status}${r.status === 403 ? " (may the agent's identity list leases in this namespace?)" : ""}: ${r.text.slice(0, 200)}`);
    }
    const items = (JSON.parse(r.text) as { items?: Lease[] }).items ?? [];
    const now = this.now();
    return items.filter((l) => isLeaseValid(l, now)).length;
  }
}
