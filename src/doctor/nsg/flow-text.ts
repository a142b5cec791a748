// A flow as the NSG check writes it for people: `tcp 10.224.0.7 → 10.224.0.5:10250`, an IPv6
// address in brackets before its port (`[fd00::5]:10250`, RFC 5952 §6), as the report's header does.
import type { NsgFlow } from "./nsg-model.js";

export const endpointText = (ip: string, port: number): string => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);

export const flowText = (flow: Pick<NsgFlow, "protocol" | "source" | "destination" | "port">): string =>
  `${flow.protocol} ${flow.source} → ${endpointText(flow.destination, flow.port)}`;
