// Parses the JSON of `az network nsg show -o json` (an object) or `az network nsg rule list
// [--include-default] -o json` (an array of rules) into the normalised model. `az` flattens
// `properties`; ARM (REST, templates, `az resource show`) nests fields in it — both are accepted,
// at the NSG level and per rule (troubleshooting.md §2.1).
import ipaddr from "ipaddr.js";
import { DoctorInputError } from "../input-error.js";
import { parseJsonInput } from "../json-input.js";
import { defaultRules, isDefaultRuleName } from "./default-rules.js";
import { maxCustomPriority, minCustomPriority } from "./nsg-model.js";
import type { Nsg, NsgAccess, NsgDirection, NsgProtocol, NsgRule } from "./nsg-model.js";

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** A field either flat (az) or under `properties` (ARM); `path` is where it was found. */
function field(obj: Json, name: string, path: string): { value: unknown; path: string } {
  if (obj[name] !== undefined) return { value: obj[name], path: `${path}.${name}` };
  const props = obj["properties"];
  if (isObject(props) && props[name] !== undefined) return { value: props[name], path: `${path}.properties.${name}` };
  return { value: undefined, path: `${path}.${name}` };
}

/** The 1-based line of `index` in `text`. */
const lineAt = (text: string, index: number): number => text.slice(0, index).split("\n").length;

/** Where a rule starts in the text: the line of its `"name": "<name>"`, for the error message. */
function lineOfName(text: string, name: string | undefined): number | undefined {
  if (name === undefined) return undefined;
  const escaped = JSON.stringify(name).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const m = new RegExp(`"name"\\s*:\\s*${escaped}`).exec(text);
  return m ? lineAt(text, m.index) : undefined;
}

/** `.../resourceGroups/<rg>/providers/Microsoft.Network/networkSecurityGroups/<nsg>/securityRules/<rule>` */
const idSegment = (id: unknown, key: string): string | null => {
  if (typeof id !== "string") return null;
  const m = new RegExp(`/${key}/([^/]+)`, "i").exec(id);
  return m ? decodeURIComponent(m[1]!) : null;
};

const protocols: Record<string, NsgProtocol> = {
  "*": "*", any: "*", all: "*", tcp: "Tcp", udp: "Udp", icmp: "Icmp", esp: "Esp", ah: "Ah",
};

/** `*`, an IP, a CIDR or a service tag; anything else is invalid input (§2.1). */
function checkPrefix(value: string): boolean {
  if (value === "*") return true;
  if (value.includes("/")) {
    try {
      ipaddr.parseCIDR(value);
      return true;
    } catch {
      return false;
    }
  }
  if (/^[\d.]+$/.test(value)) return ipaddr.IPv4.isValidFourPartDecimal(value);
  if (value.includes(":")) return ipaddr.IPv6.isValid(value);
  return /^[A-Za-z][A-Za-z0-9._-]*$/.test(value);
}

function checkPortRange(value: string): boolean {
  if (value === "*" || /^any$/i.test(value)) return true;
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(value);
  if (!m) return false;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  return lo <= hi && hi <= 65535;
}

class RuleReader {
  constructor(
    private readonly raw: Json,
    readonly path: string,
    private readonly text: string,
    private readonly ruleName: string | undefined,
  ) {}

  fail(message: string, at: string, expected: string): never {
    throw new DoctorInputError(`${at}: ${message}`, { line: lineOfName(this.text, this.ruleName), expected });
  }

  get(name: string) {
    return field(this.raw, name, this.path);
  }

