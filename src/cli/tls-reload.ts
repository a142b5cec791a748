// Rotated certificates without a restart. The long-running commands read their TLS files again
// every --tls-reload-interval and hand what changed to the running server or agent, whose new
// handshakes then use it (connections already open keep theirs). Kubernetes updates a mounted
// Secret by swapping a symlink, cert-manager renews a certificate at two thirds of its life, and
// a CA rotation ships the new CA before the certificates it signs: a process that read its files
// once serves the old certificate until it expires, and an agent whose CA rotated fails every
// reconnect until someone restarts it (upstream apiserver-network-proxy #350, #801).
//
// Files are compared by content, so a touch does nothing and a symlink swap is seen like a write.
// A change is read twice, a second apart, and taken only when both reads agree: a `cp` over a
// file truncates it first. A set whose files do not make a TLS context together (a certificate
// already rotated, its key not yet; a CA file OpenSSL would read no certificate from) is not
// applied: the material in use stays, the next check tries again, and the warning comes back
// every hour while the problem lasts.
import { X509Certificate, createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { Counter, Gauge, type Registry } from "prom-client";

export type TlsPart = "cert" | "key" | "ca";
export type TlsContents = Partial<Record<TlsPart, Buffer>>;

export interface TlsFileSet {
  /** What the files serve, for the log and the metrics' `tls` label: "agent-port", "frontends", "agent". */
  readonly name: string;
  /** Each part's flag and path. */
  readonly files: Partial<Record<TlsPart, { readonly flag: string; readonly path: string }>>;
  /** The contents in use (read at start-up). */
  readonly initial: TlsContents;
  /** Hands new contents to the running process; throws, changing nothing, when they are not usable. */
  apply(contents: TlsContents): void;
}

interface SetState {
  readonly set: TlsFileSet;
  applied: TlsContents;
  /** The last problem logged and when, so that a file missing for an hour is one warning, not 120. */
  lastProblem: string | undefined;
  lastWarnedAt: number;
}

/** A problem that lasts is logged again this often. */
const rewarnMs = 60 * 60 * 1000;
/** A certificate in use that expires within this is warned about, once a day. */
const expiryWarningMs = 14 * 24 * 60 * 60 * 1000;
const dayMs = 24 * 60 * 60 * 1000;

const parts: readonly TlsPart[] = ["cert", "key", "ca"];

/**
 * nodetunnel_tls_certificate_not_after_timestamp_seconds{flag}: when the first certificate in each
 * watched certificate or CA file expires (what an alert compares with time()), for the files in
 * use; nodetunnel_tls_reloads_total{tls,result}: changes found, by outcome (a problem that persists
 * counts once).
 */
class TlsReloadMetrics {
  private readonly notAfter: Gauge<"flag">;
  private readonly reloads: Counter<"tls" | "result">;

  constructor(registry: Registry) {
    this.notAfter = new Gauge({
      name: "nodetunnel_tls_certificate_not_after_timestamp_seconds",
      help: "When the earliest-expiring certificate in each certificate or CA file in use expires, by flag (Unix time)",
      labelNames: ["flag"], registers: [registry],
    });
    this.reloads = new Counter({
      name: "nodetunnel_tls_reloads_total",
      help: "Changed TLS files found, by what they serve and outcome: applied, rejected (no usable TLS context) or unreadable",
      labelNames: ["tls", "result"], registers: [registry],
    });
  }

  inUse(set: TlsFileSet, contents: TlsContents): void {
    for (const part of ["cert", "ca"] as const) {
      const file = set.files[part];
      const expiry = file && earliestExpiry(contents[part]);
      if (file && expiry !== undefined) this.notAfter.set({ flag: file.flag }, expiry / 1000);
    }
  }

  reload(set: TlsFileSet, result: "applied" | "rejected" | "unreadable"): void {
    this.reloads.inc({ tls: set.name, result });
  }
}

export class TlsFileWatcher {
  private readonly states: SetState[];
  private readonly metrics: TlsReloadMetrics | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  /** When each flag's expiry was last warned about. */
  private readonly expiryWarnedAt = new Map<string, number>();

  constructor(
    sets: readonly TlsFileSet[],
    private readonly intervalMs: number,
    private readonly log: Logger,
    registry?: Registry,
    /** Waits between the two reads of a change (a second; tests pass their own). */
    private readonly settle: () => Promise<void> = () => new Promise((r) => setTimeout(r, 1000)),
  ) {
    this.states = sets.map((set) => ({ set, applied: { ...set.initial }, lastProblem: undefined, lastWarnedAt: 0 }));
    this.metrics = registry && new TlsReloadMetrics(registry);
    for (const { set } of this.states) {
      this.metrics?.inUse(set, set.initial);
      this.warnIfExpiring(set, set.initial);
    }
  }

  get watching(): boolean {
    return this.states.length > 0 && this.intervalMs > 0;
  }

  start(): void {
    if (!this.watching || this.timer) return;
    this.timer = setInterval(() => void this.check(), this.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads every set's files once and applies those that changed (what the timer runs). */
  check(): Promise<void> {
    this.checking ??= Promise.all(this.states.map((s) => this.checkSet(s)))
      .then(() => {
        for (const s of this.states) this.warnIfExpiring(s.set, s.applied);
      }, (err: Error) => this.log.error({ err: err.message }, "checking the TLS files failed"))
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  /** Every file of the set, or undefined after logging the one that cannot be read. */
  private async readSet(state: SetState): Promise<TlsContents | undefined> {
    const { set } = state;
    const read: TlsContents = {};
    for (const part of parts) {
      const file = set.files[part];
      if (!file) continue;
      try {
        read[part] = await readFile(file.path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        this.problem(state, "unreadable", `read:${file.path}:${code}`, { tls: set.name, flag: file.flag, path: file.path, err: code },
          "cannot read a TLS file: the material in use stays until it can be read");
        return undefined;
      }
    }
    return read;
  }

  private async checkSet(state: SetState): Promise<void> {
    const { set } = state;
    let read = await this.readSet(state);
    if (!read) return;
    const differs = (a: TlsContents, b: TlsContents) => parts.filter((p) => a[p] !== undefined && !a[p]!.equals(b[p] ?? Buffer.alloc(0)));
    const changed = differs(read, state.applied);
    if (changed.length === 0) {
      state.lastProblem = undefined;
      return;
    }
    // Still being written (a cp truncates first)? Take it once it holds still.
    await this.settle();
    const again = await this.readSet(state);
    if (!again || differs(again, read).length > 0) return;
    read = again;
    const flags = changed.map((p) => set.files[p]!.flag);
    try {
      set.apply(read);
    } catch (err) {
      const message = (err as Error).message;
      this.problem(state, "rejected", `apply:${fingerprint(read)}`, { tls: set.name, changed: flags, err: message },
        "rotated TLS files do not make a usable TLS context together (a certificate and a key from different rotations?): the material in use stays, checked again at the next change");
      return;
    }
    state.applied = read;
    state.lastProblem = undefined;
    this.metrics?.reload(set, "applied");
    this.metrics?.inUse(set, read);
    // Of what changed: the certificate's subject, and the CA's (its first certificate) as caSubject.
    const ca = changed.includes("ca") ? certificateSummary(read.ca) : {};
    this.log.info({
      tls: set.name, changed: flags,
      ...(changed.includes("cert") ? certificateSummary(read.cert) : {}),
      ...(ca.subject ? { caSubject: ca.subject, caNotAfter: ca.notAfter } : {}),
    }, "TLS files changed: new handshakes use them, open connections keep theirs");
  }

  /**
   * A certificate or CA in use that expires within two weeks, or has expired, is a warning at
   * start and then once a day while it lasts: a rotation that never landed shows in the log
   * before peers start refusing the handshakes.
   */
  private warnIfExpiring(set: TlsFileSet, contents: TlsContents): void {
    for (const part of ["cert", "ca"] as const) {
      const file = set.files[part];
      const expiry = file && earliestExpiry(contents[part]);
      if (!file || expiry === undefined) continue;
      const left = expiry - Date.now();
      if (left > expiryWarningMs || Date.now() - (this.expiryWarnedAt.get(file.flag) ?? -Infinity) < dayMs) continue;
      this.expiryWarnedAt.set(file.flag, Date.now());
      const notAfter = new Date(expiry).toISOString();
      const what = part === "ca" ? "a CA certificate" : "the certificate";
      this.log.warn({ tls: set.name, flag: file.flag, path: file.path, notAfter }, left <= 0
        ? `${what} in ${file.flag} expired at ${notAfter}: peers refuse it; rotate it`
        : `${what} in ${file.flag} expires in ${Math.ceil(left / dayMs)} days (${notAfter}): rotate it before then`);
    }
  }

  /** Logs and counts a problem once, however many checks find it again. */
  private problem(state: SetState, result: "rejected" | "unreadable", key: string, fields: Record<string, unknown>, message: string): void {
    if (state.lastProblem === key && Date.now() - state.lastWarnedAt < rewarnMs) return;
    if (state.lastProblem !== key) this.metrics?.reload(state.set, result);
    state.lastProblem = key;
    state.lastWarnedAt = Date.now();
    this.log.warn(fields, message);
  }
}

function fingerprint(contents: TlsContents): string {
  const hash = createHash("sha256");
  for (const p of parts) hash.update(`${p}:${contents[p]?.length ?? -1}:`).update(contents[p] ?? "");
  return hash.digest("hex");
}

/** When the first of the certificates in a PEM file (a chain, a CA bundle) expires, in ms. */
function earliestExpiry(pem: Buffer | undefined): number | undefined {
  let earliest: number | undefined;
  for (const block of pem?.toString("latin1").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
    try {
      const t = Date.parse(new X509Certificate(block).validTo);
      if (earliest === undefined || t < earliest) earliest = t;
    } catch {
      // not a certificate OpenSSL reads: the TLS context says so when it is applied
    }
  }
  return earliest;
}

/** The leaf certificate's subject and expiry, for the log line of a reload. */
function certificateSummary(cert: Buffer | undefined): { subject?: string; notAfter?: string } {
  if (!cert) return {};
  try {
    const x = new X509Certificate(cert);
    return { subject: x.subject.replace(/\n/g, ", "), notAfter: new Date(x.validTo).toISOString() };
  } catch {
    return {};
  }
}
