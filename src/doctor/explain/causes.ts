// The causes the doctor knows (troubleshooting.md §1.3, §6.2; konnectivity.md §1.6, §4), each with
// why it fits and the doctor command that confirms or rules it out, filled in from the error text.
import type { ErrorContext } from "./extract-context.js";

export interface Cause {
  readonly id: string;
  readonly why: string;
  readonly check: string;
}

type CauseTemplate = (c: Filled) => { why: string; check: string };

interface Filled {
  readonly ip: string;
  readonly port: number;
  readonly node: string;
  readonly server: string;
  /** `doctor egress` for the server, with the ALPN an agent dialling it must get. */
  readonly egress: string;
  /** That ALPN protocol; null for the legacy tunnels, probed over TCP. */
  readonly alpn: string | null;
}

// The ALPN the probe must see negotiated (doctor egress offers only that one): AKS's 443 front
// end routes the agent's [konnectivity] to the tunnel (troubleshooting.md §5.1); a tunnel server
// dialled directly on its agent port is gRPC, h2; legacy tunnel-front/aks-link are probed over TCP.
function alpnFor(port: number): string | null {
  return port === 443 ? "konnectivity" : port === 9000 || port === 1194 ? null : "h2";
}

export function egressCheck(server: string, port: number): string {
  const alpn = alpnFor(port);
  return `nodetunnel doctor egress --server ${server}${alpn === null ? "" : ` --alpn ${alpn}`}`;
}

function fill(ctx: ErrorContext): Filled {
  const port = ctx.port ?? 10250;
  const ip = ctx.host ?? "<node-ip>";
  const node = ctx.nodeName ?? "<node-name>";
  // A nodetunnel server names the endpoint its agents dial: the server itself, which negotiates
  // h2 whatever its port (only AKS's 443 front end routes [konnectivity]).
  if (ctx.agentEndpoint !== null) {
    return { ip, port, node, server: ctx.agentEndpoint, egress: `nodetunnel doctor egress --server ${ctx.agentEndpoint} --alpn h2`, alpn: "h2" };
  }
  const onServer = ctx.leg === "server" && ctx.host !== null;
  const serverPort = onServer ? ctx.port ?? 443 : 443;
  const server = onServer ? `${ctx.host}:${serverPort}` : "<tunnel-server>:443";
  return { ip, port, node, server, egress: egressCheck(server, serverPort), alpn: alpnFor(serverPort) };
}

