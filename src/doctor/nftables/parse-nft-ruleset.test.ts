import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DoctorInputError } from "../input-error.js";
import { parseNftRuleset } from "./parse-nft-ruleset.js";

/** One chain of `table inet filter`, its body lines as given (written as for `nft -f`). */
const chain = (...body: string[]) => `table inet filter {\n\tchain input {\n${body.map((l) => `\t\t${l}\n`).join("")}\t}\n}\n`;
const base = (text: string) => parseNftRuleset(text).tables[0]!.chains[0]!.base;
const inputError = (line: number, what: RegExp) => (e: unknown) => e instanceof DoctorInputError && e.line === line && what.test(`${e.message} ${e.expected ?? ""}`);

describe("nftables text: the chain's type, hook and policy", () => {
  it("takes the policy from the type line, as nft list ruleset prints it", () => {
    assert.equal(base(chain("type filter hook input priority filter; policy drop;", "tcp dport 22 accept"))?.policy, "drop");
  });

  it("takes a policy written on a line of its own, with or without the semicolon", () => {
    assert.equal(base(chain("type filter hook input priority filter;", "policy drop;", "tcp dport 22 accept"))?.policy, "drop");
    assert.equal(base(chain("type filter hook input priority filter", "policy drop", "tcp dport 22 accept"))?.policy, "drop");
    assert.equal(base(chain("type filter hook input priority 0; policy drop"))?.policy, "drop");
  });

  it("takes a policy written before the type line", () => {
    assert.deepEqual(base(chain("policy drop;", "type filter hook input priority filter;")), { type: "filter", hook: "input", priority: 0, policy: "drop" });
  });

  it("keeps a rule that follows the chain's properties on the same line", () => {
    const c = parseNftRuleset(chain("type filter hook input priority filter; policy drop; tcp dport 22 accept", 'comment "a; b"')).tables[0]!.chains[0]!;
    assert.equal(c.base?.policy, "drop");
    assert.deepEqual(c.rules.map((r) => [r.index, r.text, r.line]), [[1, "tcp dport 22 accept", 3]]);
  });

  it("defaults to policy accept", () => {
    assert.equal(base(chain("type filter hook input priority filter;"))?.policy, "accept");
  });

  it("rejects a second policy, a policy on a chain without a hook, and an unknown policy, naming the line", () => {
    assert.throws(() => parseNftRuleset(chain("type filter hook input priority filter; policy accept;", "policy drop;")), inputError(4, /policy twice/));
    assert.throws(() => parseNftRuleset(chain("policy drop;", "tcp dport 22 accept")), inputError(3, /type <filter\|nat\|route> hook/));
    assert.throws(() => parseNftRuleset(chain("type filter hook input priority filter;", "policy reject;")), inputError(4, /policy <accept\|drop>/));
  });
});

describe("nftables JSON: bad input names where it is", () => {
  const fixture = readFileSync(join(import.meta.dirname, "../../../test/fixtures/doctor/nftables/generated/inet-drop-10250.json"), "utf8");
  const pretty = JSON.stringify(JSON.parse(fixture), null, 2) + "\n";
  const lineOf = (text: string, needle: string) => text.slice(0, text.indexOf(needle)).split("\n").length;
  const error = (text: string): DoctorInputError => {
    try {
      parseNftRuleset(text);
    } catch (e) {
      if (e instanceof DoctorInputError) return e;
      throw e;
    }
    assert.fail("no input error");
  };

  it("a syntax error in one-line nft -j output names the character, also where Node's message has no position", () => {
    // `Unexpected token '}', ... is not valid JSON`: no position in Node 20's message.
    const broken = fixture.replace('"right": 10250}', '"right": }');
    const e = error(broken);
    assert.equal(e.line, 1);
    assert.match(e.message, new RegExp(`"}" at character ${broken.indexOf('"right": }') + 10}$`));
    assert.match(e.expected ?? "", /^a JSON value/);
    // Output cut off: `Unexpected end of JSON input`.
    const cut = error(fixture.slice(0, 500));
    assert.deepEqual([cut.line, /the end of the input at character 501$/.test(cut.message)], [1, true]);
  });

  it("a syntax error in pretty-printed JSON names its line and column", () => {
    const broken = pretty.replace('"policy": "accept"', '"policy": accept');
    const e = error(broken);
    const line = lineOf(broken, '"policy": accept');
    assert.equal(e.line, line);
    assert.match(e.message, new RegExp(`"a" at line ${line}, column ${broken.split("\n")[line - 1]!.indexOf("accept") + 1}$`));
  });

  it("an item that refers to an unknown chain names that item's place", () => {
    const orphan = pretty.replace('"chain": "input",\n        "handle": 5', '"chain": "inptu",\n        "handle": 5');
    assert.notEqual(orphan, pretty);
    const e = error(orphan);
    // The item's own line: `    {`, just before `      "rule": {` of the rule in chain inptu.
    const itemLine = lineOf(orphan, '"chain": "inptu"') - 4;
    assert.equal(orphan.split("\n")[itemLine - 1], "    {");
    assert.equal(e.line, itemLine);
    assert.equal(e.message, `item 6 of "nftables" at line ${itemLine}, column 5: rule in unknown chain inptu`);
    const oneLine = JSON.stringify(JSON.parse(orphan));
    const at = oneLine.indexOf('{"rule":{"family":"inet","table":"filter","chain":"inptu"') + 1;
    assert.equal(error(oneLine).message, `item 6 of "nftables" at character ${at}: rule in unknown chain inptu`);
  });
});

