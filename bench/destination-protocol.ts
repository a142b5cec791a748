// What the benchmark's destinations say, shared by bench/destinations.ts and the measuring client.

export type DestinationName = "sink" | "source" | "echo" | "http";
export type DestinationPorts = Readonly<Record<DestinationName, number>>;

/** Every this often the sink writes back a 16-byte report: total bytes received, its monotonic clock (ns). */
export const SINK_REPORT_MS = 50;
export const SINK_REPORT_BYTES = 16;
/** The source's first bytes, sent before the client says anything (the DIAL_RSP/DATA race check). */
export const SOURCE_GREETING = Buffer.from("HELLO\n", "latin1");
export const HTTP_BODY = Buffer.from("hello from the benchmark destination\n", "latin1");