  /** Singular and plural forms (`sourceAddressPrefix` / `sourceAddressPrefixes`); either may be null, "", [] or absent. */
  list(singular: string, plural: string, check: (v: string) => boolean, expected: string): string[] {
    const out: { value: string; path: string }[] = [];
    const one = this.get(singular);
    if (typeof one.value === "string") {
      if (one.value.trim() !== "") out.push({ value: one.value.trim(), path: one.path });
    } else if (one.value !== undefined && one.value !== null) {
      this.fail(`expected a string, got ${JSON.stringify(one.value)}`, one.path, expected);
    }
    const many = this.get(plural);
    if (Array.isArray(many.value)) {
      many.value.forEach((v, i) => {
        if (typeof v !== "string") this.fail(`expected a string, got ${JSON.stringify(v)}`, `${many.path}[${i}]`, expected);
        if (v.trim() !== "") out.push({ value: v.trim(), path: `${many.path}[${i}]` });
      });
    } else if (many.value !== undefined && many.value !== null) {
      this.fail(`expected an array, got ${JSON.stringify(many.value)}`, many.path, expected);
    }
    for (const v of out) if (!check(v.value)) this.fail(`invalid value ${JSON.stringify(v.value)}`, v.path, expected);
    return [...new Set(out.map((v) => v.value))];
  }

  asgs(name: string): string[] {
    const f = this.get(name);
    if (f.value === undefined || f.value === null) return [];
    if (!Array.isArray(f.value)) this.fail("expected an array of { id }", f.path, "[{ \"id\": \".../applicationSecurityGroups/<name>\" }]");
    return f.value.map((v, i) => {
      const id = isObject(v) ? v["id"] : undefined;
      const name = typeof id === "string" ? id.split("/").filter(Boolean).pop() : undefined;
      if (!name) this.fail("expected { id: \".../applicationSecurityGroups/<name>\" }", `${f.path}[${i}]`, "an application security group id");
      return name;
    });
  }
}

