// The plain two-hop reference: a Node `net` pipe relay in its own process, one listening port per
// target port given as arguments. Prints `{"<target>":<relay port>,...}` on stdout once listening.
import net from "node:net";
import type { AddressInfo } from "node:net";

const host = "127.0.0.1";

function relayTo(targetPort: number): net.Server {
  return net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect({ port: targetPort, host });
    upstream.setNoDelay(true);
    const fail = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", fail).on("close", fail);
    upstream.on("error", fail).on("close", fail);
    client.pipe(upstream);
    upstream.pipe(client);
  });
}

async function main(): Promise<void> {
  const mapping: Record<string, number> = {};
  for (const arg of process.argv.slice(2)) {
    const target = Number(arg);
    const server = relayTo(target);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port: 0, host, backlog: 4096 }, resolve);
    });
    mapping[arg] = (server.address() as AddressInfo).port;
  }
  process.stdout.write(`${JSON.stringify(mapping)}\n`);
  process.stdin.resume();
  process.stdin.once("end", () => process.exit(0));
}

void main();
