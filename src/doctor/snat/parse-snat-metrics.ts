// Parses `az monitor metrics list -o json` for SnatConnectionCount, UsedSnatPorts and
// AllocatedSnatPorts (troubleshooting.md §5.5): failed SNAT connections, and used/allocated
// ports per backend IP. Also accepts an array of such documents (several calls joined with jq -s).
import { DoctorInputError } from "../input-error.js";
import { parseJsonInput } from "../json-input.js";

export interface BackendPorts {
  readonly backendIp: string;
  readonly protocol: string | null;
  /** The highest used-ports value in the period. */
  readonly used: number;
  readonly allocated: number;
  readonly ratio: number;
}

export interface SnatMetrics {
  /** Sum of SnatConnectionCount with ConnectionState = failed; null when the series are not split by it. */
  readonly failedConnections: number | null;
  readonly successfulConnections: number | null;
  readonly backends: readonly BackendPorts[];
  readonly metricNames: readonly string[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const expected = "the JSON of `az monitor metrics list --metrics SnatConnectionCount UsedSnatPorts AllocatedSnatPorts -o json`";

function metricName(m: Json): string {
  const n = m["name"];
  if (typeof n === "string") return n;
  if (isObject(n) && typeof n["value"] === "string") return n["value"];
  return "";
}

function dimensions(series: Json): Map<string, string> {
  const out = new Map<string, string>();
  const md = series["metadatavalues"];
  if (!Array.isArray(md)) return out;
  for (const d of md) {
    if (!isObject(d)) continue;
    const name = isObject(d["name"]) ? d["name"]["value"] : d["name"];
    if (typeof name === "string" && typeof d["value"] === "string") out.set(name.toLowerCase(), d["value"]);
  }
  return out;
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

function points(series: Json): Json[] {
  const data = series["data"];
  return Array.isArray(data) ? data.filter(isObject) : [];
}

/** The metric objects, wherever the document keeps them. */
function metricsOf(doc: unknown): Json[] {
  if (Array.isArray(doc)) return doc.flatMap(metricsOf);
  if (!isObject(doc)) return [];
  if (Array.isArray(doc["value"])) return doc["value"].filter(isObject);
  if (doc["timeseries"] !== undefined) return [doc];
  return [];
}

export function parseSnatMetrics(text: string): SnatMetrics {
  const doc = parseJsonInput(text, expected);
  const metrics = metricsOf(doc);
  const wanted = new Set(["snatconnectioncount", "usedsnatports", "allocatedsnatports"]);
  const known = metrics.filter((m) => wanted.has(metricName(m).toLowerCase()));
  if (known.length === 0) {
    throw new DoctorInputError("no SnatConnectionCount, UsedSnatPorts or AllocatedSnatPorts metric in the input", { line: 1, expected });
  }
  let failed: number | null = null;
  let successful: number | null = null;
  const used = new Map<string, number>();
  const allocated = new Map<string, number>();
  for (const m of known) {
    const name = metricName(m).toLowerCase();
    const series = Array.isArray(m["timeseries"]) ? m["timeseries"].filter(isObject) : [];
    for (const s of series) {
      const dims = dimensions(s);
      if (name === "snatconnectioncount") {
        const state = dims.get("connectionstate")?.toLowerCase();
        // Total is the documented aggregation; fall back to what the caller asked for.
        const sum = points(s).reduce((acc, p) => acc + (num(p["total"]) ?? num(p["count"]) ?? num(p["average"]) ?? 0), 0);
        if (state === "failed") failed = (failed ?? 0) + sum;
        else if (state === "successful" || state === "success") successful = (successful ?? 0) + sum;
        continue;
      }
      const key = `${dims.get("backendipaddress") ?? "(all backends)"}|${dims.get("protocoltype") ?? ""}`;
      const target = name === "usedsnatports" ? used : allocated;
      for (const p of points(s)) {
        const v = name === "usedsnatports" ? num(p["maximum"]) ?? num(p["average"]) : num(p["average"]) ?? num(p["maximum"]);
        if (v !== null) target.set(key, Math.max(target.get(key) ?? 0, v));
      }
    }
  }
  const backends: BackendPorts[] = [];
  for (const [key, u] of used) {
    const a = allocated.get(key);
    if (!a) continue;
    const [backendIp, protocol] = key.split("|") as [string, string];
    backends.push({ backendIp, protocol: protocol || null, used: u, allocated: a, ratio: u / a });
  }
  backends.sort((x, y) => y.ratio - x.ratio);
  return { failedConnections: failed, successfulConnections: successful, backends, metricNames: [...new Set(known.map(metricName))] };
}
