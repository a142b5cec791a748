// The node report's one Fix block, made from the fixes of every problem finding (doctor-cli.md:
// "fixes are copy-paste commands, in the order they must run"). Each finding's fixes were planned
// alone, against the rules as read; pasted one after another they are not right as a whole:
// - two sources blocked by the same rule give the same `iptables --delete INPUT 1` twice, and the
//   second deletes whatever rule moved up into place 1;
// - rule numbers shift after every delete and insert (troubleshooting.md §4.2, ufw renumbers the
//   same way), so one finding's numbers are wrong once another finding's commands have run.
// So each numbered command is read back to the rule it means (its place among the rules as read,
// given the commands of its own finding before it) and numbered again for the point where it
// stands in the combined list; a delete of a rule already deleted, or an allow already given
// earlier in the same list, is left out, and the commands that save iptables' rules for the next
// boot come once, after the last change they must save.
import { familyOf } from "../flow-family.js";
import type { CheckResult, Fix } from "../report/check-result.js";

// Where a rule stands among the rules as read, in one numbered list (an iptables chain, or ufw's
// numbered rules, all IPv4 rules before all IPv6 rules). `family` orders the two halves of ufw's
// list (0 for iptables); `n` is the rule's number as read; ±Infinity are the ends of a half (where
// `ufw prepend` and an appended `ufw allow` put a rule). A place past the last rule is a number
// past it: the list's length is not known, and need not be.
interface Place { readonly family: 0 | 1; readonly n: number }

const before = (a: Place, b: Place) => a.family < b.family || (a.family === b.family && a.n < b.n);
const atOrBefore = (a: Place, b: Place) => !before(b, a);

/** What has been done to one numbered list: rules deleted (by place as read), rules inserted (just before a place). */
interface ListEdits {
  readonly deleted: Place[];
  readonly inserted: { readonly at: Place; readonly rule: string }[];
}

const noEdits = (): ListEdits => ({ deleted: [], inserted: [] });

// The number the rule at `place` (as read) has after `edits`, or would have were it still there;
// a rule inserted at `place` goes just before it, so this is also the number such an insert takes.
function numberOf(place: Place, edits: ListEdits): number {
  const deletedBefore = edits.deleted.filter((d) => before(d, place)).length;
  const insertedBefore = edits.inserted.filter((i) => atOrBefore(i.at, place)).length;
  // An IPv6 rule's number counts the IPv4 rules; an end of a half has no number of its own.
  return (Number.isFinite(place.n) ? place.n : 1) - deletedBefore + insertedBefore;
}

// The rule as read that holds `number` after `edits` (a delete), or the first rule as read at or
// after that position (an insert: the new rule goes just before it).
function placeAt(number: number, family: 0 | 1, edits: ListEdits, live: (p: Place) => boolean): Place {
  for (let n = 1; ; n++) {
    const place = { family, n };
    if (live(place) && numberOf(place, edits) >= number) return place;
  }
}

type Parsed =
  | { readonly kind: "delete"; readonly list: string; readonly number: number; readonly form: (n: number) => string }
  | { readonly kind: "insert"; readonly list: string; readonly number: number | "first" | "last"; readonly rule: string; readonly form: (n: number) => string }
  | { readonly kind: "save"; readonly family: string }
  | { readonly kind: "other" };

// The command forms the planners write (fix-iptables.ts, fix-ufw.ts); anything else is left as it is.
function parse(command: string): Parsed {
  // iptables-legacy's commands edit the legacy backend's chains: lists of their own.
  let m = /^(ip6?tables(?:-legacy)?) --delete (\S+) (\d+)$/.exec(command);
  if (m) return { kind: "delete", list: `${m[1]} ${m[2]}`, number: Number(m[3]), form: (n) => `${m![1]} --delete ${m![2]} ${n}` };
  m = /^(ip6?tables(?:-legacy)?) --insert (\S+) (\d+) (.+)$/.exec(command);
  if (m) return { kind: "insert", list: `${m[1]} ${m[2]}`, number: Number(m[3]), rule: m[4]!, form: (n) => `${m![1]} --insert ${m![2]} ${n} ${m![4]}` };
  m = /^(ip6?tables)-save > \S+$/.exec(command);
  if (m) return { kind: "save", family: m[1]! };
  m = /^ufw --force delete (\d+)$/.exec(command);
  if (m) return { kind: "delete", list: "ufw", number: Number(m[1]), form: (n) => `ufw --force delete ${n}` };
  m = /^ufw (?:insert (\d+) |(prepend) )?((?:allow|deny|reject|limit) .+)$/.exec(command);
  if (m) {
    const rule = m[3]!;
    const number = m[1] !== undefined ? Number(m[1]) : m[2] !== undefined ? "first" : "last";
    return { kind: "insert", list: "ufw", number, rule, form: (n) => (m![1] !== undefined ? `ufw insert ${n} ${rule}` : command) };
  }
  return { kind: "other" };
}

