// Walks a new connection through every nftables base chain it meets on its way to a local socket
// (troubleshooting.md §4.4, doctor-cli.md `doctor nftables`): filter-type chains on the ingress
// hook (families netdev and inet: the packet meets them on its device, before prerouting), then on
// the prerouting hook, then on the input hook, each hook's chains in priority order, for family ip
// (IPv4) or ip6 (IPv6) plus inet. An ingress chain sees only packets of the devices it is attached
// to: one on another device than --in-interface is skipped (and that is listed as assumed); one
// whose devices the input does not show is followed both ways, like an undecidable rule. Conntrack
// has not run yet at ingress, so ct matches there are undecidable. `accept` ends only its base
// chain — the next base chain still runs — while
// `drop` and `reject` are final; a base chain that runs off its end applies its policy. nat chains
// on prerouting (which the kernel runs at dstnat, -100, whatever their priority) are walked in
// their place among the others: a `dnat` or `redirect` there rewrites the destination before every
// later chain reads it (troubleshooting.md §4.3, "DNAT may change dst!"). One to the node itself (a
// redirect, or a dnat to --destination) is followed, with the new port, through the later chains;
// one to another address sends the connection on to the forward hook, which this check does not
// walk, so the verdict is indeterminate and names the nat rule; and only the first rewrite counts,
// as the kernel binds a connection's NAT once. The nat chains also decide whether the connection
// carries `ct status dnat`; `ct status snat` is read from nat chains on input (nat-status.ts).
//
// A `notrack` that runs before conntrack (on ingress, or on prerouting or output at a priority below
// conntrack's -200) leaves the connection untracked: later `ct state` matches read `untracked` (not
// `new`), `ct status` matches nothing, and the nat chains do not see it (the kernel NATs only tracked
// connections; all three seen in a namespace). Where it runs after conntrack it does nothing. One
// that may or may not apply (an undecidable match before it, or conntrack's own priority) is
// followed both ways, as an undecidable rule is.
//
// A flow with direction "out" is a connection the node opens itself (doctor node's egress check,
// check-output.ts): it meets filter and route chains on the output hook, filter chains on
// postrouting, then netdev chains on the egress hook of the interface it leaves by; it has no
// input interface, and its destination is another machine.
//
// A rule whose match cannot be decided from the input (a rate limit, `ct count`, a tcp option...)
// is followed both ways, as the iptables check does (evaluate-iptables.ts): the whole walk runs
// again with that rule assumed to apply and assumed not to. If both ways end in the same verdict
// and effect, the evaluation is decided by the way where the rule does not apply (the one that
// holds for certain) and lists the rule as uncertain — check-nftables.ts still reports the flow as
// indeterminate, naming it, as doctor-cli.md asks, with what it ends in either way — otherwise the
// verdict is indeterminate and names that rule. At most maxWalks walks are made (2^8: eight undecidable
// rules that each lead on both ways; a row of undecidable accepts costs only one walk each);
// past that the verdict is indeterminate.
import type ipaddr from "ipaddr.js";
import { applyMarkUpdate, parseUint32 } from "../mark-update.js";
import type { NftAtom, NftChain, NftKey, NftNatTarget, NftRule, NftRuleset, NftStatement, NftTable, NftValue, NftVerdict } from "./nft-model.js";
import {
  symbolValue, compareBytes, ctStateBits, ctStatusBits, fibAddressTypes, nfprotoNumbers, nftNumber, protocolNumbers, readAddressLiteral, readPortLiteral,
} from "./nft-literals.js";
import type { NatSource, NatStatus } from "./nat-status.js";
import { findNatSource, natWords } from "./nat-status.js";
import { nftKeyText } from "./payload-key.js";
import { synMatches } from "./tcp-flags.js";
import { parseUnmapped } from "../flow-family.js";

export interface NftFlow {
  readonly source: string;
  readonly destination: string | null;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  /** The interface an incoming packet arrives on ("" for one the node sends: it has none). */
  readonly inInterface: string;
  /**
   * "in" (the default): a connection to the node, walked on the ingress, prerouting and input
   * hooks. "out": one the node opens itself (the agent's to its server), walked on the output and
   * postrouting hooks and, for netdev tables, egress on `outInterface`.
   */
  readonly direction?: "in" | "out";
  /** The interface an outgoing packet leaves by (direction "out"). */
  readonly outInterface?: string;
}

export interface NftPlace { readonly table: NftTable; readonly chain: NftChain; readonly rule: NftRule | null }

export type NftEffect = "accept" | "drop" | "reject";

export interface NftEvaluateOptions {
  /** iptables-legacy rules apply too (check-nftables.ts): their nat table may set `ct status dnat`. */
  readonly legacyRulesPresent?: boolean;
}

/**
 * Linux's default net.ipv4.ip_local_port_range: the client's source port is one of these (as
 * doctor iptables and doctor ufw take it), so a `tcp sport` match is decided where it holds for
 * all of them or for none.
 */
export const ephemeralPorts = [32768, 60999] as const;

/** A rule that could not be decided but did not change the verdict: either way it comes out the same. */
export interface NftUncertainty {
  readonly place: NftPlace;
  readonly reason: string;
  /** What decides, with the same verdict, where that rule applies (the rule itself for an accept/drop/reject). */
  readonly ifApplies: NftPlace | null;
}

/** A dnat or redirect on prerouting that sent the connection to the node itself, to another port or address of it. */
export interface NftRewrite {
  readonly place: NftPlace;
  readonly nat: "dnat" | "redirect";
  /** The destination after it: an address of the node (null: a redirect's, the address it came in on) and port. */
  readonly address: string | null;
  readonly port: number;
}

