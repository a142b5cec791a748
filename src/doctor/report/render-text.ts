// The text report, for people (doctor-cli.md, "Common rules"): the verdict first, then the
// summary, the deciding rule quoted as the user would see it, details, the fix as copy-paste
// commands, then what was assumed. Colour is the caller's decision (TTY and no NO_COLOR).
import type { CheckResult, CheckStatus, FlowEffect, FlowVerdict } from "./check-result.js";
import { textTable } from "./text-table.js";

export interface TextOptions { readonly color: boolean }

type Paint = (code: string, s: string) => string;
const ansi = { red: "31", green: "32", yellow: "33", bold: "1", dim: "2" } as const;

const verdictColor: Record<FlowVerdict, string> = { allowed: ansi.green, blocked: ansi.red, indeterminate: ansi.yellow };
const statusColor: Record<CheckStatus, string> = { ok: ansi.green, problem: ansi.red, warning: ansi.yellow, indeterminate: ansi.yellow };

// What the client on the other end experiences: troubleshooting.md §6.2.
const effectText: Record<Exclude<FlowEffect, null>, string> = {
  accept: "accept",
  drop: "drop: the client sees an i/o timeout",
  reject: "reject: the client sees connection refused or no route to host",
};

export function renderText(result: CheckResult, options: TextOptions): string {
  const paint: Paint = options.color ? (code, s) => `\u001b[${code}m${s}\u001b[0m` : (_code, s) => s;
  return renderResult(result, paint).join("\n") + "\n";
}

function renderResult(r: CheckResult, paint: Paint): string[] {
  const out: string[] = [headline(r, paint), r.summary];
  const decided = decidedByLines(r);
  if (decided.length > 0) out.push("", ...decided);
  const extra = extraLines(r, paint);
  if (extra.length > 0) out.push("", ...extra);
  if (r.details && r.details.length > 0) out.push("", ...r.details.flatMap((d) => d.split("\n")).map((d) => `  ${d}`));
  if (r.fixes.length > 0) {
    out.push("", paint(ansi.bold, "Fix:"));
    for (const f of r.fixes) out.push(paint(ansi.dim, `  # ${f.description}`), ...f.command.split("\n").map((c) => `  ${c}`));
  }
  if (r.assumptions.length > 0) {
    out.push("", paint(ansi.bold, "Assumed:"), ...r.assumptions.map((a) => `  - ${a}`));
  }
  const findings = findingsOf(r);
  for (const f of findings) out.push("", ...renderResult(f, paint).map((l) => (l === "" ? "" : `    ${l}`)));
  return out;
}

function headline(r: CheckResult, paint: Paint): string {
  if (r.verdict !== undefined && r.flow !== undefined) {
    const { protocol, source, destination, port } = r.flow;
    const to = destination === null ? `port ${port}` : `${destination.includes(":") ? `[${destination}]` : destination}:${port}`;
    const why = r.effect ? ` (${effectText[r.effect]})` : r.verdict === "indeterminate" ? " (depends on something the input does not show)" : "";
    return `${paint(ansi.bold + ";" + verdictColor[r.verdict], r.verdict.toUpperCase())}  ${protocol} ${source} → ${to}${why}`;
  }
  if (r.check === "explain") {
    // explain recognises a message or does not; "warning" would read as a problem of its own.
    const known = r.status !== "indeterminate";
    const detail = typeof r.mechanismDetail === "string" && r.mechanismDetail !== r.mechanism ? ` (${r.mechanismDetail})` : "";
    const mechanism = typeof r.mechanism === "string" ? `: ${r.mechanism}${detail}` : "";
    return `${paint(ansi.bold + ";" + (known ? ansi.green : ansi.yellow), known ? "EXPLAINED" : "UNRECOGNISED")}  explain${mechanism}`;
  }
  return `${paint(ansi.bold + ";" + statusColor[r.status], r.status.toUpperCase())}  ${r.check}`;
}

const str = (v: unknown): string => (v === null || v === undefined ? "" : String(v));