const templates: Record<string, CauseTemplate> = {
  nsg: (c) => ({
    why: `an Azure NSG on the node's subnet or NIC denies ${c.port}; NSG denies drop packets silently (docs/troubleshooting.md §3)`,
    check: `nodetunnel doctor nsg --source <agent-node-ip> --destination ${c.ip} --port ${c.port} --dest-subnet-nsg subnet-nsg.json --dest-nic-nsg nic-nsg.json`,
  }),
  ufw: (c) => ({
    why: `ufw is enabled on ${c.ip} and denies ${c.port} (deny drops, reject refuses; docs/troubleshooting.md §4)`,
    check: `nodetunnel doctor ufw --file ufw-status.txt --source <agent-node-ip> --port ${c.port}   # ufw status verbose, on ${c.ip}`,
  }),
  iptables: (c) => ({
    why: `an iptables rule on ${c.ip} drops or rejects ${c.port} in INPUT or a chain it jumps to (docs/troubleshooting.md §5)`,
    check: `nodetunnel doctor iptables --file iptables-save.txt --source <agent-node-ip> --destination ${c.ip} --port ${c.port}   # iptables-save, on ${c.ip}`,
  }),
  nftables: (c) => ({
    why: `an nftables base chain on the input hook of ${c.ip} drops or rejects ${c.port}`,
    check: `nodetunnel doctor nftables --file nft-ruleset.txt --source <agent-node-ip> --destination ${c.ip} --port ${c.port}   # nft list ruleset, on ${c.ip}`,
  }),
  "node-down": (c) => ({
    why: `the node ${c.ip} is down, NotReady or its address changed (nothing answers ARP or SYN)`,
    check: `nodetunnel doctor cluster --node ${c.node}=${c.ip}`,
  }),
  "kubelet-down": (c) => ({
    why: `nothing listens on ${c.ip}:${c.port}: the kubelet (or the pod) is stopped, restarting or bound elsewhere`,
    check: `nodetunnel doctor cluster --node ${c.node}=${c.ip}   # then nodetunnel doctor node on ${c.ip}`,
  }),
  egress: (c) => ({
    why: `the agent cannot reach the tunnel server ${c.server}: a firewall, NSG or route blocks egress${c.alpn === null ? "" : `, or a TLS-inspecting proxy strips ALPN "${c.alpn}"`} (docs/troubleshooting.md §2)`,
    check: c.egress,
  }),
  snat: () => ({
    why: "the nodes ran out of SNAT ports towards the tunnel server, so new agent connections fail (docs/troubleshooting.md §6)",
    check: "nodetunnel doctor snat --nodes <N> --outbound-ips <N> --metrics snat-metrics.json",
  }),
  "agent-down": () => ({
    why: "no agent is connected for this node: agent pods not running, crash-looping, OOM-killed or restarting (docs/troubleshooting.md §2)",
    check: "nodetunnel doctor cluster",
  }),
  "agent-scale": () => ({
    why: "agents are overloaded (too few replicas for the cluster size, CPU/memory limits) and answer dials late (docs/troubleshooting.md §6)",
    check: "nodetunnel doctor cluster",
  }),
  "agent-auth": (c) => ({
    why: "the tunnel server rejects the agent's credentials (service-account token or client certificate)",
    check: c.egress,
  }),
  "agent-policy": (c) => ({
    why: `the agent's destination policy does not allow ${c.ip}:${c.port}`,
    check: `nodetunnel doctor cluster --node ${c.node}=${c.ip}`,
  }),
  "server-down": () => ({
    why: "the tunnel server is not running, restarting or overloaded (OOM-killed servers cause backstop timeouts, kubernetes-sigs/apiserver-network-proxy#370)",
    check: "nodetunnel doctor cluster",
  }),
  "port-hijack": (c) => ({
    why: `something that speaks plain HTTP answers on ${c.ip}:${c.port} instead of the kubelet's TLS: another process on the port, or a proxy in the path`,
    check: `nodetunnel doctor node   # on ${c.ip}: shows what listens on ${c.port}`,
  }),
  proxy: (c) => ({
    why: "an HTTP proxy or a TLS-inspecting firewall sits in the path and answers in place of the real peer",
    check: `nodetunnel doctor egress --target ${c.ip}:${c.port}`,
  }),
  "tls-inspection": (c) => ({
    why: "a TLS-inspecting firewall re-signs or terminates the connection (its CA is unknown to the client, ALPN is stripped)",
    check: c.egress,
  }),
  "ca-mismatch": (c) => ({
    why: "the client trusts a different CA than the one that signed the server's certificate (agent --ca-cert, or the kubelet CA on kube-apiserver)",
    check: c.egress,
  }),
  "cert-expired": (c) => ({
    why: "a certificate expired or is not yet valid, or a clock is wrong on one side",
    check: c.egress,
  }),
  "cert-name": (c) => ({
    why: "the certificate does not name the address the client dialled (SAN mismatch)",
    check: c.egress,
  }),
  "client-cert": (c) => ({
    why: "the server rejected the client certificate (mTLS: wrong CA, expired or missing)",
    check: c.egress,
  }),
  "alpn": (c) => ({
    why: "the two sides share no ALPN protocol (the server expects \"konnectivity\" or \"h2\"; a middlebox may strip it)",
    check: c.egress,
  }),
  "kubelet-auth": (c) => ({
    why: "the kubelet rejected kube-apiserver's client credentials for logs/exec (kubelet client certificate or the kubelet's webhook authentication)",
    check: `nodetunnel doctor node   # on ${c.ip}: kubelet authentication settings`,
  }),
  "kubelet-authz": () => ({
    why: "the kubelet's authorization denied kube-apiserver's kubelet client (RBAC for nodes/proxy)",
    check: "kubectl auth can-i get nodes/proxy --as kube-apiserver-kubelet-client",
  }),
  "user-credentials": () => ({
    why: "your own kubeconfig credentials expired or are wrong (token, certificate, exec plugin)",
    check: "kubectl auth whoami",
  }),
  rbac: () => ({
    why: "RBAC does not grant you this verb on this resource",
    check: "kubectl auth can-i --list",
  }),
  "node-name-dns": (c) => ({
    why: `kube-apiserver dials the node by name (${c.node === "<node-name>" ? c.ip : c.node}) and cannot resolve it; prefer InternalIP in --kubelet-preferred-address-types`,
    check: `nodetunnel doctor egress --target ${c.node === "<node-name>" ? c.ip : c.node}:${c.port}`,
  }),
  dns: (c) => ({
    why: `the DNS server cannot resolve ${c.ip} (custom DNS servers, a missing private DNS zone)`,
    check: `nodetunnel doctor egress --target ${c.ip}:${c.port}`,
  }),
  "fd-limit": () => ({
    why: "the agent or server ran out of file descriptors (too many connections, or a leak)",
    check: "nodetunnel doctor node",
  }),
  reset: (c) => ({
    why: "a middlebox or an idle timeout (load balancer, NAT, firewall) reset the connection",
    check: c.egress,
  }),
  "close-race": () => ({
    why: "a packet arrived for a connection that had just closed: a harmless race (kubernetes-sigs/apiserver-network-proxy#404) unless it floods the log",
    check: "nodetunnel doctor cluster",
  }),
  "slow-consumer": () => ({
    why: "a reader (kubectl, kube-apiserver, or a destination on the node) fell past the slow-consumer cap (32 MiB) and then read nothing for a second, or did not catch up within 2 s; only with an upstream agent or server (no per-connection credit), and the tunnel closed that connection only",
    check: "nodetunnel doctor cluster",
  }),
  "egress-local": (c) => ({
    why: `the sending host's own firewall (OUTPUT chain) refuses the connection to ${c.ip}:${c.port}`,
    check: `nodetunnel doctor iptables --file iptables-save.txt --chain OUTPUT --destination ${c.ip} --port ${c.port}`,
  }),
};

export function causesFor(ids: readonly string[], ctx: ErrorContext): Cause[] {
  const c = fill(ctx);
  return ids.map((id) => {
    const t = templates[id];
    if (!t) throw new Error(`unknown cause id ${id}`);
    return { id, ...t(c) };
  });
}

export const knownCauseIds = Object.keys(templates);