export interface NftEvaluation {
  readonly verdict: "allowed" | "blocked" | "indeterminate";
  readonly effect: NftEffect | null;
  /** The deciding rule or policy (for allowed: the last base chain's accept); null when no chain filters. */
  readonly place: NftPlace | null;
  readonly reject: string | null;
  readonly reason: string | null;
  readonly assumptions: readonly string[];
  readonly baseChains: readonly NftPlace[];
  /** Decided flows: the undecidable rules met on the way, first first. */
  readonly uncertain: readonly NftUncertainty[];
  /** Indeterminate flows where the named rule was followed both ways: what each way ends in. */
  readonly ifApplies?: NftEffect | "indeterminate";
  readonly ifNot?: NftEffect | "indeterminate";
  /** Decided flows: the rewrite the walk applied before the later chains (their matches read its port). */
  readonly rewrite?: NftRewrite;
  /** Indeterminate because the named nat rule sends the connection to another host: `address:port`. */
  readonly forwardedTo?: string;
}

type Tri = true | false | "unknown";
type Walk =
  | { kind: "continue" }
  | { kind: "final"; effect: NftEffect; place: NftPlace; reject: string | null }
  // The walk cannot go on at all (a chain the input lacks, a loop, a verdict map it cannot look up).
  | { kind: "unknown"; place: NftPlace; reason: string }
  // An undecidable rule past the choices this walk was given: walk again both ways.
  | { kind: "branch"; place: NftPlace; reason: string }
  // A dnat or redirect: ends its nat chain, and the packet goes on with the new destination.
  | { kind: "rewrite"; place: NftPlace; nat: "dnat" | "redirect"; to: NftNatTarget | null };

type Outcome =
  | { kind: "decided"; verdict: "allowed" | "blocked"; effect: NftEffect | null; place: NftPlace | null; reject: string | null; uncertain: readonly NftUncertainty[]; rewrite: NftRewrite | null }
  | { kind: "indeterminate"; place: NftPlace; reason: string; ifApplies?: NftEffect | "indeterminate"; ifNot?: NftEffect | "indeterminate"; forwardedTo?: string };

const hookOrders = { in: ["ingress", "prerouting", "input"], out: ["output", "postrouting", "egress"] } as const;
/** The chain types that may drop or reject on each path: a `type route hook output` chain filters like one of type filter. */
const filterTypes = { in: ["filter"], out: ["filter", "route"] } as const;
/** The hooks netdev tables attach to, each on a device. */
const deviceHooks = new Set(["ingress", "egress"]);
const maxDepth = 64;
/** Walks through the chains, each with other assumptions about the undecidable rules. */
export const maxWalks = 256;

export function evaluateNftables(ruleset: NftRuleset, flow: NftFlow, options: NftEvaluateOptions = {}): NftEvaluation {
  const src = parseAddr(flow.source);
  const family = src.kind() === "ipv6" ? "ip6" : "ip";
  const dst = flow.destination === null ? null : parseAddr(flow.destination);
  const notes = new Set<string>(["The connection is new (ct state new): rules accepting established/related traffic do not apply."]);
  const direction = flow.direction ?? "in";
  const hookOrder: readonly string[] = hookOrders[direction];
  const types: readonly string[] = filterTypes[direction];
  if (direction === "out") notes.add(`The packet is sent by the node itself: it has no input interface and leaves by ${flow.outInterface ?? "an interface not given"}.`);
  const bases: NftPlace[] = [];
  for (const table of ruleset.tables) {
    // netdev tables see every packet of their device, whatever its family; their rules' keys
    // (`ip saddr`) say which family they match.
    if (table.family !== family && table.family !== "inet" && table.family !== "netdev") continue;
    for (const chain of table.chains) {
      const b = chain.base;
      if (!b || !hookOrder.includes(b.hook)) continue;
      // On the way in, nat chains on prerouting may rewrite the destination (isNatBase).
      if (!types.includes(b.type) && !(direction === "in" && isNatBase({ table, chain, rule: null }))) continue;
      if (table.family === "netdev" && !deviceHooks.has(b.hook)) continue;
      bases.push({ table, chain, rule: null });
    }
  }
  // Chains of one hook and priority run in the reverse of the order they were registered, which
  // is the order nft lists them: the kernel puts a new hook before those of its priority
  // (nf_hook_entries_grow; seen in a namespace: of two output chains at priority 0, the one listed
  // second decided). So the listed order reversed, then a stable sort on hook and priority.
  bases.reverse();
  // nat chains run in their own order, by their priority, within the nat core's one hook, at
  // dstnat (-100) on prerouting whatever priority they were given (nf_nat_register_fn; seen in a
  // namespace: a redirect in a nat chain at priority 100 or -150 came before a filter chain at -50
  // and after one at -120).
  bases.sort((a, b) => hookOrder.indexOf(a.chain.base!.hook) - hookOrder.indexOf(b.chain.base!.hook) || hookPriority(a) - hookPriority(b)
    || (isNatBase(a) && isNatBase(b) ? a.chain.base!.priority - b.chain.base!.priority : 0));
  // Looked up once for every walk, and only where a rule reads `ct status dnat|snat`.
  const natSources = new Map<NatStatus, NatSource | null>();
  const natSource = (status: NatStatus): NatSource | null => {
    if (!natSources.has(status)) natSources.set(status, findNatSource(ruleset, family, status, natMatchers({ flow, family, src, dst }), options.legacyRulesPresent ?? false, direction));
    return natSources.get(status)!;
  };
  const once = (choices: readonly boolean[]) => walkBases(bases, { flow, family, src, dst, notes, choices, used: 0, mark: 0, hook: "", natSource, rewrite: null, untracked: false });
  const o = explore(once, [], { walks: 0 });
  // nat chains do not filter: the report lists the base chains that do.
  const common = { assumptions: [...notes], baseChains: bases.filter((b) => !isNatBase(b)) };
  if (o.kind === "indeterminate") {
    return {
      verdict: "indeterminate", effect: null, place: o.place, reject: null, reason: o.reason, uncertain: [], ...common,
      ...(o.ifApplies ? { ifApplies: o.ifApplies, ifNot: o.ifNot! } : {}), ...(o.forwardedTo ? { forwardedTo: o.forwardedTo } : {}),
    };
  }
  return { verdict: o.verdict, effect: o.effect, place: o.place, reject: o.reject, reason: null, uncertain: o.uncertain, ...common, ...(o.rewrite ? { rewrite: o.rewrite } : {}) };
}

