// The servers' Lease objects, for agents that count servers by their leases (upstream's
// --enable-lease-controller and --count-server-leases).
export { LeaseController, isLeaseValid, leaseName, microTime, parseLeaseLabels, parseLeaseNamespace, type Lease, type LeaseControllerOptions } from "./lease-controller.js";
export { ServerLeaseCounter, type ServerLeaseCounterOptions } from "./lease-counter.js";
export { kubeRequest, type KubeRequest, type KubeResponse } from "./kube-request.js";