// A ufw allow already placed at or before where another is wanted lets that flow in too: the
// same source, port and protocol, to any address or to the same one.
function covers(given: string, wanted: string): boolean {
  const a = /^allow from (\S+) to (\S+) port (\S+) proto (\S+)$/.exec(given);
  const b = /^allow from (\S+) to (\S+) port (\S+) proto (\S+)$/.exec(wanted);
  if (!a || !b) return given === wanted;
  return a[1] === b[1] && a[3] === b[3] && a[4] === b[4] && (a[2] === "any" || a[2] === b[2]);
}

const renumberedNote = (from: number, to: number) =>
  ` [In this combined list it is ${to}, not ${from}: the commands above renumber the rules.]`;

export function combineFixes(findings: readonly CheckResult[]): Fix[] {
  const out: Fix[] = [];
  const saves: Fix[] = [];
  // Where each unnumbered command already stands in `out`.
  const otherAt = new Map<string, number>();
  const combined = new Map<string, ListEdits>();
  const editsOf = (map: Map<string, ListEdits>, list: string) => map.get(list) ?? map.set(list, noEdits()).get(list)!;
  for (const finding of findings) {
    // ufw numbers all IPv4 rules before all IPv6 rules: a finding's commands are of its flow's family.
    const family: 0 | 1 = finding.flow && familyOf(finding.flow.source) === "ipv6" ? 1 : 0;
    const own = new Map<string, ListEdits>();
    for (const fix of finding.fixes) {
      const p = parse(fix.command);
      if (p.kind === "save") {
        if (!saves.some((s) => s.command === fix.command)) saves.push(fix);
        continue;
      }
      if (p.kind === "other") {
        // The same command for two findings (an edit of /etc/ufw/before.rules for two sources) is
        // run once, but each finding's description says what to do in it: keep them all.
        const at = otherAt.get(fix.command);
        if (at === undefined) {
          otherAt.set(fix.command, out.length);
          out.push(fix);
        } else if (!out[at]!.description.includes(fix.description)) {
          out[at] = { ...out[at]!, description: `${out[at]!.description} Also: ${fix.description}` };
        }
        continue;
      }
      const fam = p.list === "ufw" ? family : 0;
      const mine = editsOf(own, p.list);
      const all = editsOf(combined, p.list);
      if (p.kind === "delete") {
        const place = placeAt(p.number, fam, mine, (q) => !mine.deleted.some((d) => d.family === q.family && d.n === q.n));
        mine.deleted.push(place);
        if (all.deleted.some((d) => d.family === place.family && d.n === place.n)) continue;
        const number = numberOf(place, all);
        all.deleted.push(place);
        out.push({ description: fix.description + (number === p.number ? "" : renumberedNote(p.number, number)), command: p.form(number) });
        continue;
      }
      const at: Place = p.number === "first" ? { family: fam, n: -Infinity }
        : p.number === "last" ? { family: fam, n: Infinity }
        : placeAt(p.number, fam, mine, (q) => !mine.deleted.some((d) => d.family === q.family && d.n === q.n));
      mine.inserted.push({ at, rule: p.rule });
      if (all.inserted.some((i) => atOrBefore(i.at, at) && covers(i.rule, p.rule))) continue;
      const number = numberOf(at, all);
      all.inserted.push({ at, rule: p.rule });
      const changed = typeof p.number === "number" && number !== p.number;
      out.push({ description: fix.description + (changed ? renumberedNote(p.number as number, number) : ""), command: p.form(number) });
    }
  }
  // Each family's saves right after its last change, so that they save every change and a later
  // finding's commands (the kubelet's, say) keep their place.
  // (No iptables-legacy save is offered: check-node.ts's legacyFindings says why.)
  for (const family of ["iptables", "ip6tables"]) {
    const own = saves.filter((f) => f.command.startsWith(`${family}-save `));
    const last = out.findLastIndex((f) => f.command.startsWith(`${family} `));
    out.splice(last === -1 ? out.length : last + 1, 0, ...own);
  }
  return out;
}