const samePlace = (a: NftPlace, b: NftPlace) => a.table === b.table && a.chain === b.chain && a.rule === b.rule;

// Runs the walk with `prefix` as the outcomes of the undecidable rules met, in order; where it
// meets one more, runs it both ways and merges the two answers (see the top of this file).
function explore(once: (choices: readonly boolean[]) => Outcome | Extract<Walk, { kind: "branch" }>, prefix: readonly boolean[], budget: { walks: number }): Outcome {
  budget.walks++;
  const r = once(prefix);
  if (r.kind !== "branch") return r;
  if (budget.walks + 2 > maxWalks) {
    return { kind: "indeterminate", place: r.place, reason: `${r.reason} (and too many undecidable rules lie on the way to follow every way)` };
  }
  const ifApplies = explore(once, [...prefix, true], budget);
  const ifNot = explore(once, [...prefix, false], budget);
  // An allowed flow's effect is null where no base chain saw it (an ingress chain that may not be
  // on its device): still accepted.
  if (ifApplies.kind === "decided" && ifNot.kind === "decided" && ifApplies.verdict === ifNot.verdict && (ifApplies.effect ?? "accept") === (ifNot.effect ?? "accept")) {
    return { ...ifNot, uncertain: [{ place: r.place, reason: r.reason, ifApplies: ifApplies.place }, ...ifNot.uncertain, ...ifApplies.uncertain] };
  }
  // Both ways stop at the same later undecidable rule: that rule is the one to name.
  if (ifApplies.kind === "indeterminate" && ifNot.kind === "indeterminate" && samePlace(ifApplies.place, ifNot.place)) return ifNot;
  const end = (o: Outcome) => (o.kind === "decided" && o.effect !== null ? o.effect : o.kind === "decided" ? "accept" : "indeterminate");
  return { kind: "indeterminate", place: r.place, reason: r.reason, ifApplies: end(ifApplies), ifNot: end(ifNot) };
}

function walkBases(bases: readonly NftPlace[], ctx: Ctx): Outcome | Extract<Walk, { kind: "branch" }> {
  let last: NftPlace | null = null;
  for (const base of bases) {
    const hook = base.chain.base!;
    const nat = isNatBase(base);
    // The kernel binds a connection's destination NAT once: after a rewrite, later nat chains on
    // prerouting do not see the connection (nf_nat_inet_fn runs them only while it has none). Nor
    // do they see an untracked one: NAT needs a conntrack entry.
    if (nat && (ctx.rewrite !== null || ctx.untracked)) continue;
    ctx.hook = hook.hook;
    ctx.priority = hookPriority(base);
    ctx.inNatChain = nat;
    if (deviceHooks.has(hook.hook)) {
      const where = `${base.table.family} ${base.table.name} ${base.chain.name}`;
      const outgoing = hook.hook === "egress";
      const device = (outgoing ? ctx.flow.outInterface : ctx.flow.inInterface) ?? "";
      const moves = outgoing ? `leaves by ${device || "an interface not given"}` : `arrives on ${device} (--in-interface)`;
      if (hook.devices === undefined || hook.devices.length === 0 || device === "") {
        // Which device it is attached to decides whether it sees the packet at all.
        const applies = nextChoice(ctx);
        if (applies === undefined) {
          const reason = device === ""
            ? `the interface the packet leaves by is not given, so whether ${hook.hook} chain ${where} sees it is not known`
            : `the ${hook.hook} chain's device is not in the input, so whether the packet (${outgoing ? "leaving by" : "arriving on"} ${device}) passes through it is not known`;
          return { kind: "branch", place: base, reason };
        }
        if (!applies) continue;
      } else if (!hook.devices.some((d) => globMatch(d, device))) {
        ctx.notes.add(`The packet ${moves}, so ${hook.hook} chain ${where}, attached to ${hook.devices.join(", ")}, does not see it.`);
        continue;
      } else {
        ctx.notes.add(`The packet ${moves}, so ${hook.hook} chain ${where} sees it ${outgoing ? "after postrouting" : "before prerouting"}.`);
      }
    }
    if (outgoing(ctx)) ctx.rewritten = { dst: rewriteBefore(base, "dnat", ctx), src: rewriteBefore(base, "snat", ctx) };
    const r = walk(base.table, base.chain, ctx, 0);
    if (r.kind === "branch") return r;
    if (r.kind === "unknown") return { kind: "indeterminate", place: r.place, reason: r.reason };
    if (r.kind === "rewrite") {
      const stop = applyRewrite(r, ctx);
      if (stop) return stop;
      continue;
    }
    const blocked = { kind: "decided", verdict: "blocked", uncertain: [], rewrite: ctx.rewrite } as const;
    if (r.kind === "continue") {
      if (base.chain.base!.policy === "drop") return { ...blocked, effect: "drop", place: base, reject: null };
      // A nat chain that lets the packet by does not filter it: the last filter chain names the accept.
      if (!nat) last = base;
      continue;
    }
    if (r.effect !== "accept") return { ...blocked, effect: r.effect, place: r.place, reject: r.reject };
    if (!nat) last = r.place;
  }
  return { kind: "decided", verdict: "allowed", effect: last ? "accept" : null, place: last, reject: null, uncertain: [], rewrite: ctx.rewrite };
}

