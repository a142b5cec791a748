// `nodetunnel doctor egress` (doctor-cli.md `doctor egress`).
import type { Command } from "commander";
import { checkEgress, formatHostPort, type EgressTarget } from "../doctor/index.js";
import type { CliIo } from "./cli-io.js";
import { collect, hostPortFlag, secondsFlag, UsageError } from "./doctor-flags.js";
import { checkCommand } from "./doctor-run.js";

const maxTimeoutSeconds = 120;

export function egressCommand(io: CliIo): Command {
  return checkCommand(io, "egress", async (opts) => {
    const targets: EgressTarget[] = ((opts.target as string[] | undefined) ?? []).map((t) => hostPortFlag("--target", t));
    if (targets.length === 0) {
      if (opts.server === undefined) throw new UsageError("give the tunnel server with --server HOST:PORT or one or more --target HOST:PORT");
      targets.push(hostPortFlag("--server", opts.server as string));
    }
    const alpn = opts.alpn as string | undefined;
    if (alpn !== undefined && !/^[\x21-\x7e]{1,255}$/.test(alpn)) throw new UsageError(`--alpn: expected a protocol name like konnectivity or h2, got ${JSON.stringify(alpn)}`);
    const unique = [...new Map(targets.map((t) => [formatHostPort(t), t])).values()];
    return await checkEgress({
      targets: unique,
      ...(alpn === undefined ? {} : { alpn }),
      timeoutMs: Math.round(secondsFlag("--timeout", opts.timeout as string, maxTimeoutSeconds) * 1000),
    });
  })
    .description("probe, from here, the endpoints a tunnel needs: TCP connect, then TLS with ALPN")
    .option("--target <host:port>", "an endpoint to probe (repeatable; default: the --server)", collect)
    .option("--server <host:port>", "the tunnel server the agents dial (e.g. the API server's FQDN:443)")
    .option("--alpn <name>", "the only ALPN protocol to offer, which must be negotiated: konnectivity for AKS's port 443, h2 for a server's agent port (default: h2); forces a TLS handshake")
    .option("--timeout <seconds>", "deadline for the connect and again for the TLS handshake", "2")
    .addHelpText("after", `
A TLS handshake is attempted when --alpn is given or the port is 443, 8132 or 8091.
Each target is classified: connected, refused, timeout, unreachable, dns, tls (with the reason)
or alpn-mismatch (TLS completed without the requested ALPN: a TLS-inspecting firewall, or the wrong port).

Examples:
  nodetunnel doctor egress --server myaks-dns-1a2b3c.hcp.westeurope.azmk8s.io:443 --alpn konnectivity
  nodetunnel doctor egress --target 10.0.0.4:8132 --target mcr.microsoft.com:443 --timeout 5 --output json

Exit codes: 0 every target connected, 1 a target failed, 2 bad usage.`);
}