describe("nftables text: a ruleset file as nft -f reads it", () => {
  const rules = (text: string, t = 0, c = 0) => parseNftRuleset(text).tables[t]!.chains[c]!.rules.map((r) => [r.index, r.text, r.line]);

  it("ignores the shebang, flush ruleset and comments, also at the end of a line", () => {
    const text = "#!/usr/sbin/nft -f\n\nflush ruleset\n# the firewall\n" + chain("type filter hook input priority 0; policy drop; # default deny", "tcp dport 22 accept # ssh");
    const c = parseNftRuleset(text).tables[0]!.chains[0]!;
    assert.equal(c.base?.policy, "drop");
    assert.deepEqual(c.rules.map((r) => [r.text, r.line]), [["tcp dport 22 accept", 8]]);
  });

  it("reads blocks and statements written on one line, separated by semicolons", () => {
    const text = "table inet filter { chain input { type filter hook input priority 0; policy drop; tcp dport 22 accept; ip saddr { 10.0.0.1, 10.0.0.2 } tcp dport 10250 accept; } }\n";
    assert.deepEqual(base(text), { type: "filter", hook: "input", priority: 0, policy: "drop" });
    assert.deepEqual(rules(text), [[1, "tcp dport 22 accept", 1], [2, "ip saddr { 10.0.0.1, 10.0.0.2 } tcp dport 10250 accept", 1]]);
  });

  it("substitutes define'd variables, a set value merging into the braces it is used in", () => {
    const text = "define k8s_port = 10250\ndefine allowed = { 10.0.0.0/8, 192.168.0.0/16 }\ndefine more = { $allowed, 172.16.0.0/12 }\n"
      + chain("tcp dport $k8s_port ip saddr $allowed accept", "ip saddr { $more } drop", 'comment "costs $5"');
    assert.deepEqual(rules(text).map((r) => r[1]), ["tcp dport 10250 ip saddr { 10.0.0.0/8, 192.168.0.0/16 } accept", "ip saddr { 10.0.0.0/8, 192.168.0.0/16, 172.16.0.0/12 } drop"]);
  });

  it("rejects an undefined variable and an include, naming the line", () => {
    assert.throws(() => parseNftRuleset("define a = 1\n" + chain("tcp dport $k8s_port accept")), inputError(4, /undefined variable \$k8s_port.*define k8s_port =/));
    assert.throws(() => parseNftRuleset('flush ruleset\ninclude "/etc/nftables.d/*.nft"\n'), inputError(2, /cannot open included files.*nftables\.d.*pasted/));
  });

  it("builds the same model from add/insert commands, insert rule going first", () => {
    const commands = [
      "add table inet filter",
      "add chain inet filter input { type filter hook input priority 0 ; policy drop ; }",
      "add rule inet filter input tcp dport 22 accept",
      "add rule inet filter input tcp dport 10250 drop",
      "insert rule inet filter input ct state established,related accept",
      "add rule inet filter input index 1 iifname \"lo\" accept",
    ].join("\n");
    assert.deepEqual(base(commands), { type: "filter", hook: "input", priority: 0, policy: "drop" });
    assert.deepEqual(rules(commands).map((r) => r.slice(0, 2)), [[1, "ct state established,related accept"], [2, "tcp dport 22 accept"], [3, 'iifname "lo" accept'], [4, "tcp dport 10250 drop"]]);
    const block = chain("type filter hook input priority 0; policy drop;", "ct state established,related accept", "tcp dport 22 accept", 'iifname "lo" accept', "tcp dport 10250 drop");
    const strip = (text: string) => parseNftRuleset(text).tables.map((t) => ({ ...t, chains: t.chains.map((c) => ({ ...c, rules: c.rules.map(({ line: _line, ...r }) => r) })) }));
    assert.deepEqual(strip(commands), strip(block));
  });

  it("adds elements to a named set, and applies flush and delete commands in order", () => {
    const text = "table ip t { set allowed { type ipv4_addr; elements = { 10.0.0.1 } }\nchain c { type filter hook input priority 0; } }\n"
      + "add element ip t allowed { 10.0.0.2, 10.0.0.3 }\nadd rule ip t c ip saddr @allowed accept\nflush chain ip t c\nadd rule ip t c drop\n"
      + "table ip gone { chain x { type filter hook input priority 0; policy drop; } }\ndelete table ip gone\n";
    const r = parseNftRuleset(text);
    assert.deepEqual(r.tables[0]!.sets.get("allowed")?.elements, [["10.0.0.1"], ["10.0.0.2"], ["10.0.0.3"]]);
    assert.deepEqual(r.tables[0]!.chains[0]!.rules.map((x) => x.text), ["drop"]);
    assert.deepEqual(r.tables.map((t) => t.name), ["t"]);
  });

  it("names the line of a command for a table or chain that is not declared, and of an unknown command", () => {
    assert.throws(() => parseNftRuleset("add chain inet filter input\n"), inputError(1, /table inet filter is not declared/));
    assert.throws(() => parseNftRuleset("add table inet filter\n\nadd rule inet filter input tcp dport 22 accept\n"), inputError(3, /chain input is not declared/));
    assert.throws(() => parseNftRuleset("add table inet filter\nlist ruleset\n"), inputError(2, /unexpected line.*add\|insert rule/));
    assert.throws(() => parseNftRuleset("table inet filter {\n\tchain input {\n\t\tip saddr { 10.0.0.1,\n"), inputError(3, /never closed/));
    assert.throws(() => parseNftRuleset("table inet filter {\n}\n}\n"), inputError(3, /closes no table/));
  });
});