/** A `type nat hook prerouting` chain: one that may rewrite an incoming connection's destination. */
const isNatBase = (p: NftPlace) => p.chain.base?.type === "nat" && p.chain.base.hook === "prerouting";

/**
 * Where the kernel runs NAT on each hook, whatever priority a nat chain was given: the nat core
 * registers one hook there and runs the nat chains from it (NF_IP_PRI_NAT_DST, NF_IP_PRI_NAT_SRC;
 * the same for IPv6).
 */
const natCorePriority: Readonly<Record<string, number>> = { prerouting: -100, output: -100, input: 100, postrouting: 100 };

/** The priority a base chain runs at among the others of its hook. */
const hookPriority = (p: NftPlace) => (p.chain.base?.type === "nat" ? natCorePriority[p.chain.base.hook] ?? p.chain.base.priority : p.chain.base!.priority);

/**
 * A dnat or redirect the walk met on prerouting. To the node itself, the packet goes on with the
 * new port (and address) and null is returned; otherwise the outcome is indeterminate: the
 * connection is routed to another host, through the forward hook this check does not walk, or
 * where it goes is not known.
 */
function applyRewrite(r: Extract<Walk, { kind: "rewrite" }>, ctx: Ctx): Outcome | null {
  const { place, nat, to } = r;
  if (to === null) {
    return { kind: "indeterminate", place, reason: `it rewrites the connection's destination (${nat}) to an address or port the input does not show as one (a map, a range, a name), so where the connection goes is not known` };
  }
  const port = to.port ?? ctx.flow.port;
  const target = to.address === null ? null : parseAddr(to.address);
  const toText = to.address === null ? `port ${port}` : `${to.address.includes(":") ? `[${to.address}]` : to.address}:${port}`;
  if (target !== null && ctx.dst === null) {
    return { kind: "indeterminate", place, reason: `it rewrites the connection's destination to ${toText} (dnat), and whether that is the node's own address is not known (give --destination)` };
  }
  if (target !== null && target.toString() !== ctx.dst!.toString()) {
    return {
      kind: "indeterminate", place, forwardedTo: toText,
      reason: `it forwards the connection to ${toText} (dnat), so it is routed on instead of reaching the node's input chains: the forward hook (filter chains on hook forward) and that host decide, unless ${to.address} is another address of this node`,
    };
  }
  ctx.rewrite = { place, nat, address: to.address, port };
  ctx.flow = { ...ctx.flow, port };
  if (to.address === null && ctx.flow.destination !== null) {
    ctx.notes.add(`A redirect sends the connection to the address of the interface it came in on, taken to be ${ctx.flow.destination} (--destination).`);
  }
  return null;
}

interface Ctx {
  /** The flow as the chain being walked sees it: its port is the rewritten one after a dnat or redirect. */
  flow: NftFlow;
  family: "ip" | "ip6";
  src: ipaddr.IPv4 | ipaddr.IPv6;
  dst: ipaddr.IPv4 | ipaddr.IPv6 | null;
  notes: Set<string>;
  /** Whether each undecidable rule met, in order, is assumed to apply. */
  choices: readonly boolean[];
  used: number;
  /**
   * The packet mark (0 when the packet arrives; null once a rule set it to something the doctor
   * cannot compute). It stays on the packet through jumps, gotos and every later base chain.
   */
  mark: number | null;
  /** The hook of the base chain being walked. */
  hook: string;
  /** Its priority: on prerouting and output, a chain before conntrack's (-200) sees no conntrack entry yet. */
  priority?: number;
  /** What may give the connection `ct status dnat|snat` (nat-status.ts); null where nothing can. */
  natSource: (status: NatStatus) => NatSource | null;
  /** On the way in: the dnat or redirect this walk applied on prerouting, once it has. */
  rewrite: NftRewrite | null;
  /** The base chain being walked is a nat chain (isNatBase). */
  inNatChain?: boolean;
  /** A notrack before conntrack exempted the connection: it has no conntrack entry (state untracked). */
  untracked: boolean;
  /**
   * Direction "out": why the destination (dnat on output) or the source (snat on postrouting) may
   * have been rewritten before the base chain being walked; null where it cannot have been.
   */
  rewritten?: { readonly dst: string | null; readonly src: string | null };
}

const outHooks = ["output", "postrouting", "egress"];

/**
 * Why a NAT rewrite of `status`'s kind may come before `base` on the way out: a dnat on the output
 * hook runs before output chains of a later priority and every later hook, an snat on postrouting
 * before postrouting chains of a later priority and egress. A rewrite found in a chain that is not
 * itself a base chain (a jump's target) counts as coming first on its hook.
 */
function rewriteBefore(base: NftPlace, status: NatStatus, ctx: Ctx): string | null {
  if (ctx.untracked) return null; // an untracked connection is never NATed
  const source = ctx.natSource(status);
  if (!source) return null;
  const hook = base.chain.base!.hook;
  const natHook = status === "dnat" ? "output" : "postrouting";
  // A rewrite found in a base chain runs at the nat core's priority (hookPriority).
  const natPriority = source.place?.chain.base ? hookPriority(source.place) : Number.NEGATIVE_INFINITY;
  const after = outHooks.indexOf(hook) > outHooks.indexOf(natHook) || (hook === natHook && base.chain.base!.priority > natPriority);
  return after ? source.reason : null;
}

/**
 * The matchers nat-status.ts reads nat chains with: the packet as it reaches them, its mark not
 * known (mangle chains may have set it), and `ct status` there left undecided.
 */