// The deciding rule, per check's decidedBy shape (doctor-cli.md, each check's section).
function decidedByLines(r: CheckResult): string[] {
  const d = r.decidedBy;
  if (d === undefined) return [];
  if (d === null) return r.verdict === undefined ? [] : ["Decided by: nothing (no rule applies)"];
  const label = r.verdict === "indeterminate" ? "Undecided at" : "Decided by";
  const quote = typeof d.text === "string" && d.text !== "" ? d.text.split("\n").map((l) => `    ${l}`) : [];
  switch (r.check) {
    case "iptables": {
      // The table only where it is not filter (raw, mangle or nat, before filter INPUT).
      const table = typeof d.table === "string" && d.table !== "filter" ? `table ${d.table}, ` : "";
      const where = d.rule === null || d.rule === undefined ? `${table}chain ${str(d.chain)} policy ${str(d.policy)}` : `${table}chain ${str(d.chain)}, rule ${str(d.rule)}`;
      return [`${label}: ${where}`, ...quote];
    }
    case "ufw": {
      const where = d.rule === null || d.rule === undefined ? `ufw default policy ${str(d.policy)} (incoming)` : `ufw rule [${str(d.rule)}]`;
      return [`${label}: ${where}`, ...quote];
    }
    case "nftables": {
      const where = d.rule === null || d.rule === undefined
        ? `table ${str(d.table)}, chain ${str(d.chain)} policy ${str(d.policy)}`
        : `table ${str(d.table)}, chain ${str(d.chain)}, rule ${str(d.rule)}`;
      return [`${label}: ${where}`, ...quote];
    }
    case "nsg":
      return [`${label}:`, ...nsgTable([d]).map((l) => `    ${l}`), ...quote];
    default:
      return [`${label}: ${Object.entries(d).filter(([k]) => k !== "text").map(([k, v]) => `${k}=${str(v)}`).join(", ")}`, ...quote];
  }
}

// NSG rules as `az network nsg rule list -o table` would show them, with where the NSG stands.
function nsgTable(rows: readonly Readonly<Record<string, unknown>>[]): string[] {
  return textTable(
    ["NSG", "Attachment", "Direction", "Priority", "Name", "Access"],
    rows.map((x) => [str(x.nsg), str(x.attachment), str(x.direction), str(x.priority), str(x.rule), str(x.access)]),
  );
}

const records = (v: unknown): Readonly<Record<string, unknown>>[] =>
  Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === "object" && x !== null) : [];

// Check-specific fields that people need to see (the JSON carries them as they are).
function extraLines(r: CheckResult, paint: Paint): string[] {
  switch (r.check) {
    case "nsg": {
      // The path as a table, unless the check already wrote it out in its details.
      const path = records(r.path);
      return path.length > 0 && !r.details?.length ? ["Every NSG on the path:", ...nsgTable(path).map((l) => `    ${l}`)] : [];
    }
    case "egress": {
      const probes = records(r.probes);
      if (probes.length === 0) return [];
      return textTable(
        ["TARGET", "RESULT", "ELAPSED", "DETAIL"],
        probes.map((p) => [str(p.target), str(p.result), `${str(p.elapsedMs)} ms`, probeDetail(p)]),
      ).map((l, i) => (i === 0 ? paint(ansi.bold, l) : l));
    }
    case "explain": {
      const out: string[] = [];
      // The causes as a list, unless the check already wrote them out in its details.
      const causes = r.details?.length ? [] : records(r.causes);
      if (causes.length > 0) out.push("Likely causes, most likely first:");
      causes.forEach((c, i) => {
        out.push(`  ${i + 1}. ${str(c.id)}: ${str(c.why)}`);
        if (typeof c.check === "string" && c.check !== "") out.push(`     confirm with: ${c.check}`);
      });
      return out;
    }
    case "snat":
      return snatLines(r);
    default:
      return [];
  }
}

function probeDetail(p: Readonly<Record<string, unknown>>): string {
  const parts: string[] = [];
  if (typeof p.alpn === "string") parts.push(`ALPN ${p.alpn}`);
  if (typeof p.reason === "string" && p.reason !== "") parts.push(p.reason);
  return parts.join("; ");
}

const minDefined = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);

function snatLines(r: CheckResult): string[] {
  const out: string[] = [];
  const num = (k: string) => (typeof r[k] === "number" ? (r[k] as number) : undefined);
  const rows: [string, number | undefined][] = [
    ["SNAT ports per node", num("portsPerNode")],
    ["Ports required (nodes + surge)", num("requiredPorts")],
    ["Ports available (64,000 × IPs)", num("availablePorts")],
    // The smaller of the ports' limit and the default table's end (past 1,000 nodes there is no
    // default allocation, whatever the ports allow); the JSON keeps the two apart.
    ["Most nodes supported", minDefined(num("capacityNodes"), num("defaultPoolLimit"))],
  ];
  for (const [name, v] of rows) if (v !== undefined) out.push(`${name}: ${v}`);
  if ("nextBoundary" in r) out.push(`Default allocation halves next at: ${r.nextBoundary === null ? "never (no further boundary)" : `${str(r.nextBoundary)} nodes`}`);
  const churn = records(r.churn);
  if (churn.length > 0) {
    out.push("", "Connections by destination:",
      ...textTable(["DESTINATION", "CONNECTIONS", "TIME-WAIT"], churn.map((c) => [str(c.destination), str(c.connections), str(c.timeWait)])).map((l) => `    ${l}`));
  }
  return out;
}

function findingsOf(r: CheckResult): CheckResult[] {
  return Array.isArray(r.findings) ? (r.findings as CheckResult[]) : [];
}