function parseRule(raw: unknown, path: string, text: string, defaultHint: boolean): NsgRule {
  if (!isObject(raw)) throw new DoctorInputError(`${path}: expected a rule object`, { expected: "an NSG security rule object" });
  const nameField = field(raw, "name", path);
  const rawName = typeof nameField.value === "string" ? nameField.value : undefined;
  const r: RuleReader = new RuleReader(raw, path, text, rawName);
  if (rawName === undefined || rawName === "") r.fail("missing rule name", nameField.path, "a rule name");
  // Effective-rules output prefixes names with `securityRules/` or `defaultSecurityRules/` (§2.1).
  const name = rawName.replace(/^(default)?securityRules\//i, "");

  const pr = r.get("priority");
  const priority = typeof pr.value === "string" && /^\d+$/.test(pr.value) ? Number(pr.value) : pr.value;
  if (typeof priority !== "number" || !Number.isInteger(priority) || priority < 1 || priority > 65535) {
    r.fail(pr.value === undefined ? "missing priority" : `invalid priority ${JSON.stringify(pr.value)}`, pr.path, "an integer priority (100-4096 for custom rules)");
  }
  const dir = r.get("direction");
  const direction = typeof dir.value === "string" ? ({ inbound: "Inbound", outbound: "Outbound" } as Record<string, NsgDirection>)[dir.value.toLowerCase()] : undefined;
  if (!direction) r.fail(dir.value === undefined ? "missing direction" : `invalid direction ${JSON.stringify(dir.value)}`, dir.path, "\"Inbound\" or \"Outbound\"");
  const acc = r.get("access");
  const access = typeof acc.value === "string" ? ({ allow: "Allow", deny: "Deny" } as Record<string, NsgAccess>)[acc.value.toLowerCase()] : undefined;
  if (!access) r.fail(acc.value === undefined ? "missing access" : `invalid access ${JSON.stringify(acc.value)}`, acc.path, "\"Allow\" or \"Deny\"");
  const pro = r.get("protocol");
  const protocol = typeof pro.value === "string" ? protocols[pro.value.toLowerCase()] : undefined;
  if (!protocol) r.fail(pro.value === undefined ? "missing protocol" : `invalid protocol ${JSON.stringify(pro.value)}`, pro.path, "Tcp, Udp, Icmp, Esp, Ah or *");

  const prefixExpected = "*, an IP address, a CIDR or a service tag";
  const portExpected = "*, a port N or a range A-B within 0-65535";
  const sourcePrefixes = r.list("sourceAddressPrefix", "sourceAddressPrefixes", checkPrefix, prefixExpected);
  const destinationPrefixes = r.list("destinationAddressPrefix", "destinationAddressPrefixes", checkPrefix, prefixExpected);
  const sourceAsgs = r.asgs("sourceApplicationSecurityGroups");
  const destinationAsgs = r.asgs("destinationApplicationSecurityGroups");
  if (sourcePrefixes.length === 0 && sourceAsgs.length === 0) r.fail("no source address prefix or application security group", `${path}.sourceAddressPrefix`, prefixExpected);
  if (destinationPrefixes.length === 0 && destinationAsgs.length === 0) r.fail("no destination address prefix or application security group", `${path}.destinationAddressPrefix`, prefixExpected);
  const sourcePorts = r.list("sourcePortRange", "sourcePortRanges", checkPortRange, portExpected);
  const destinationPorts = r.list("destinationPortRange", "destinationPortRanges", checkPortRange, portExpected);
  if (sourcePorts.length === 0) r.fail("no source port range", `${path}.sourcePortRange`, portExpected);
  if (destinationPorts.length === 0) r.fail("no destination port range", `${path}.destinationPortRange`, portExpected);

  const type = field(raw, "type", path).value;
  const id = field(raw, "id", path).value;
  const isDefault = defaultHint
    || (typeof type === "string" && /defaultSecurityRules$/i.test(type))
    || (typeof id === "string" && /\/defaultSecurityRules\//i.test(id))
    || /^defaultSecurityRules\//i.test(rawName)
    || (isDefaultRuleName(name) && priority >= 65000);
  // Azure takes 100-4096 for custom rules (§2.1); only the default rules sit above (65000-65500).
  // A rule outside that range cannot exist, and a fix built on it would propose one Azure rejects.
  if (!isDefault && (priority < minCustomPriority || priority > maxCustomPriority)) {
    r.fail(`rule "${name}" has priority ${priority}, outside ${minCustomPriority}-${maxCustomPriority}`, pr.path,
      `a custom rule priority within ${minCustomPriority}-${maxCustomPriority} (only Azure's default rules are 65000 and above)`);
  }
  return {
    name, priority, direction, access, protocol,
    sourcePrefixes, sourceAsgs, sourcePorts, destinationPrefixes, destinationAsgs, destinationPorts, isDefault,
  };
}

function withDefaults(rules: NsgRule[]): { rules: NsgRule[]; added: string[] } {
  const added = defaultRules.filter((d) => !rules.some((r) => r.name.toLowerCase() === d.name.toLowerCase()));
  return { rules: [...rules, ...added], added: added.map((d) => d.name) };
}

/** Two rules with the same priority and direction cannot exist in one NSG (§2.5). */
function checkUniquePriorities(rules: readonly NsgRule[], text: string): void {
  const seen = new Map<string, NsgRule>();
  for (const r of rules) {
    const key = `${r.direction}/${r.priority}`;
    const other = seen.get(key);
    if (other) {
      throw new DoctorInputError(
        `rules "${other.name}" and "${r.name}" share priority ${r.priority} in direction ${r.direction}, which Azure does not allow`,
        { line: lineOfName(text, r.name), expected: "unique priorities per direction" },
      );
    }
    seen.set(key, r);
  }
}

/**
 * The NSG a rule list belongs to, from the rules' ids (doctor-cli.md: "the NSG's name is then the
 * one in the rules' ids"): the first id that names one, whichever rule carries it. A list whose
 * ids name two NSGs (two `rule list` outputs pasted together) is bad input: the fix would be
 * written for one of them only. Null when no rule has such an id.
 */
function ruleListOwner(doc: readonly unknown[], rules: readonly NsgRule[], text: string): { name: string; resourceGroup: string | null } | null {
  let owner: { name: string; resourceGroup: string | null; rule: string } | null = null;
  for (const [i, raw] of doc.entries()) {
    const id = isObject(raw) ? field(raw, "id", "").value : undefined;
    const name = idSegment(id, "networkSecurityGroups");
    if (name === null) continue;
    const resourceGroup = idSegment(id, "resourceGroups");
    const rule = rules[i]!.name;
    if (owner === null) {
      owner = { name, resourceGroup, rule };
      continue;
    }
    // Azure resource names and groups are case-insensitive.
    if (owner.name.toLowerCase() === name.toLowerCase() && (owner.resourceGroup ?? "").toLowerCase() === (resourceGroup ?? "").toLowerCase()) continue;
    const where = (n: string, g: string | null) => `NSG "${n}"${g === null ? "" : ` (resource group ${g})`}`;
    throw new DoctorInputError(
      `the rules belong to two NSGs: rule "${owner.rule}" to ${where(owner.name, owner.resourceGroup)}, rule "${rule}" to ${where(name, resourceGroup)}`,
      { line: lineOfName(text, rule), expected: "the rules of one NSG (one `az network nsg rule list` per file)" },
    );
  }
  return owner;
}

export function parseNsg(text: string, label: string): Nsg {
  const doc = parseJsonInput(text, "the JSON of `az network nsg show -o json` or `az network nsg rule list -o json`");
  if (Array.isArray(doc)) {
    const rules = doc.map((raw, i) => parseRule(raw, `[${i}]`, text, false));
    checkUniquePriorities(rules, text);
    const owner = ruleListOwner(doc, rules, text);
    const rg = doc.map((raw) => (isObject(raw) ? field(raw, "resourceGroup", "").value : undefined)).find((v) => typeof v === "string");
    const { rules: all, added } = withDefaults(rules);
    return {
      name: owner?.name ?? null,
      resourceGroup: typeof rg === "string" ? rg : owner?.resourceGroup ?? null,
      label, rules: all, addedDefaults: added, shape: "rule-list",
    };
  }
  if (!isObject(doc)) {
    throw new DoctorInputError("expected a JSON object (nsg show) or array (rule list)", {
      line: 1, expected: "the JSON of `az network nsg show -o json` or `az network nsg rule list -o json`",
    });
  }
  const custom = field(doc, "securityRules", "$");
  const defaults = field(doc, "defaultSecurityRules", "$");
  if (custom.value === undefined && defaults.value === undefined) {
    throw new DoctorInputError("no securityRules or defaultSecurityRules: this is not an NSG", {
      line: 1, expected: "the JSON of `az network nsg show -o json` or `az network nsg rule list -o json`",
    });
  }
  const readList = (f: { value: unknown; path: string }, isDefault: boolean): NsgRule[] => {
    if (f.value === undefined || f.value === null) return [];
    if (!Array.isArray(f.value)) throw new DoctorInputError(`${f.path}: expected an array of rules`, { expected: "an array of security rules" });
    return f.value.map((raw, i) => parseRule(raw, `${f.path}[${i}]`, text, isDefault));
  };
  const rules = [...readList(custom, false), ...readList(defaults, true)];
  checkUniquePriorities(rules, text);
  const nameValue = field(doc, "name", "$").value;
  const id = field(doc, "id", "$").value;
  const rg = field(doc, "resourceGroup", "$").value;
  const { rules: all, added } = withDefaults(rules);
  return {
    name: typeof nameValue === "string" && nameValue !== "" ? nameValue : idSegment(id, "networkSecurityGroups"),
    resourceGroup: typeof rg === "string" ? rg : idSegment(id, "resourceGroups"),
    label, rules: all, addedDefaults: added, shape: "nsg-show",
  };
}
