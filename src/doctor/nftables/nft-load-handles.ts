// The handles nft gives a ruleset file's rules as it loads it, so that `delete rule ... handle N`
// later in the same file finds the rule nft would. The kernel numbers everything in a table from
// one counter, from 1 for a new table (nf_tables_alloc_handle): chains, sets, stateful objects,
// flowtables, rules, and the anonymous sets and maps rules use. nft 1.0.6 sends a table block as
// its new chains, then its objects, sets and flowtables, then the rules chain by chain
// (nft_cmd_expand), a rule's anonymous sets just before the rule; commands outside blocks go in
// file order. A one-element anonymous set is no set: nft turns `tcp dport { 22 }` into
// `tcp dport 22`, but keeps `{ 10.0.0.1 . 22 }` and any `vmap { ... }`. Checked against what
// `nft -a list ruleset` printed after loading test/fixtures/doctor/nftables/hand/*.nft (see
// check-hand.sh there) and the generated listings.
import { tokenizeNft } from "./parse-nft-statements.js";

/** Where and why the doctor stopped following a table's numbering. */
export interface LostNumbering { readonly line: number; readonly reason: string }

/** The handle counter of one table, as the kernel keeps it while a file loads. */
export class TableHandles {
  #next: number | null = 1;
  #lost: LostNumbering | null = null;

  get lost(): LostNumbering | null {
    return this.#lost;
  }

  /** New chains, sets and objects take handles too: only the numbers left for rules matter here. */
  skip(count: number): void {
    if (this.#next !== null) this.#next += count;
  }

  /** The handle of a rule added now; null once the numbering is lost (or lost by this rule). */
  rule(text: string, line: number): number | null {
    const sets = anonymousSetCount(text);
    if (sets === null) this.lose(line, `"${text}" may make anonymous sets or chains the doctor does not count`);
    if (this.#next === null || sets === null) return null;
    const handle = this.#next + sets;
    this.#next = handle + 1;
    return handle;
  }

  /** A replaced rule keeps its handle; its anonymous sets take new ones. */
  anonymousSets(text: string, line: number): void {
    const sets = anonymousSetCount(text);
    if (sets === null) this.lose(line, `"${text}" may make anonymous sets or chains the doctor does not count`);
    else this.skip(sets);
  }

  lose(line: number, reason: string): void {
    this.#next = null;
    this.#lost ??= { line, reason };
  }
}

/**
 * The anonymous sets and maps nft makes for one rule; null where the doctor cannot count them
 * (a `meter`, which makes a named set of its own; `jump { ... }`, an anonymous chain).
 */
export function anonymousSetCount(ruleText: string): number | null {
  const t = tokenizeNft(ruleText);
  let count = 0;
  for (let i = 0; i < t.length; i++) {
    if (t[i] === "meter") return null;
    if (t[i] !== "{") continue;
    const before = t[i - 1] ?? "";
    if (before === "jump" || before === "goto") return null;
    // The braces' elements, split at their commas.
    let depth = 0;
    let elements = 0;
    let pending = false;
    let concat = false;
    let j = i;
    for (; j < t.length; j++) {
      const tok = t[j]!;
      if (tok === "{") {
        // Braces within braces (nft merges a set into the set it stands in): not counted here.
        if (++depth > 1) return null;
      } else if (tok === "}") {
        if (--depth === 0) break;
      } else if (tok === "," && depth === 1) {
        if (pending) elements++;
        pending = false;
      } else {
        pending = true;
        if (tok === "." || tok === ":") concat = true;
      }
    }
    if (pending) elements++;
    // `add @set { ip saddr }`, `update @set { ... }`: the key of a set statement, not a set.
    const isSetKey = before.startsWith("@");
    const isMap = before === "vmap" || before === "map";
    if (!isSetKey && (isMap || concat || elements > 1)) count++;
    i = j;
  }
  return count;
}