function natMatchers(packet: Pick<Ctx, "flow" | "family" | "src" | "dst">): Parameters<typeof findNatSource>[3] {
  const ctxAt = (hook: string): Ctx => ({
    ...packet, hook, notes: new Set(), choices: [], used: 0, mark: null, rewrite: null, untracked: false,
    natSource: () => ({ place: null, reason: "a nat chain reads the conntrack status" }),
  });
  return {
    match: (st, table, hook) => (st.kind === "tcp-flags" ? matchTcpFlags(st, ctxAt(hook)) : matchStatement(st, table, ctxAt(hook))).result,
    vmap: (st, table, hook) => {
      const m = vmapLookup(st, table, ctxAt(hook));
      return m.result === "unknown" ? "unknown" : m.verdict ?? null;
    },
  };
}

/** Whether this walk takes the next undecidable rule met as applying; undefined when the walk must branch there. */
function nextChoice(ctx: Ctx): boolean | undefined {
  return ctx.used < ctx.choices.length ? ctx.choices[ctx.used++] : undefined;
}

/** The packet's mark under the key's mask (`meta mark and 0xff00`); null when it cannot be computed. */
const maskedMark = (key: NftKey, ctx: Ctx): number | null => (ctx.mark === null ? null : (ctx.mark & (key.mask ?? 0xffffffff)) >>> 0);

function walk(table: NftTable, chain: NftChain, ctx: Ctx, depth: number): Walk {
  for (const rule of chain.rules) {
    const place: NftPlace = { table, chain, rule };
    let matched: Tri = true;
    let unknownWhy = "";
    let verdict: NftVerdict | null = null;
    for (const st of rule.statements) {
      if (st.kind === "nop") continue;
      if (st.kind === "notrack") {
        const takes = notrackTakesEffect(ctx);
        if (takes === false) continue;
        // As a mark-set: it acts where the matches before it hold; where those are undecidable, or
        // where conntrack may already have run, the walk is made both ways.
        if (matched === "unknown") {
          const applies = nextChoice(ctx);
          if (applies === undefined) return { kind: "branch", place, reason: unknownWhy };
          matched = applies;
          if (!matched) break;
        }
        if (takes === "unknown") {
          const applies = nextChoice(ctx);
          if (applies === undefined) return { kind: "branch", place, reason: `${conntrackTieWhy}, and so whether its notrack exempts the connection from conntrack` };
          if (!applies) continue;
        }
        ctx.untracked = true;
        ctx.notes.add(`Rule ${rule.index} "${rule.text}" in ${table.family} ${table.name} chain ${chain.name} runs before conntrack: where it applies (notrack), the connection is untracked, so its ct state is untracked (not new), ct status matches nothing, and the nat chains do not see it.`);
        continue;
      }
      if (st.kind === "verdict") {
        verdict = st.verdict;
        break;
      }
      if (st.kind === "mark-set" || st.kind === "nat") {
        // Statements run in order: these act here when the matches before them hold, whatever
        // follows. Where those may or may not hold, the walk is made both ways, as for a verdict.
        if (matched === "unknown") {
          const applies = nextChoice(ctx);
          if (applies === undefined) return { kind: "branch", place, reason: unknownWhy };
          matched = applies;
          if (!matched) break;
        }
        if (st.kind === "mark-set") {
          ctx.mark = applyMarkUpdate(ctx.mark, st.update);
          continue;
        }
        // A dnat or redirect ends its nat chain, as a verdict does. An inet table's `dnat ip6 to
        // ...` leaves IPv4 packets alone (nft_nat_inet_eval), and the rule goes on.
        if (st.family !== null && st.family !== ctx.family) continue;
        return { kind: "rewrite", place, nat: st.nat, to: st.to };
      }
      if (st.kind === "unknown") {
        matched = "unknown";
        unknownWhy ||= `the evaluator cannot decide "${st.text}"`;
        // iptables-nft's untranslated `xt target DNAT`, netmap, dnpt: a rewrite to a destination
        // the doctor cannot read. It ends the nat chain where it applies.
        if (ctx.inNatChain && natWords.test(st.text)) {
          const applies = nextChoice(ctx);
          if (applies === undefined) return { kind: "branch", place, reason: `${unknownWhy} (it may rewrite the destination)` };
          if (!applies) {
            matched = false;
            break;
          }
          return { kind: "rewrite", place, nat: "dnat", to: null };
        }
        continue;
      }
      const m = st.kind === "tcp-flags" ? matchTcpFlags(st, ctx) : st.kind === "match" ? matchStatement(st, table, ctx) : vmapLookup(st, table, ctx);
      if (m.result === false) {
        matched = false;
        break;
      }
      // A verdict map that cannot be looked up leaves the rule's verdict itself unknown: no way
      // to follow, so the walk stops there.
      if (st.kind === "vmap" && m.result === "unknown") return { kind: "unknown", place, reason: m.why };
      if (m.result === "unknown") {
        matched = "unknown";
        unknownWhy ||= m.why;
        continue;
      }
      if (st.kind === "vmap" && m.verdict) {
        verdict = m.verdict;
        break;
      }
      if (st.kind === "vmap") {
        matched = matched === "unknown" ? "unknown" : false; // no map entry: the rule does nothing
        if (matched === false) break;
      }
    }
    // A rule without a verdict, or with `continue`, changes nothing here, matched or not.
    if (matched === false || verdict === null || verdict.kind === "continue") continue;
    if (matched === "unknown") {
      const applies = nextChoice(ctx);
      if (applies === undefined) return { kind: "branch", place, reason: unknownWhy };
      if (!applies) continue; // this way: the rule does not apply
    }
    switch (verdict.kind) {
      case "accept":
      case "drop":
        return { kind: "final", effect: verdict.kind, place, reject: null };
      case "reject":
        return { kind: "final", effect: "reject", place, reject: verdict.with ?? "icmp port-unreachable (tcp reset for TCP in inet tables)" };
      case "return":
        return { kind: "continue" };
      // The packet goes to a userspace program (NFQUEUE), which gives the verdict: as the iptables
      // check does for NFQUEUE, the walk cannot go on, and the rule is the one to name.
      case "queue":
        return { kind: "unknown", place, reason: `the rule hands the packet to a userspace program (queue), whose verdict the input does not show` };
      case "jump":
      case "goto": {
        const target = table.chains.find((c) => c.name === verdict.target);
        if (!target) return { kind: "unknown", place, reason: `chain ${verdict.target} is not in the input` };
        // Name the jump that goes too deep: the chain it is in need not be a base chain with a policy.
        if (depth >= maxDepth) return { kind: "unknown", place, reason: `jumps nest deeper than ${maxDepth} chains (a loop?)` };
        const r = walk(table, target, ctx, depth + 1);
        if (r.kind !== "continue" || verdict.kind === "goto") return r;
        continue;
      }
    }
  }
  return { kind: "continue" };
}

