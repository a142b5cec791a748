// An endpoint to probe, and its `HOST:PORT` form as the egress flags take it
// (doctor-cli.md `doctor egress`); IPv6 in brackets.

export interface EgressTarget { readonly host: string; readonly port: number }

export function parseHostPort(text: string): EgressTarget | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

export const formatHostPort = ({ host, port }: EgressTarget): string => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);
