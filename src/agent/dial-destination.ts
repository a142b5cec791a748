// The agent's dial to a destination: a TCP connect with a timeout (upstream: 5 s, hard-coded),
// cancellable by DIAL_CLS through a DialCancel, never blocking other connections. Failures carry
// Go's wording (describeDialError), which is what servers and kube-apiserver expect in DIAL_RSP.
import { lookup } from "node:dns/promises";
import net, { isIP, type Socket } from "node:net";
import { TunnelError, describeDialError, splitHostPort } from "../protocol/index.js";
import type { DestinationPolicy } from "./destination-policy.js";

export class DialError extends TunnelError {
  constructor(
    /** Go's text, e.g. `dial tcp 10.0.0.5:10250: connect: connection refused`. */
    readonly goText: string,
    readonly kind: "timeout" | "denied" | "cancelled" | "other",
    cause?: unknown,
  ) {
    super(kind === "denied" ? "DESTINATION_DENIED" : kind === "timeout" ? "DIAL_TIMEOUT" : kind === "cancelled" ? "CANCELLED" : "DIAL_FAILED", goText, { cause });
  }
}

/**
 * Cancels one dial in progress (the server's DIAL_CLS). A plain object rather than an
 * AbortController: the controller, its signal and the signal's listener map were ~2 % of the
 * agent's CPU per request in the bench's HTTP GET row, where every request is a dial.
 */
export class DialCancel {
  #isCancelled = false;
  #onCancel: (() => void) | undefined;

  get cancelled(): boolean {
    return this.#isCancelled;
  }

  cancel(): void {
    if (this.#isCancelled) return;
    this.#isCancelled = true;
    const onCancel = this.#onCancel;
    this.#onCancel = undefined;
    onCancel?.();
  }

  /** The dial's hook, or undefined once it is over; runs at most once. */
  set onCancel(hook: (() => void) | undefined) {
    this.#onCancel = hook;
  }
}

/** Resolves a host name to one address (the agent's resolver, or a test's); `family` 4 or 6 only that family's. */
export type LookupHost = (host: string, family?: 4 | 6) => Promise<string>;

const systemLookup: LookupHost = async (host, family) => (await lookup(host, { family: family ?? 0 })).address;

/** The networks of Go's net.Dial the agent serves, as DIAL_REQ's protocol names them. */
export type DialNetwork = "tcp" | "tcp4" | "tcp6";

export const isDialNetwork = (protocol: string): protocol is DialNetwork => protocol === "tcp" || protocol === "tcp4" || protocol === "tcp6";

export async function dialDestination(
  address: string,
  options: { timeoutMs: number; policy: DestinationPolicy; cancel?: DialCancel; lookup?: LookupHost; network?: DialNetwork },
): Promise<Socket> {
  const network = options.network ?? "tcp";
  if (network === "tcp") return await dialTcp(address, options, undefined);
  // Go names the network it was asked for: "dial tcp4 10.0.0.5:10250: connect: connection refused".
  try {
    return await dialTcp(address, options, network === "tcp4" ? 4 : 6);
  } catch (err) {
    if (!(err instanceof DialError)) throw err;
    throw new DialError(err.goText.replace(/^dial tcp\b/, `dial ${network}`), err.kind, err.cause);
  }
}

async function dialTcp(
  address: string,
  options: { timeoutMs: number; policy: DestinationPolicy; cancel?: DialCancel; lookup?: LookupHost },
  family: 4 | 6 | undefined,
): Promise<Socket> {
  const target = splitHostPort(address);
  // Go's wording: the address is not split yet, so the error carries no address of its own.
  if (!target) {
    const port = /^(?:\[[^\]]*\]|[^:[\]]*):(\d+)$/.exec(address)?.[1];
    throw new DialError(port === undefined ? `dial tcp: address ${address}: missing port in address` : `dial tcp: address ${port}: invalid port`, "other");
  }
  // The deadline covers the lookup and the connect, as Go's net.DialTimeout. Plain timers, cleared
  // on every outcome: AbortSignal.timeout/any cost a lingering timer and signal bookkeeping per
  // dial (seen in the benchmark's profile under dial floods).
  const deadlineAt = Date.now() + options.timeoutMs;
  const cancel = options.cancel;
  let ip = target.host;
  if (isIP(ip) === 0) ip = await lookupWithin(target.host, address, options.timeoutMs, options.lookup ?? systemLookup, cancel, family);
  if (family !== undefined) ip = ofFamily(ip, target.host, family);
  if (!options.policy.allows(ip, target.port)) {
    throw new DialError(`dial tcp ${address}: destination not allowed by the agent's --allowed-destinations (${options.policy.describe()})`, "denied");
  }
  // Cancelled already (during the lookup, or before the dial began): no connection attempt at all.
  if (cancel?.cancelled) throw new DialError(`dial tcp ${address}: operation was canceled`, "cancelled");
  // Go names the address it connected to, the resolved one (dial tcp 127.0.0.1:1, for localhost:1).
  const dialled = ip === target.host ? address : `${isIP(ip) === 6 ? `[${ip}]` : ip}:${target.port}`;
  return await new Promise<Socket>((resolve, reject) => {
    const socket = net.connect({ host: ip, port: target.port, noDelay: true });
    const fail = (timedOut: boolean) => {
      socket.destroy();
      cleanup();
      reject(timedOut
        ? new DialError(describeDialError(dialled, { code: "ETIMEDOUT" }).goText, "timeout")
        : new DialError(`dial tcp ${dialled}: operation was canceled`, "cancelled"));
    };
    const timer = setTimeout(() => fail(true), Math.max(0, deadlineAt - Date.now()));
    const onError = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(new DialError(describeDialError(dialled, err).goText, "other", err));
    };
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const cleanup = () => {
      clearTimeout(timer);
      if (cancel) cancel.onCancel = undefined;
      socket.off("error", onError);
      socket.off("connect", onConnect);
    };
    if (cancel) cancel.onCancel = () => fail(false);
    socket.once("error", onError);
    socket.once("connect", onConnect);
  });
}