interface MatchResult { result: Tri; why: string; verdict?: NftVerdict }

function matchStatement(st: Extract<NftStatement, { kind: "match" }>, table: NftTable, ctx: Ctx): MatchResult {
  // Without a conntrack entry (before conntrack, or untracked) nft's ct expression has no status to
  // read and ends the rule (NFT_BREAK): `ct status != dnat` does not match either (seen in a namespace).
  if (st.keys.some((k) => k.name === "ct status") && (ctx.untracked || (ctx.hook !== "ingress" && beforeConntrack(ctx) === true))) return { result: false, why: "" };
  const items = valueItems(st.value, table);
  // A key that does not apply to the packet (tcp dport or icmp type for UDP, ip saddr for IPv6)
  // never matches, whatever the operator or the set: nft checks the protocol before the field.
  if (!keysApply(st.keys, ctx)) return { result: false, why: "" };
  if (items === null) return { result: "unknown", why: `set @${(st.value as { name: string }).name} is not in the input` };
  const negate = st.op === "!=";
  if (!["==", "!="].includes(st.op)) {
    if (st.keys.length === 1 && /^\d+$/.test(items[0]?.[0] ?? "")) {
      const v = keyValue(st.keys[0]!, ctx);
      const n = Number(items[0]![0]);
      const holds = (value: number) => (st.op === "<" ? value < n : st.op === ">" ? value > n : st.op === "<=" ? value <= n : value >= n);
      if (typeof v.value === "number") return { result: holds(v.value), why: "" };
      if (v.value === "ephemeral") {
        // The comparison holds for every source port of the range or for none where it holds at both ends.
        const [lo, hi] = ephemeralPorts;
        ctx.notes.add(sourcePortNote);
        if (holds(lo) === holds(hi)) return { result: holds(lo), why: "" };
        return { result: "unknown", why: sourcePortWhy };
      }
      if (v.value === false) return { result: false, why: "" };
    }
    return { result: "unknown", why: `comparison ${st.op} is not evaluated` };
  }
  const r = matchItems(st.keys, items, ctx);
  if (r.result === "unknown") return r;
  return { result: negate ? !r.result : r.result, why: "" };
}

// The flow's packet is a new connection's SYN (flags: syn alone). A flags match never matches
// a UDP packet: nft checks the protocol before it reads the header field (payload-key.ts).
function matchTcpFlags(st: Extract<NftStatement, { kind: "tcp-flags" }>, ctx: Ctx): MatchResult {
  if (ctx.flow.protocol !== "tcp") return { result: false, why: "" };
  ctx.notes.add("The packet is the connection's first TCP segment: tcp flags syn, with fin, rst, psh, ack, urg, ecn and cwr clear.");
  return { result: synMatches(st), why: "" };
}

function vmapLookup(st: Extract<NftStatement, { kind: "vmap" }>, table: NftTable, ctx: Ctx): MatchResult {
  let entries = "ref" in st.map ? table.sets.get(st.map.ref)?.entries : st.map;
  if (entries === undefined) return { result: "unknown", why: `map @${(st.map as { ref: string }).ref} is not in the input` };
  entries = entries ?? [];
  if (!keysApply(st.keys, ctx)) return { result: true, why: "" };
  let sawUnknown = "";
  for (const e of entries) {
    const r = matchItems(st.keys, [e.key], ctx);
    if (r.result === true) return { result: true, why: "", verdict: e.verdict };
    if (r.result === "unknown") sawUnknown ||= r.why;
  }
  return sawUnknown ? { result: "unknown", why: sawUnknown } : { result: true, why: "" };
}

function valueItems(v: NftValue, table: NftTable): readonly NftAtom[] | null {
  if (v.kind === "set") return v.items;
  const set = table.sets.get(v.name);
  return set ? set.elements : null;
}

function keysApply(keys: readonly NftKey[], ctx: Ctx): boolean {
  return keys.every((k) => (!k.impliedFamily || k.impliedFamily === ctx.family) && (!k.impliedProto || k.impliedProto === ctx.flow.protocol));
}

function matchItems(keys: readonly NftKey[], items: readonly NftAtom[], ctx: Ctx): MatchResult {
  if (!keysApply(keys, ctx)) return { result: false, why: "" };
  let unknown = "";
  for (const item of items) {
    if (item.length !== keys.length) {
      unknown ||= `element ${item.join(" . ")} does not fit ${keys.length} key(s)`;
      continue;
    }
    let all: Tri = true;
    for (let i = 0; i < keys.length; i++) {
      const r = matchAtom(keys[i]!, item[i]!, ctx);
      if (r.result === false) {
        all = false;
        break;
      }
      if (r.result === "unknown") {
        all = "unknown";
        unknown ||= r.why;
      }
    }
    if (all === true) return { result: true, why: "" };
  }
  return unknown ? { result: "unknown", why: unknown } : { result: false, why: "" };
}