describe("nftables text: a block's { stands on its header's line, as nft reads it", () => {
  // nft 1.0.6 (`nft -c -f`): "syntax error, unexpected '{'" for each of these; a newline ends the
  // header, so the file never loads and the rules in it are not the node's.
  it("refuses a { on the line after a table header, naming the { and the header's line", () => {
    const text = "table inet filter\n{\n    chain input\n    {\n        type filter hook input priority 0; policy drop;\n        tcp dport 10250 accept\n    }\n}\n";
    assert.throws(() => parseNftRuleset(text), inputError(2, /nft ends "table inet filter" at the end of line 1.*refuses.*the "\{" at the end of line 1/));
  });

  it("refuses a { on the line after a chain header in a table, and after an add chain command", () => {
    assert.throws(() => parseNftRuleset("table inet filter {\n\tchain input\n\t{\n\t\ttype filter hook input priority 0;\n\t}\n}\n"), inputError(3, /nft ends "chain input" at the end of line 2/));
    assert.throws(() => parseNftRuleset("add table inet filter\nadd chain inet filter input\n{ type filter hook input priority 0; policy drop; }\n"), inputError(3, /nft ends "add chain inet filter input" at the end of line 2/));
  });

  it("refuses a { that follows no header, and a chain without its body in a table", () => {
    assert.throws(() => parseNftRuleset("table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0;\n\t\t{ tcp dport 22 } accept\n\t}\n}\n"), inputError(4, /follows no table, chain or set header/));
    assert.throws(() => parseNftRuleset("table inet filter {\n\tchain input\n}\n"), inputError(2, /"chain input \{" with the "\{" on the chain's line/));
  });

  it("reads a header continued with \\ onto the { of the next line as the one-line form", () => {
    const continued = "table inet filter \\\n{\n\tchain input \\\n\t{\n\t\ttype filter hook input priority 0; policy drop;\n\t\ttcp dport 10250 accept\n\t}\n}\n";
    const oneLine = chain("type filter hook input priority 0; policy drop;", "tcp dport 10250 accept");
    const strip = (text: string) => parseNftRuleset(text).tables.map((t) => ({ ...t, chains: t.chains.map((c) => ({ ...c, rules: c.rules.map(({ line: _line, ...r }) => r) })) }));
    assert.deepEqual(strip(continued), strip(oneLine));
  });
});
