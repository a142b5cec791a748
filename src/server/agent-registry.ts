// The connected agents and how a dial picks one (shared/spec/konnectivity.md §2.2): strategies
// are tried in flag order; "not found" falls through to the next. An agent may have several
// streams (reconnects); the oldest is used, as upstream does. Draining agents are avoided
// unless every candidate is draining.
import { hostIdentities, splitHostPort, type AgentIdentifiers } from "../protocol/index.js";
import type { ProxyStrategy } from "./server-options.js";

export interface RegisteredAgent {
  readonly agentId: string;
  readonly identifiers: AgentIdentifiers;
  readonly isDraining: boolean;
}

export class AgentRegistry<A extends RegisteredAgent> {
  /** agentId → its streams, oldest first. */
  private readonly byId = new Map<string, A[]>();

  constructor(private readonly strategies: readonly ProxyStrategy[]) {}

  add(agent: A): void {
    const list = this.byId.get(agent.agentId);
    if (list) list.push(agent);
    else this.byId.set(agent.agentId, [agent]);
  }

  remove(agent: A): void {
    const list = this.byId.get(agent.agentId);
    if (!list) return;
    const i = list.indexOf(agent);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byId.delete(agent.agentId);
  }

  get agentCount(): number {
    return this.byId.size;
  }

  /** Every stream of every agent. */
  all(): A[] {
    return [...this.byId.values()].flat();
  }

  streamsOf(agentId: string): readonly A[] {
    return this.byId.get(agentId) ?? [];
  }

  /** The agent for a dial to `address` (host:port), or undefined: "No agent available". */
  pick(address: string): { agent: A; strategy: ProxyStrategy } | undefined {
    for (const strategy of this.strategies) {
      const agent = this.pickWith(strategy, address);
      if (agent) return { agent, strategy };
    }
    return undefined;
  }

  /** Readiness, as upstream: the first strategy has at least one agent. */
  get isReady(): boolean {
    return this.candidates(this.strategies[0]!, undefined).length > 0;
  }

  /** Agents each strategy could use, for the metrics' ready_backends{proxy_strategy}. */
  countFor(strategy: ProxyStrategy): number {
    return this.candidates(strategy, undefined).length;
  }

  private pickWith(strategy: ProxyStrategy, address: string): A | undefined {
    const candidates = this.candidates(strategy, address);
    if (candidates.length === 0) return undefined;
    // Random start, first non-draining after it; if all drain, the first one (upstream's rule).
    const start = strategy === "destHost" ? 0 : Math.floor(Math.random() * candidates.length);
    for (let i = 0; i < candidates.length; i++) {
      const a = candidates[(start + i) % candidates.length]!;
      if (!a.isDraining) return a;
    }
    return candidates[0];
  }

  /** The oldest stream of each agent that `strategy` would route `address` to (any address when undefined). */
  private candidates(strategy: ProxyStrategy, address: string | undefined): A[] {
    const out: A[] = [];
    const host = address === undefined ? undefined : (splitHostPort(address)?.host ?? address).toLowerCase();
    for (const streams of this.byId.values()) {
      // Prefer the oldest stream that is not draining.
      const first = streams.find((s) => !s.isDraining) ?? streams[0]!;
      const ids = first.identifiers;
      switch (strategy) {
        case "default":
          out.push(first);
          break;
        case "defaultRoute":
          if (ids.defaultRoute) out.push(first);
          break;
        case "destHost": {
          const identities = hostIdentities(ids);
          if (host === undefined ? identities.length > 0 : identities.some((v) => v.toLowerCase() === host)) out.push(first);
          break;
        }
      }
    }
    return out;
  }
}