function keyValue(key: NftKey, ctx: Ctx): { value: number | "ephemeral" | false | null; why?: string } {
  switch (key.name) {
    case "dport":
      return ctx.rewritten?.dst ? { value: null } : { value: ctx.flow.port };
    case "sport":
      return ctx.rewritten?.src ? { value: null } : { value: "ephemeral" };
    case "mark":
      return { value: maskedMark(key, ctx) };
    default:
      return { value: null };
  }
}

function matchAtom(key: NftKey, atom: string, ctx: Ctx): MatchResult {
  const no = { result: false as const, why: "" };
  const yes = { result: true as const, why: "" };
  // On the way out a NAT rule before this chain may have changed the address or port it reads.
  const dstChanged = ctx.rewritten?.dst;
  if (dstChanged && (key.name === "daddr" || key.name === "dport" || key.name === "fib daddr type")) {
    return { result: "unknown", why: `the destination may have been rewritten before this chain: ${dstChanged}` };
  }
  const srcChanged = ctx.rewritten?.src;
  if (srcChanged && (key.name === "saddr" || key.name === "sport")) {
    return { result: "unknown", why: `the source may have been rewritten before this chain: ${srcChanged}` };
  }
  switch (key.name) {
    case "saddr":
      return addrMatch(ctx.src, key, atom);
    case "daddr":
      if (ctx.dst === null) return { result: "unknown", why: "the rule matches on the destination address, which is not known (give --destination)" };
      return addrMatch(ctx.dst, key, atom);
    case "dport": {
      const p = portMatch(key, atom);
      if (p.kind !== "range") return p.unknown;
      return ctx.flow.port >= p.lo && ctx.flow.port <= p.hi ? yes : no;
    }
    case "sport": {
      const p = portMatch(key, atom);
      if (p.kind !== "range") return p.unknown;
      const { lo, hi } = p;
      ctx.notes.add(sourcePortNote);
      const [first, last] = ephemeralPorts;
      if (lo <= first && hi >= last) return yes;
      if (hi < first || lo > last) return no;
      return { result: "unknown", why: sourcePortWhy };
    }
    case "l4proto": {
      const n = symbolValue(protocolNumbers, atom);
      if (Number.isNaN(n)) return { result: "unknown", why: `protocol ${atom} is a name the doctor does not know the number of (/etc/protocols on that machine)` };
      return n === protocolNumbers[ctx.flow.protocol] ? yes : no;
    }
    case "nfproto":
      return symbolValue(nfprotoNumbers, atom) === nfprotoNumbers[ctx.family === "ip" ? "ipv4" : "ipv6"] ? yes : no;
    // A packet on its way in has no output interface yet; one the node sends has no input interface.
    case "iifname":
    case "iif":
      return outgoing(ctx) ? no : globMatch(atom, ctx.flow.inInterface) ? yes : no;
    case "oifname":
    case "oif":
      if (!outgoing(ctx)) return no;
      if (!ctx.flow.outInterface) return { result: "unknown", why: "the rule matches on the interface the packet leaves by, which is not given" };
      return globMatch(atom, ctx.flow.outInterface) ? yes : no;
    case "ct state": {
      // After a notrack nft reads the state untracked (nft_ct_get_eval: IP_CT_UNTRACKED).
      if (ctx.untracked) return symbolValue(ctStateBits, atom) & ctStateBits.untracked! ? yes : no;
      if (ctx.hook === "ingress") return { result: "unknown", why: "conntrack has not seen the packet yet at the ingress hook" };
      const conntrack = beforeConntrack(ctx);
      if (conntrack === "unknown") return { result: "unknown", why: conntrackTieWhy };
      // With no conntrack entry yet nft reads the state as invalid (nft_ct_get_eval). A value
      // matches the state whose bit it holds (`ct state established,related` is a bit test).
      return symbolValue(ctStateBits, atom) & ctStateBits[conntrack ? "invalid" : "new"]! ? yes : no;
    }
    case "ct status": {
      if (ctx.untracked) return no;
      if (ctx.hook === "ingress") return { result: "unknown", why: "conntrack has not seen the packet yet at the ingress hook" };
      const conntrack = beforeConntrack(ctx);
      if (conntrack === "unknown") return { result: "unknown", why: conntrackTieWhy };
      if (conntrack) return no; // no entry: no status bits
      // A new connection has no status bit but the nat ones (it is neither confirmed nor assured
      // before the input hook ends); a value of both is two questions, not taken apart here.
      const bits = symbolValue(ctStatusBits, atom) & (ctStatusBits.snat! | ctStatusBits.dnat!);
      if (bits === 0) return no;
      if (bits !== ctStatusBits.snat && bits !== ctStatusBits.dnat) return { result: "unknown", why: `ct status ${atom} asks for snat and dnat at once` };
      const status = bits === ctStatusBits.dnat ? "dnat" : "snat";
      // On the way in the walk has met the nat chains on prerouting before this chain, or not yet
      // (then no rewrite has set the bit): the connection carries dnat exactly where it applied one,
      // unless rewrites the input does not show may apply (nat-status.ts: iptables-legacy's nat
      // table, a part of the ruleset).
      if (status === "dnat" && ctx.rewrite !== null) {
        const { table, chain, rule } = ctx.rewrite.place;
        ctx.notes.add(`The connection has ct status dnat: rule ${rule!.index} "${rule!.text}" of ${table.family} ${table.name} chain ${chain.name} rewrote its destination.`);
        return yes;
      }
      const source = ctx.natSource(status);
      if (status === "dnat" && !outgoing(ctx) && source?.place != null) {
        ctx.notes.add(`No dnat or redirect of the ruleset's nat chains (the input is taken as all of it, as nft list ruleset prints it) rewrote the connection's destination before this chain, so it has no ct status dnat.`);
        return no;
      }
      if (source) return { result: "unknown", why: `ct status ${status} depends on NAT: ${source.reason}` };
      const whole = "(the input is taken as all of it, as nft list ruleset prints it)";
      ctx.notes.add(status === "dnat"
        ? outgoing(ctx)
          ? `The connection goes straight to ${ctx.flow.destination ?? "its destination"}: no dnat or redirect statement of the ruleset ${whole} can apply to it on the output hook, so it has no ct status dnat.`
          : `The connection is sent straight to the node: no dnat or redirect statement of the ruleset ${whole} can apply to it, so it has no ct status dnat.`
        : `No snat or masquerade statement of the ruleset ${whole} can apply to the connection on its way ${outgoing(ctx) ? "out" : "in"}, so it has no ct status snat.`);
      return no;
    }
    case "fib daddr type":
      atom = fibAddressTypes[nftNumber(atom)] ?? atom;
      if (outgoing(ctx)) {
        ctx.notes.add("The destination is another machine's address (fib daddr type unicast).");
        return atom === "unicast" ? yes : no;
      }
      ctx.notes.add("The destination is a local address of the node (fib daddr type local).");
      return atom === "local" ? yes : no;
    case "mark": {
      ctx.notes.add("The packet carries no mark (meta mark 0) when it reaches the first of these chains; rules that set it (meta mark set) are followed.");
      const mark = maskedMark(key, ctx);
      if (mark === null) return { result: "unknown", why: "an earlier rule set the packet mark to a value the doctor cannot compute" };
      const [lo, hi] = atom.split("-").map(parseUint32);
      if (lo === undefined || (atom.includes("-") && hi === undefined)) return { result: "unknown", why: `mark ${atom} is not a number` };
      return mark >= lo && mark <= (hi ?? lo) ? yes : no;
    }
    default:
      return { result: "unknown", why: `key ${key.name} is not evaluated` };
  }
}

