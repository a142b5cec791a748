// The JSON report (doctor-cli.md, "Common rules"): one object per run; `node`/`cluster` hold
// their findings in a `findings` array of such objects. `details` is for people only and dropped.
import type { CheckResult } from "./check-result.js";

export function renderJson(result: CheckResult): string {
  return JSON.stringify(toJsonValue(result), null, 2) + "\n";
}

export function toJsonValue(result: CheckResult): Record<string, unknown> {
  const { details: _details, ...rest }: Record<string, unknown> = result;
  if (Array.isArray(rest.findings)) rest.findings = (rest.findings as CheckResult[]).map(toJsonValue);
  return rest;
}

// What exit code 2 prints on stdout in JSON mode: nothing but this object.
export interface ReportError {
  readonly message: string;
  readonly file?: string | null;
  readonly line?: number | null;
  readonly expected?: string | null;
}

export function renderErrorJson(error: ReportError): string {
  const { message, file = null, line = null, expected = null } = error;
  return JSON.stringify({ error: { message, file, line, expected } }) + "\n";
}

// The one-line stderr form of the same error: `file:line: message (expected ...)`.
export function renderErrorLine(error: ReportError): string {
  const where = error.file ? `${error.file}${error.line ? `:${error.line}` : ""}: ` : "";
  const expected = error.expected ? ` (expected ${error.expected})` : "";
  return `${where}${error.message}${expected}`.replace(/\s*\n\s*/g, " ");
}