/**
 * The lookup, given up on at the deadline or on cancel. getaddrinfo itself cannot be stopped: a
 * resolver that hangs keeps a libuv thread until it answers, but the dial fails on time.
 */
function lookupWithin(host: string, address: string, timeoutMs: number, lookupHost: LookupHost, cancel: DialCancel | undefined, family?: 4 | 6): Promise<string> {
  if (cancel?.cancelled) return Promise.reject(new DialError(`dial tcp ${address}: operation was canceled`, "cancelled"));
  return new Promise<string>((resolve, reject) => {
    let isSettled = false;
    const settle = (outcome: () => void) => {
      if (isSettled) return;
      isSettled = true;
      clearTimeout(timer);
      if (cancel) cancel.onCancel = undefined;
      outcome();
    };
    const timer = setTimeout(() => settle(() => reject(new DialError(`dial tcp: lookup ${host}: i/o timeout`, "timeout"))), timeoutMs);
    if (cancel) cancel.onCancel = () => settle(() => reject(new DialError(`dial tcp ${address}: operation was canceled`, "cancelled")));
    lookupHost(host, family).then(
      (ip) => settle(() => resolve(ip)),
      (err: unknown) => {
        // A name with addresses of the other family only: Go's "no suitable address found".
        if (family === undefined) return settle(() => reject(new DialError(describeDialError(address, err).goText, "other", err)));
        lookupHost(host).then(
          () => settle(() => reject(noSuitableAddress(host))),
          () => settle(() => reject(new DialError(describeDialError(address, err).goText, "other", err))),
        );
      },
    );
  });
}

const noSuitableAddress = (host: string) => new DialError(`dial tcp: address ${host}: no suitable address found`, "other");

/**
 * The address to dial for tcp4 or tcp6, as Go's net.Dial picks it: an IPv4-mapped IPv6 address is
 * IPv4 (so tcp4 dials it, tcp6 does not); an address of the other family is no suitable address.
 */
function ofFamily(ip: string, host: string, family: 4 | 6): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  const v4 = mapped ?? (isIP(ip) === 4 ? ip : undefined);
  if (family === 4 && v4 !== undefined) return v4;
  if (family === 6 && v4 === undefined) return ip;
  throw noSuitableAddress(host.replace(/^\[|\]$/g, ""));
}