const sourcePortNote = `The client's source port is an ephemeral one, in Linux's default range ${ephemeralPorts.join("-")} (net.ipv4.ip_local_port_range).`;
const sourcePortWhy = `the rule matches on the client's source port, which is any of ${ephemeralPorts.join("-")}`;

/**
 * A port literal as a range; a service name the doctor does not know (`nft -S` lists ports by
 * name) is undecidable. The parsers refuse invalid ones (nft-literals.ts); one that reaches here
 * anyway is undecidable too, never a silent non-match.
 */
function portMatch(key: NftKey, atom: string): { kind: "range"; lo: number; hi: number } | { kind: "unknown"; unknown: MatchResult } {
  const p = readPortLiteral(atom);
  if (p.kind === "range") return p;
  const why = p.kind === "name"
    ? `${nftKeyText(key)} ${atom} is a service name the doctor does not know the port of (nft -S lists ports by name): list the ruleset without -S (nft list ruleset) to decide it`
    : `${nftKeyText(key)} ${atom} is not a port: ${p.problem}`;
  return { kind: "unknown", unknown: { result: "unknown", why } };
}

const outgoing = (ctx: Ctx) => ctx.flow.direction === "out";

// Conntrack takes a packet at priority -200 on prerouting (coming in) and output (sent by the
// node). A chain of a lower priority sees it before, with no entry (found by the kernel test: a
// `ct state invalid return` at priority raw matched the SYN); one of the same priority may run
// before or after conntrack's own hook, depending on which registered last.
const conntrackPriority = -200;
const conntrackTieWhy = `the chain has conntrack's own priority (${conntrackPriority}), so whether conntrack has seen the packet yet depends on which hook registered last`;

/**
 * Whether a notrack here exempts the connection: on ingress (conntrack has not run yet: seen in a
 * namespace) and before conntrack on prerouting and output; after conntrack the packet has its
 * entry, and nft_notrack_eval leaves it alone.
 */
function notrackTakesEffect(ctx: Ctx): boolean | "unknown" {
  return ctx.hook === "ingress" || beforeConntrack(ctx);
}

function beforeConntrack(ctx: Ctx): boolean | "unknown" {
  if ((ctx.hook !== "prerouting" && ctx.hook !== "output") || ctx.priority === undefined) return false;
  return ctx.priority < conntrackPriority ? true : ctx.priority === conntrackPriority ? "unknown" : false;
}

function globMatch(pattern: string, name: string): boolean {
  return pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

export const parseAddr = parseUnmapped;

/**
 * Whether the address is in the literal (an address, prefix or range; another family's never
 * holds it). A host name, as `nft -N list ruleset` prints addresses, stands for an address the
 * input does not show: undecidable, as doctor iptables takes a host name in `iptables -L` output
 * without -n. The parsers refuse invalid literals (nft-literals.ts); one that reaches here anyway
 * is undecidable too, never a silent non-match.
 */
function addrMatch(addr: ipaddr.IPv4 | ipaddr.IPv6, key: NftKey, atom: string): MatchResult {
  const a = readAddressLiteral(atom);
  switch (a.kind) {
    case "host":
      return { result: "unknown", why: `${nftKeyText(key)} ${atom} is a host name (nft -N lists addresses by name), whose address the input does not show: list the ruleset without -N (nft list ruleset) to decide it` };
    case "invalid":
      return { result: "unknown", why: `${nftKeyText(key)} ${atom} is not an address: ${a.problem}` };
    case "prefix":
      return { result: a.net.kind() === addr.kind() && addr.match(a.net as never, a.bits), why: "" };
    case "range": {
      const bytes = addr.toByteArray();
      const [lo, hi] = [a.lo.toByteArray(), a.hi.toByteArray()];
      return { result: lo.length === bytes.length && compareBytes(bytes, lo) >= 0 && compareBytes(bytes, hi) <= 0, why: "" };
    }
  }
}
