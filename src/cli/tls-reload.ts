// Rotated certificates without a restart. The long-running commands read their TLS files again
// every --tls-reload-interval and hand what changed to the running server or agent, whose new
// handshakes then use it (connections already open keep theirs). Kubernetes updates a mounted
// Secret by swapping a symlink, cert-manager renews a certificate at two thirds of its life, and
// a CA rotation ships the new CA before the certificates it signs: a process that read its files
// once serves the old certificate until it expires, and an agent whose CA rotated fails every
// reconnect until someone restarts it (upstream apiserver-network-proxy #350, #801).
//
// Files are compared by content, so a touch does nothing and a symlink swap is seen like a write.
// A set whose files do not make a TLS context together (a certificate already rotated, its key
// not yet) is not applied: the material in use stays, and the next check tries again.
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";

export type TlsPart = "cert" | "key" | "ca";
export type TlsContents = Partial<Record<TlsPart, Buffer>>;

export interface TlsFileSet {
  /** What the files serve, for the log: "agent port", "frontends", "agent". */
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
  /** The last problem logged, so that a file missing for an hour is one warning, not 120. */
  lastProblem: string | undefined;
}

const parts: readonly TlsPart[] = ["cert", "key", "ca"];

export class TlsFileWatcher {
  private readonly states: SetState[];
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(sets: readonly TlsFileSet[], private readonly intervalMs: number, private readonly log: Logger) {
    this.states = sets.map((set) => ({ set, applied: { ...set.initial }, lastProblem: undefined }));
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
    this.checking ??= Promise.all(this.states.map((s) => this.checkSet(s))).then(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async checkSet(state: SetState): Promise<void> {
    const { set } = state;
    const read: TlsContents = {};
    for (const part of parts) {
      const file = set.files[part];
      if (!file) continue;
      try {
        read[part] = await readFile(file.path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        this.problem(state, `read:${file.path}:${code}`, { tls: set.name, flag: file.flag, path: file.path, err: code },
          "cannot read a TLS file: the material in use stays until it can be read");
        return;
      }
    }
    const changed = parts.filter((p) => read[p] !== undefined && !read[p]!.equals(state.applied[p] ?? Buffer.alloc(0)));
    if (changed.length === 0) {
      state.lastProblem = undefined;
      return;
    }
    const flags = changed.map((p) => set.files[p]!.flag);
    try {
      set.apply(read);
    } catch (err) {
      const message = (err as Error).message;
      this.problem(state, `apply:${fingerprint(read)}`, { tls: set.name, changed: flags, err: message },
        "rotated TLS files do not make a usable TLS context together (a certificate and a key from different rotations?): the material in use stays, checked again at the next change");
      return;
    }
    state.applied = read;
    state.lastProblem = undefined;
    this.log.info({ tls: set.name, changed: flags, ...certificateSummary(read.cert) }, "TLS files changed: new handshakes use them, open connections keep theirs");
  }

  private problem(state: SetState, key: string, fields: Record<string, unknown>, message: string): void {
    if (state.lastProblem === key) return;
    state.lastProblem = key;
    this.log.warn(fields, message);
  }
}

function fingerprint(contents: TlsContents): string {
  return parts.map((p) => contents[p]?.toString("base64").slice(-24) ?? "-").join("/");
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
