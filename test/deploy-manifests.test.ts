// Offline validation of everything under deploy/: every YAML document against the schema of its
// apiVersion/kind, every kustomization rendered, and the cross-references between the pieces
// (ports, flags, volumes, socket paths, identities) checked for every server/agent/egress pairing.
//
// Schemas: Kubernetes objects use the validators that `kubernetes-models` generates from the
// Kubernetes OpenAPI document. Those accept unknown fields, which kube-apiserver rejects
// (kubectl's default --validate=strict), so unknown fields are found separately by walking each
// object along the package's TypeScript declarations with the compiler's type checker.
// Kustomization and EgressSelectorConfiguration have no OpenAPI schema: they are checked with
// small JSON schemas (the latter in deploy/egress-selector/, written from the k8s v1beta1 types,
// spec konnectivity.md §3).
//
// Rendering: the test renders each kustomization itself (resources, namespace, labels,
// commonLabels, images, inline JSON6902 patches; any other field is an error), so it needs no
// kubectl. Where `kubectl kustomize` is installed, a second test checks that real kustomize
// renders exactly the same objects.
import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, posix, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import type { ValidateFunction } from "ajv";
import ts from "typescript";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { DestinationPolicy } from "../src/agent/index.js";
import { parseDuration } from "../src/cli/parse-values.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const deployDir = join(repoRoot, "deploy");
const overlaysDir = join(deployDir, "kustomize", "overlays");
const egressDir = join(deployDir, "egress-selector");
const image = "ghcr.io/nodetunnel/nodetunnel";
const socketPath = "/etc/kubernetes/konnectivity-server/konnectivity-server.socket";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };
type K8sObject = Obj & { apiVersion: string; kind: string; metadata?: Obj };

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

// ---------------------------------------------------------------------------------------------
// Loading YAML

function listYamlFiles(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return listYamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

function loadDocuments(file: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  const out: K8sObject[] = [];
  for (const [i, doc] of docs.entries()) {
    if (doc.errors.length > 0) throw new Error(`${rel(file)} document ${i}: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (value == null) continue;
    if (!isObj(value) || typeof value.apiVersion !== "string" || typeof value.kind !== "string") {
      throw new Error(`${rel(file)} document ${i}: not an object with apiVersion and kind`);
    }
    out.push(value as K8sObject);
  }
  return out;
}

const rel = (path: string): string => relative(repoRoot, path);
const idOf = (o: K8sObject): string =>
  `${o.kind}/${o.metadata?.namespace ?? "-"}/${o.metadata?.name ?? "-"}`;

// ---------------------------------------------------------------------------------------------
// Schemas: kubernetes-models validators, strict unknown-field check, JSON schemas

interface ModelClass {
  new (data: unknown): { validate(): void };
}

async function validateWithKubernetesModels(o: K8sObject): Promise<string[]> {
  let model: Record<string, unknown>;
  try {
    model = (await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)) as Record<string, unknown>;
  } catch {
    return [`no Kubernetes schema for ${o.apiVersion} ${o.kind}`];
  }
  const Model = model[o.kind] as ModelClass;
  try {
    new Model(o).validate();
    return [];
  } catch (e) {
    const errors = (e as { errors?: { instancePath: string; message?: string }[] }).errors;
    if (!errors) return [String(e)];
    return errors.map((x) => `${x.instancePath || "/"} ${x.message ?? "invalid"}`);
  }
}

// Walks an object along the TypeScript interface that kubernetes-models declares for its kind
// and reports every key the interface does not have.
class UnknownFieldChecker {
  readonly #checker: ts.TypeChecker;
  readonly #roots = new Map<string, ts.Type>();

  constructor(kinds: { apiVersion: string; kind: string }[]) {
    const unique = [...new Map(kinds.map((k) => [`${k.apiVersion}/${k.kind}`, k])).values()];
    const virtualFile = join(repoRoot, "test", "__deploy_k8s_types__.ts");
    const source = unique
      .map((k, i) => `import type { I${k.kind} as T${i} } from "kubernetes-models/${k.apiVersion}/${k.kind}";\nexport type R${i} = T${i};`)
      .join("\n");
    const options: ts.CompilerOptions = {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: [],
    };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    const fileExists = host.fileExists.bind(host);
    host.getSourceFile = (name, lang, ...rest) =>
      name === virtualFile ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest);
    host.fileExists = (name) => name === virtualFile || fileExists(name);
    const program = ts.createProgram([virtualFile], options, host);
    const sourceFile = program.getSourceFile(virtualFile)!;
    const problems = program.getSemanticDiagnostics(sourceFile);
    if (problems.length > 0) {
      throw new Error(`kubernetes-models types: ${ts.flattenDiagnosticMessageText(problems[0]!.messageText, "\n")}`);
    }
    this.#checker = program.getTypeChecker();
    const exports = this.#checker.getExportsOfModule(this.#checker.getSymbolAtLocation(sourceFile)!);
    unique.forEach((k, i) => {
      const symbol = exports.find((s) => s.name === `R${i}`)!;
      this.#roots.set(`${k.apiVersion}/${k.kind}`, this.#checker.getDeclaredTypeOfSymbol(symbol));
    });
  }

  unknownFields(o: K8sObject): string[] {
    const root = this.#roots.get(`${o.apiVersion}/${o.kind}`);
    if (!root) return [`no type for ${o.apiVersion} ${o.kind}`];
    const out: string[] = [];
    this.#walk(o, root, "", out);
    return out;
  }

  #walk(value: Json, declared: ts.Type, path: string, out: string[]): void {
    if (value === null || typeof value !== "object") return;
    const type = this.#checker.getNonNullableType(declared);
    if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
    const members = type.isUnion() ? type.types : [type];
    if (Array.isArray(value)) {
      const element = members.map((t) => t.getNumberIndexType()).find((t) => t !== undefined);
      if (!element) {
        out.push(`${path || "/"}: a list where the schema has no list`);
        return;
      }
      value.forEach((item, i) => this.#walk(item, element, `${path}/${i}`, out));
      return;
    }
    const map = members.map((t) => t.getStringIndexType()).find((t) => t !== undefined);
    for (const [key, child] of Object.entries(value)) {
      const property = members.map((t) => t.getProperty(key)).find((p) => p !== undefined);
      if (property) this.#walk(child, this.#checker.getTypeOfSymbol(property), `${path}/${key}`, out);
      else if (map) this.#walk(child, map, `${path}/${key}`, out);
      else out.push(`${path}/${key}: unknown field`);
    }
  }
}

// The fields our renderer understands, and nothing else: kustomize would accept more, but a
// field the renderer ignored would make its output (and so every check below) wrong.
const kustomizationSchema = {
  type: "object",
  additionalProperties: false,
  required: ["apiVersion", "kind"],
  properties: {
    apiVersion: { const: "kustomize.config.k8s.io/v1beta1" },
    kind: { const: "Kustomization" },
    namespace: { type: "string", minLength: 1 },
    resources: { type: "array", items: { type: "string", minLength: 1 } },
    commonLabels: { type: "object", additionalProperties: { type: "string" } },
    labels: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["pairs"],
        properties: {
          pairs: { type: "object", additionalProperties: { type: "string" } },
          includeSelectors: { type: "boolean" },
          includeTemplates: { type: "boolean" },
        },
      },
    },
    images: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name"],
        properties: {
          name: { type: "string" },
          newName: { type: "string" },
          newTag: { type: "string" },
          digest: { type: "string" },
        },
      },
    },
    patches: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["target", "patch"],
        properties: {
          patch: { type: "string" },
          target: {
            type: "object",
            additionalProperties: false,
            required: ["kind", "name"],
            properties: { kind: { type: "string" }, name: { type: "string" }, namespace: { type: "string" } },
          },
        },
      },
    },
  },
} as const;

// strictRequired off: the conditional rules say "required" in sub-schemas that name no properties.
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
const egressSchema = JSON.parse(
  readFileSync(join(egressDir, "egress-selector-configuration.schema.json"), "utf8"),
) as object;
const validateEgressSchema = ajv.compile(egressSchema);
const validateKustomizationSchema = ajv.compile(kustomizationSchema);

function ajvProblems(validate: ValidateFunction, value: unknown): string[] {
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "invalid"}`);
}

// Rules of kube-apiserver's egress-selector validation that a JSON schema cannot say.
function validateEgressSelectorConfiguration(o: K8sObject): string[] {
  const problems = ajvProblems(validateEgressSchema, o);
  if (problems.length > 0) return problems;
  const names = (o.egressSelections as Obj[]).map((s) => String(s.name).toLowerCase());
  const seen = new Set<string>();
  for (const name of names) {
    const canonical = name === "master" ? "controlplane" : name;
    if (seen.has(canonical)) problems.push(`duplicate egress selection ${name}`);
    seen.add(canonical);
  }
  return problems;
}

const isKustomization = (o: K8sObject): boolean =>
  o.apiVersion === "kustomize.config.k8s.io/v1beta1" && o.kind === "Kustomization";
const isEgress = (o: K8sObject): boolean => o.kind === "EgressSelectorConfiguration";

async function schemaProblems(o: K8sObject, fields: UnknownFieldChecker): Promise<string[]> {
  if (isKustomization(o)) return ajvProblems(validateKustomizationSchema, o);
  if (isEgress(o)) return validateEgressSelectorConfiguration(o);
  const problems = await validateWithKubernetesModels(o);
  return problems.length > 0 ? problems : fields.unknownFields(o);
}

// ---------------------------------------------------------------------------------------------
// Rendering a kustomization

const clusterScopedKinds = new Set([
  "Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "CustomResourceDefinition",
  "APIService", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "StorageClass",
]);

function podSpecOf(o: Obj): Obj | undefined {
  if (o.kind === "Pod") return o.spec as Obj | undefined;
  const template = (o.spec as Obj | undefined)?.template as Obj | undefined;
  return template?.spec as Obj | undefined;
}

function containersOf(o: Obj): Obj[] {
  const spec = podSpecOf(o);
  if (!spec) return [];
  return [...((spec.initContainers as Obj[] | undefined) ?? []), ...((spec.containers as Obj[] | undefined) ?? [])];
}

function setLabels(target: Obj, key: string, pairs: Record<string, string>): void {
  target[key] = { ...((target[key] as Obj | undefined) ?? {}), ...pairs };
}

function applyLabels(o: K8sObject, pairs: Record<string, string>, templates: boolean, selectors: boolean): void {
  o.metadata ??= {};
  setLabels(o.metadata, "labels", pairs);
  const spec = o.spec as Obj | undefined;
  const template = spec?.template as Obj | undefined;
  if ((templates || selectors) && template) {
    template.metadata ??= {};
    setLabels(template.metadata as Obj, "labels", pairs);
  }
  if (selectors && spec && isObj(spec.selector)) setLabels(spec.selector, "matchLabels", pairs);
}

function splitImage(ref: string): { name: string; tag?: string; digest?: string } {
  const at = ref.indexOf("@");
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  const rest = at >= 0 ? ref.slice(0, at) : ref;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  return { name: rest, digest };
}

function pointerTokens(pointer: string): string[] {
  if (!pointer.startsWith("/")) throw new Error(`bad JSON pointer ${pointer}`);
  return pointer.slice(1).split("/").map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"));
}

// RFC 6902 add/remove/replace/test: what kustomize's inline JSON6902 patches use here.
function applyJsonPatch(doc: Obj, ops: Obj[]): void {
  for (const op of ops) {
    const tokens = pointerTokens(String(op.path));
    const last = tokens.pop()!;
    let parent: Json = doc;
    for (const t of tokens) {
      const next: Json | undefined = Array.isArray(parent) ? parent[Number(t)] : isObj(parent) ? parent[t] : undefined;
      if (next === undefined) throw new Error(`JSON patch: ${String(op.path)} does not exist`);
      parent = next;
    }
    const present = Array.isArray(parent) ? last !== "-" && Number(last) < parent.length : isObj(parent) && last in parent;
    const current = Array.isArray(parent) ? parent[Number(last)] : isObj(parent) ? parent[last] : undefined;
    switch (op.op) {
      case "test":
        if (!present) throw new Error(`JSON patch test: ${String(op.path)} does not exist`);
        assert.deepEqual(current, op.value, `JSON patch test failed at ${String(op.path)}`);
        break;
      case "replace":
        if (!present) throw new Error(`JSON patch replace: ${String(op.path)} does not exist`);
        if (Array.isArray(parent)) parent[Number(last)] = clone(op.value!);
        else (parent as Obj)[last] = clone(op.value!);
        break;
      case "add":
        if (Array.isArray(parent)) {
          if (last === "-") parent.push(clone(op.value!));
          else parent.splice(Number(last), 0, clone(op.value!));
        } else (parent as Obj)[last] = clone(op.value!);
        break;
      case "remove":
        if (!present) throw new Error(`JSON patch remove: ${String(op.path)} does not exist`);
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else delete (parent as Obj)[last];
        break;
      default:
        throw new Error(`JSON patch op ${String(op.op)} is not supported by this renderer`);
    }
  }
}

function renderKustomization(dir: string): K8sObject[] {
  const [k] = loadDocuments(join(dir, "kustomization.yaml"));
  if (!k || !isKustomization(k)) throw new Error(`${rel(dir)}: no Kustomization`);
  const problems = ajvProblems(validateKustomizationSchema, k);
  if (problems.length > 0) throw new Error(`${rel(dir)}/kustomization.yaml: ${problems.join("; ")}`);
  const objects: K8sObject[] = [];
  for (const resource of (k.resources as string[] | undefined) ?? []) {
    const path = resolve(dir, resource);
    if (statSync(path).isDirectory()) objects.push(...renderKustomization(path));
    else objects.push(...loadDocuments(path));
  }
  for (const p of (k.patches as Obj[] | undefined) ?? []) {
    const target = p.target as Obj;
    const matches = objects.filter((o) => o.kind === target.kind && o.metadata?.name === target.name);
    if (matches.length === 0) throw new Error(`${rel(dir)}: patch target ${String(target.kind)}/${String(target.name)} not found`);
    const ops = parseYaml(String(p.patch)) as Obj[];
    for (const o of matches) applyJsonPatch(o, ops);
  }
  if (typeof k.namespace === "string") {
    for (const o of objects) if (!clusterScopedKinds.has(o.kind)) (o.metadata ??= {}).namespace = k.namespace;
  }
  if (isObj(k.commonLabels)) {
    for (const o of objects) applyLabels(o, k.commonLabels as Record<string, string>, true, true);
  }
  for (const l of (k.labels as Obj[] | undefined) ?? []) {
    for (const o of objects) {
      applyLabels(o, l.pairs as Record<string, string>, l.includeTemplates === true, l.includeSelectors === true);
    }
  }
  for (const img of (k.images as Obj[] | undefined) ?? []) {
    for (const c of objects.flatMap(containersOf)) {
      const ref = splitImage(String(c.image));
      if (ref.name !== img.name) continue;
      const name = typeof img.newName === "string" ? img.newName : ref.name;
      if (typeof img.digest === "string") c.image = `${name}@${img.digest}`;
      else if (typeof img.newTag === "string") c.image = `${name}:${img.newTag}`;
      else c.image = name + (ref.tag ? `:${ref.tag}` : "") + (ref.digest ? `@${ref.digest}` : "");
    }
  }
  return objects;
}

// ---------------------------------------------------------------------------------------------
// Flags

// Flag names from the spec's tables (konnectivity.md §2.1, §2.4) plus nodetunnel's own; used when
// docs/flags.md does not exist yet.
const specServerFlags = [
  "mode", "uds-name", "delete-existing-uds-file", "server-port", "server-bind-address", "server-cert",
  "server-key", "server-ca-cert", "agent-port", "agent-bind-address", "cluster-cert", "cluster-key",
  "cluster-ca-cert", "admin-port", "admin-bind-address", "health-port", "health-bind-address",
  "keepalive-time", "frontend-keepalive-time", "enable-profiling", "enable-contention-profiling",
  "server-id", "server-count", "agent-namespace", "agent-service-account", "authentication-audience",
  "kubeconfig", "kubeconfig-qps", "kubeconfig-burst", "kube-api-content-type", "proxy-strategies",
  "cipher-suites", "tls-min-version", "xfr-channel-size", "enable-lease-controller", "lease-namespace",
  "lease-label", "graceful-shutdown-timeout", "backend-dial-timeout", "warn-on-channel-limit",
];
const specAgentFlags = [
  "proxy-server-host", "proxy-server-port", "ca-cert", "agent-cert", "agent-key", "alpn-proto",
  "health-server-host", "health-server-port", "admin-bind-address", "admin-server-port",
  "enable-profiling", "enable-contention-profiling", "agent-id", "agent-identifiers", "sync-interval",
  "sync-interval-cap", "probe-interval", "keepalive-time", "service-account-token-path",
  "warn-on-channel-limit", "sync-forever", "xfr-channel-size", "count-server-leases", "lease-namespace",
  "lease-label-selector", "lease-label", "server-count-source", "kubeconfig", "kube-api-content-type",
  // nodetunnel's own
  "allowed-destinations",
];

function knownFlags(): { source: string; server: Set<string>; agent: Set<string> } {
  const flagsDoc = join(repoRoot, "docs", "flags.md");
  if (existsSync(flagsDoc)) {
    // The document's layout is its author's; every --flag it mentions counts, for both binaries.
    const all = new Set([...readFileSync(flagsDoc, "utf8").matchAll(/--([a-z0-9][a-z0-9-]*)/g)].map((m) => m[1]!));
    return { source: "docs/flags.md", server: all, agent: all };
  }
  return { source: "the spec's flag tables", server: new Set(specServerFlags), agent: new Set(specAgentFlags) };
}

interface Invocation {
  subcommand: string;
  flags: Map<string, string[]>;
}

// Manifests write every flag as --name=value, so a value can never be mistaken for a flag.
function parseInvocation(args: string[]): Invocation {
  const [subcommand, ...rest] = args;
  const flags = new Map<string, string[]>();
  for (const arg of rest) {
    const m = /^--([a-z0-9-]+)=(.*)$/.exec(arg);
    if (!m) throw new Error(`argument ${JSON.stringify(arg)} is not --name=value`);
    flags.set(m[1]!, [...(flags.get(m[1]!) ?? []), m[2]!]);
  }
  return { subcommand: subcommand ?? "", flags };
}

function flag(inv: Invocation, name: string): string | undefined {
  const values = inv.flags.get(name);
  return values?.[values.length - 1];
}

// ---------------------------------------------------------------------------------------------
// Checks on one rendered shape

interface NodetunnelContainer {
  owner: K8sObject;
  pod: Obj;
  container: Obj;
  inv: Invocation;
}

function nodetunnelContainers(objects: K8sObject[], subcommand?: string): NodetunnelContainer[] {
  return objects.flatMap((owner) => {
    const pod = podSpecOf(owner);
    if (!pod) return [];
    return containersOf(owner)
      .filter((c) => String(c.image).startsWith(`${image}:`) || String(c.image).startsWith(`${image}@`))
      .map((container) => ({ owner, pod, container, inv: parseInvocation((container.args as string[] | undefined) ?? []) }))
      .filter((n) => subcommand === undefined || n.inv.subcommand === subcommand);
  });
}

function mountFor(c: Obj, path: string): Obj | undefined {
  const mounts = (c.volumeMounts as Obj[] | undefined) ?? [];
  return mounts
    .filter((m) => path === m.mountPath || path.startsWith(`${String(m.mountPath).replace(/\/$/, "")}/`))
    .sort((a, b) => String(b.mountPath).length - String(a.mountPath).length)[0];
}

function volumeNamed(pod: Obj, name: string): Obj | undefined {
  return ((pod.volumes as Obj[] | undefined) ?? []).find((v) => v.name === name);
}

const portFlag = (n: NodetunnelContainer, name: string): number | undefined => {
  const v = flag(n.inv, name);
  return v === undefined ? undefined : Number(v);
};

// Checks that hold inside one rendered overlay, whatever its shape.
function shapeProblems(objects: K8sObject[], flags: { server: Set<string>; agent: Set<string> }): string[] {
  const problems: string[] = [];
  const say = (n: NodetunnelContainer, text: string): void => {
    problems.push(`${idOf(n.owner)} container ${String(n.container.name)}: ${text}`);
  };
  const all = nodetunnelContainers(objects);
  if (all.length === 0) problems.push("no nodetunnel container");

  for (const n of all) {
    const { container: c, pod, inv } = n;
    const known = inv.subcommand === "server" ? flags.server : inv.subcommand === "agent" ? flags.agent : undefined;
    if (!known) say(n, `unknown subcommand ${inv.subcommand}`);
    for (const name of inv.flags.keys()) if (known && !known.has(name)) say(n, `unknown flag --${name}`);

    // $(VAR) in args is expanded by the kubelet only if VAR is defined; otherwise it stays literal.
    const env = new Set(((c.env as Obj[] | undefined) ?? []).map((e) => String(e.name)));
    for (const arg of (c.args as string[] | undefined) ?? []) {
      for (const m of arg.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
        if (!env.has(m[1]!)) say(n, `${arg} refers to undefined env var ${m[1]}`);
      }
    }

    for (const m of (c.volumeMounts as Obj[] | undefined) ?? []) {
      if (!volumeNamed(pod, String(m.name))) say(n, `volumeMount ${String(m.name)} has no volume`);
    }
    const pathFlags = ["uds-name", "cluster-cert", "cluster-key", "cluster-ca-cert", "kubeconfig", "server-cert",
      "server-key", "server-ca-cert", "ca-cert", "agent-cert", "agent-key", "service-account-token-path"];
    for (const name of pathFlags) {
      const path = flag(inv, name);
      if (path !== undefined && !mountFor(c, path)) say(n, `--${name}=${path} is on no volume mount`);
    }
    const uds = flag(inv, "uds-name");
    if (uds !== undefined && mountFor(c, uds)?.readOnly === true) say(n, `socket directory of ${uds} is mounted read-only`);

    // Probes: /healthz for liveness and /readyz for readiness, on the component's health port.
    const healthPort = inv.subcommand === "server" ? portFlag(n, "health-port") : portFlag(n, "health-server-port");
    if (healthPort === undefined) say(n, "no health port flag");
    for (const [probe, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]] as const) {
      const get = (c[probe] as Obj | undefined)?.httpGet as Obj | undefined;
      if (!get) say(n, `no ${probe}`);
      else {
        if (get.port !== healthPort) say(n, `${probe} port ${String(get.port)} is not the health port ${String(healthPort)}`);
        if (get.path !== path) say(n, `${probe} path ${String(get.path)} is not ${path}`);
      }
    }
    const ports = ((c.ports as Obj[] | undefined) ?? []).map((p) => p.containerPort);
    if (!ports.includes(healthPort ?? -1)) say(n, `health port ${String(healthPort)} is not a containerPort`);

    if (pod.priorityClassName !== "system-cluster-critical") say(n, "priorityClassName is not system-cluster-critical");
    const resources = c.resources as Obj | undefined;
    for (const part of ["requests", "limits"]) {
      const r = resources?.[part] as Obj | undefined;
      if (!r?.cpu || !r.memory) say(n, `resources.${part} lacks cpu or memory`);
    }
    const sc = (c.securityContext as Obj | undefined) ?? {};
    if (sc.allowPrivilegeEscalation !== false) say(n, "allowPrivilegeEscalation is not false");
    if (sc.readOnlyRootFilesystem !== true) say(n, "root filesystem is writable");
    if (JSON.stringify((sc.capabilities as Obj | undefined)?.drop) !== '["ALL"]') say(n, "capabilities are not all dropped");
    const tmp = mountFor(c, "/tmp/x");
    if (!tmp || tmp.mountPath !== "/tmp") say(n, "no writable /tmp for tsx's cache under a read-only root");
    if (String(c.image) !== `${image}:${packageVersion}`) say(n, `image ${String(c.image)} is not ${image}:${packageVersion}`);

    if (inv.subcommand === "server") problems.push(...serverProblems(n).map((p) => `${idOf(n.owner)}: ${p}`));
    if (inv.subcommand === "agent") problems.push(...agentProblems(n).map((p) => `${idOf(n.owner)}: ${p}`));
  }
  return problems;
}

// The server's option rules (konnectivity.md §1.7, §2.1) applied to the manifest's flags.
function serverProblems(n: NodetunnelContainer): string[] {
  const problems: string[] = [];
  const { inv, pod, container } = n;
  const mode = flag(inv, "mode") ?? "grpc";
  if (!["grpc", "http-connect"].includes(mode)) problems.push(`--mode=${mode} is not grpc or http-connect`);
  const strategies = (flag(inv, "proxy-strategies") ?? "default").split(",");
  for (const s of strategies) if (!["destHost", "defaultRoute", "default"].includes(s)) problems.push(`unknown proxy strategy ${s}`);
  const serverPort = portFlag(n, "server-port") ?? 8090;
  const uds = flag(inv, "uds-name");
  for (const name of ["agent-port", "admin-port", "health-port"]) {
    const p = portFlag(n, name);
    if (p === undefined) problems.push(`--${name} is not set`);
    else if (!(p >= 1024 && p <= 49151)) problems.push(`--${name}=${p} is outside 1024-49151`);
  }
  if (uds !== undefined) {
    if (serverPort !== 0) problems.push("--uds-name needs --server-port=0");
    for (const f of ["server-cert", "server-key", "server-ca-cert"]) if (inv.flags.has(f)) problems.push(`--uds-name forbids --${f}`);
  } else {
    if (!(serverPort >= 1024 && serverPort <= 49151)) problems.push(`--server-port=${serverPort} is outside 1024-49151`);
    for (const f of ["server-cert", "server-key", "server-ca-cert"]) if (!inv.flags.has(f)) problems.push(`a TCP frontend needs --${f}`);
  }
  const tokenAuth = ["agent-namespace", "agent-service-account", "authentication-audience"].filter((f) => inv.flags.has(f));
  if (tokenAuth.length !== 0 && tokenAuth.length !== 3) problems.push("token auth needs all of --agent-namespace, --agent-service-account, --authentication-audience");
  if (tokenAuth.length === 3 && inv.flags.has("cluster-ca-cert")) problems.push("token auth and --cluster-ca-cert are mutually exclusive");
  for (const f of ["cluster-cert", "cluster-key"]) if (!inv.flags.has(f)) problems.push(`--${f} is not set: agents need TLS`);
  const ports = ((container.ports as Obj[] | undefined) ?? []).map((p) => p.containerPort);
  if (!ports.includes(portFlag(n, "agent-port") ?? -1)) problems.push("the agent port is not a containerPort");
  if (pod.hostNetwork !== true) problems.push("the server is not on the host network");
  // The server runs as a static pod or inside the kube-apiserver static pod: the kubelet refuses
  // static pods that use API objects (ServiceAccount, Secret, ConfigMap, projected tokens).
  if (n.owner.kind === "Pod") {
    if (pod.serviceAccountName !== undefined) problems.push("a static pod cannot use a ServiceAccount");
    for (const v of (pod.volumes as Obj[] | undefined) ?? []) {
      if (!("hostPath" in v) && !("emptyDir" in v)) problems.push(`static pod volume ${String(v.name)} is neither hostPath nor emptyDir`);
    }
  }
  return problems;
}

function agentProblems(n: NodetunnelContainer): string[] {
  const problems: string[] = [];
  const { inv, pod, container } = n;
  const port = portFlag(n, "proxy-server-port");
  if (port === undefined || !(port >= 1 && port <= 65535)) problems.push("--proxy-server-port is not a port");
  if (!inv.flags.has("proxy-server-host")) problems.push("--proxy-server-host is not set");
  if (!inv.flags.has("ca-cert")) problems.push("--ca-cert is not set");
  const sc = { ...((pod.securityContext as Obj | undefined) ?? {}), ...((container.securityContext as Obj | undefined) ?? {}) };
  if (sc.runAsNonRoot !== true) problems.push("the agent may run as root");
  if (pod.automountServiceAccountToken !== false) problems.push("the default API token is mounted though the agent calls no API");
  if (!((pod.tolerations as Obj[] | undefined) ?? []).length) problems.push("the agent has no tolerations");
  if (pod.hostNetwork === true) problems.push("the agent needs no host network");

  // The drain (first SIGTERM) must end before the kubelet's SIGKILL, or long connections are cut
  // instead of closed (docs/operations.md, "Agents: DRAIN").
  const drainMs = parseDuration("--drain-timeout", flag(inv, "drain-timeout") ?? "60s");
  const graceS = typeof pod.terminationGracePeriodSeconds === "number" ? pod.terminationGracePeriodSeconds : 30;
  if (drainMs >= graceS * 1000) problems.push(`--drain-timeout (${drainMs / 1000} s) does not end before the kubelet's SIGKILL (terminationGracePeriodSeconds ${graceS})`);

  const tokenPath = flag(inv, "service-account-token-path");
  if (tokenPath !== "/var/run/secrets/tokens/konnectivity-agent-token") problems.push(`token path ${String(tokenPath)}`);
  else {
    const mount = mountFor(container, tokenPath)!;
    const sources = ((volumeNamed(pod, String(mount.name))?.projected as Obj | undefined)?.sources as Obj[] | undefined) ?? [];
    const token = sources.map((s) => s.serviceAccountToken as Obj | undefined).find((t) => t !== undefined);
    if (!token) problems.push("the token path is not a projected ServiceAccount token");
    else if (posix.join(String(mount.mountPath), String(token.path)) !== tokenPath) problems.push("the projected token is not at --service-account-token-path");
  }
  const caPath = flag(inv, "ca-cert");
  if (caPath !== undefined) {
    const mount = mountFor(container, caPath);
    const cm = mount && (volumeNamed(pod, String(mount.name))?.configMap as Obj | undefined);
    const items = (cm?.items as Obj[] | undefined) ?? [];
    if (cm && !items.some((i) => posix.join(String(mount.mountPath), String(i.path)) === caPath)) {
      problems.push("--ca-cert is not one of the ConfigMap's projected items");
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Pairings: which server goes with which agents and which EgressSelectorConfiguration

interface Pairing {
  server: string;
  agent: string;
  egress: string;
}

const pairings: Pairing[] = [
  { server: "server-static-pod", agent: "agent-daemonset", egress: "grpc-uds.yaml" },
  { server: "server-sidecar", agent: "agent-daemonset", egress: "grpc-uds.yaml" },
  { server: "server-static-pod-default-strategy", agent: "agent-deployment", egress: "grpc-uds.yaml" },
  { server: "server-static-pod-http-connect", agent: "agent-daemonset", egress: "http-connect-uds.yaml" },
  { server: "server-static-pod-http-connect-mtls", agent: "agent-daemonset", egress: "http-connect-mtls.yaml" },
];

function pairingProblems(server: K8sObject[], agent: K8sObject[], egress: K8sObject): string[] {
  const problems: string[] = [];
  const [s] = nodetunnelContainers(server, "server");
  const agents = nodetunnelContainers(agent, "agent");
  if (!s) return ["no server"];
  if (agents.length === 0) return ["no agent"];

  for (const a of agents) {
    const where = idOf(a.owner);
    if (portFlag(a, "proxy-server-port") !== portFlag(s, "agent-port")) {
      problems.push(`${where}: --proxy-server-port=${String(flag(a.inv, "proxy-server-port"))} is not the server's --agent-port=${String(flag(s.inv, "agent-port"))}`);
    }
    // Token auth: the agents' ServiceAccount, namespace and token audience are what the server checks.
    const saName = flag(s.inv, "agent-service-account");
    const saNamespace = flag(s.inv, "agent-namespace");
    if (a.pod.serviceAccountName !== saName) problems.push(`${where}: ServiceAccount ${String(a.pod.serviceAccountName)} is not the server's --agent-service-account=${String(saName)}`);
    if (a.owner.metadata?.namespace !== saNamespace) problems.push(`${where}: namespace ${String(a.owner.metadata?.namespace)} is not the server's --agent-namespace=${String(saNamespace)}`);
    if (!agent.some((o) => o.kind === "ServiceAccount" && o.metadata?.name === saName && o.metadata?.namespace === saNamespace)) {
      problems.push(`${where}: the ServiceAccount ${String(saNamespace)}/${String(saName)} is not in the overlay`);
    }
    const audiences = ((a.pod.volumes as Obj[] | undefined) ?? [])
      .flatMap((v) => (((v.projected as Obj | undefined)?.sources as Obj[] | undefined) ?? []))
      .map((src) => (src.serviceAccountToken as Obj | undefined)?.audience)
      .filter((x) => x !== undefined);
    if (!audiences.includes(flag(s.inv, "authentication-audience") ?? "")) problems.push(`${where}: no projected token has the server's --authentication-audience`);

    // destHost first: the agents must announce their node IP, or the server is never ready (§2.2).
    const first = (flag(s.inv, "proxy-strategies") ?? "default").split(",")[0];
    const identifiers = new URLSearchParams(flag(a.inv, "agent-identifiers") ?? "");
    if (first === "destHost") {
      const hostIp = ((a.container.env as Obj[] | undefined) ?? []).find((e) => e.name === "HOST_IP");
      const fieldPath = ((hostIp?.valueFrom as Obj | undefined)?.fieldRef as Obj | undefined)?.fieldPath;
      if (identifiers.get("ipv4") !== "$(HOST_IP)" || fieldPath !== "status.hostIP") {
        problems.push(`${where}: the server routes destHost first but the agent does not announce ipv4=$(HOST_IP) from status.hostIP`);
      }
      if (a.owner.kind !== "DaemonSet") problems.push(`${where}: destHost routing needs an agent on every node (a DaemonSet)`);
    }
    if (first === "default" && identifiers.size > 0) problems.push(`${where}: identifiers are unused with the default strategy`);
  }

  const auth = agent.find((o) => o.kind === "ClusterRoleBinding" && (o.roleRef as Obj | undefined)?.name === "system:auth-delegator");
  const subjects = (auth?.subjects as Obj[] | undefined) ?? [];
  if (!subjects.some((x) => x.kind === "User" && x.name === "system:konnectivity-server")) {
    problems.push("no ClusterRoleBinding gives system:konnectivity-server system:auth-delegator for TokenReview");
  }

  // kube-apiserver → server: the cluster selection must reach the server's frontend.
  const cluster = (egress.egressSelections as Obj[]).find((e) => String(e.name).toLowerCase() === "cluster");
  const connection = cluster?.connection as Obj | undefined;
  const transport = connection?.transport as Obj | undefined;
  const mode = flag(s.inv, "mode") ?? "grpc";
  const expectedMode = connection?.proxyProtocol === "GRPC" ? "grpc" : connection?.proxyProtocol === "HTTPConnect" ? "http-connect" : undefined;
  if (mode !== expectedMode) problems.push(`server --mode=${mode} but the cluster selection speaks ${String(connection?.proxyProtocol)}`);
  const uds = transport?.uds as Obj | undefined;
  const tcp = transport?.tcp as Obj | undefined;
  if (uds && uds.udsName !== flag(s.inv, "uds-name")) {
    problems.push(`udsName ${String(uds.udsName)} is not the server's --uds-name=${String(flag(s.inv, "uds-name"))}`);
  }
  if (tcp) {
    const url = new URL(String(tcp.url));
    if (Number(url.port) !== portFlag(s, "server-port")) problems.push(`proxy URL port ${url.port} is not the server's --server-port`);
    if (url.hostname !== (flag(s.inv, "server-bind-address") ?? url.hostname)) problems.push(`proxy URL host ${url.hostname} is not the server's --server-bind-address`);
    const tls = tcp.tlsConfig as Obj | undefined;
    if (tls?.caBundle !== flag(s.inv, "server-ca-cert")) problems.push("caBundle is not the server's --server-ca-cert (one CA signs both ends)");
  }

  // Sidecar: kube-apiserver is in the same pod, so check its side too.
  const kas = containersOf(s.owner).find((c) => String(((c.command as string[] | undefined) ?? [])[0]) === "kube-apiserver");
  if (kas) {
    const kasArgs = (kas.command as string[]).slice(1);
    const file = kasArgs.find((x) => x.startsWith("--egress-selector-config-file="))?.split("=")[1];
    if (!file) problems.push("kube-apiserver has no --egress-selector-config-file");
    else if (!mountFor(kas, file)) problems.push(`kube-apiserver does not mount ${file}`);
    if (uds) {
      const kasMount = mountFor(kas, String(uds.udsName));
      const serverMount = mountFor(s.container, String(uds.udsName));
      if (!kasMount || kasMount.name !== serverMount?.name || kasMount.mountPath !== serverMount?.mountPath) {
        problems.push("kube-apiserver and the server do not share the socket directory at the same path");
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The tests

const packageVersion = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
const yamlFiles = listYamlFiles(deployDir);
const overlayNames = readdirSync(overlaysDir).filter((d) => existsSync(join(overlaysDir, d, "kustomization.yaml"))).sort();
const rendered = new Map(overlayNames.map((name) => [name, renderKustomization(join(overlaysDir, name))]));
const egressFiles = readdirSync(egressDir).filter((f) => f.endsWith(".yaml")).sort();
const egressOf = (file: string): K8sObject => loadDocuments(join(egressDir, file))[0]!;
const findRendered = (overlay: string, kind: string): K8sObject => {
  const o = rendered.get(overlay)?.find((x) => x.kind === kind);
  assert.ok(o, `${overlay} renders no ${kind}`);
  return o;
};

let fields: UnknownFieldChecker;
before(() => {
  const kinds = [...yamlFiles.flatMap(loadDocuments), ...[...rendered.values()].flat()]
    .filter((o) => !isKustomization(o) && !isEgress(o));
  fields = new UnknownFieldChecker(kinds);
});

describe("every YAML document under deploy/ matches the schema of its apiVersion and kind", () => {
  it("finds the manifests", () => {
    assert.ok(yamlFiles.length >= 15, `only ${yamlFiles.length} YAML files under deploy/`);
    assert.deepEqual(egressFiles, ["grpc-uds.yaml", "http-connect-mtls.yaml", "http-connect-uds.yaml"]);
  });
  for (const file of yamlFiles) {
    it(rel(file), async () => {
      const docs = loadDocuments(file);
      assert.ok(docs.length > 0, "no document");
      for (const o of docs) assert.deepEqual(await schemaProblems(o, fields), [], idOf(o));
    });
  }
});

describe("the kustomizations render to valid objects", () => {
  for (const name of overlayNames) {
    it(`overlays/${name} (rendered by this test)`, async () => {
      const objects = rendered.get(name)!;
      assert.ok(objects.length > 0);
      const ids = objects.map(idOf);
      assert.equal(new Set(ids).size, ids.length, "duplicate objects");
      for (const o of objects) {
        assert.deepEqual(await schemaProblems(o, fields), [], idOf(o));
        if (!clusterScopedKinds.has(o.kind)) assert.equal(o.metadata?.namespace, "kube-system", idOf(o));
        assert.equal((o.metadata?.labels as Obj | undefined)?.["app.kubernetes.io/part-of"], "nodetunnel", idOf(o));
      }
    });
  }

  it("renders exactly what `kubectl kustomize` renders", (t) => {
    const probe = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8", timeout: 30_000 });
    if (probe.error || probe.status !== 0) {
      t.skip("kubectl is not installed: only this test's own renderer was checked");
      return;
    }
    const sort = (objects: K8sObject[]): K8sObject[] => [...objects].sort((a, b) => idOf(a).localeCompare(idOf(b)));
    for (const name of overlayNames) {
      const out = spawnSync("kubectl", ["kustomize", join(overlaysDir, name)], { encoding: "utf8", timeout: 60_000 });
      assert.equal(out.status, 0, `kubectl kustomize overlays/${name}: ${out.stderr}`);
      const theirs = parseAllDocuments(out.stdout).map((d) => d.toJS() as K8sObject).filter((o) => o != null);
      assert.deepEqual(sort(rendered.get(name)!), sort(theirs), `overlays/${name}`);
    }
  });
});

describe("each deployment shape holds together", () => {
  const flags = knownFlags();

  it("covers every overlay and every EgressSelectorConfiguration with a pairing", (t) => {
    t.diagnostic(`flags checked against ${flags.source}`);
    const used = new Set(pairings.flatMap((p) => [p.server, p.agent]));
    assert.deepEqual(overlayNames.filter((o) => !used.has(o)), []);
    assert.deepEqual(egressFiles.filter((f) => !pairings.some((p) => p.egress === f)), []);
  });

  for (const name of overlayNames) {
    it(`overlays/${name}: flags, ports, probes, volumes, security`, () => {
      assert.deepEqual(shapeProblems(rendered.get(name)!, flags), []);
    });
  }

  for (const p of pairings) {
    it(`${p.server} + ${p.agent} + egress-selector/${p.egress}`, () => {
      assert.deepEqual(pairingProblems(rendered.get(p.server)!, rendered.get(p.agent)!, egressOf(p.egress)), []);
    });
  }

  it("every gRPC or HTTP CONNECT selection over a socket uses the socket of the server manifests", () => {
    for (const file of egressFiles) {
      const uds = (egressOf(file).egressSelections as Obj[])
        .map((e) => ((e.connection as Obj).transport as Obj | undefined)?.uds as Obj | undefined)
        .filter((u) => u !== undefined);
      for (const u of uds) assert.equal(u.udsName, socketPath, file);
    }
  });

  it("each agent shape documents a least-privilege --allowed-destinations", () => {
    for (const file of yamlFiles.filter((f) => /agent-(daemonset|deployment)\.yaml$/.test(f))) {
      const text = readFileSync(file, "utf8");
      const examples = [...text.matchAll(/^#.*--allowed-destinations=(\S+)/gm)].map((m) => m[1]!);
      assert.ok(examples.length > 0, `${rel(file)} has no --allowed-destinations example`);
      // The agent's own parser must accept them, with the kubelet's expansion of $(HOST_IP).
      const hostIp = "192.0.2.7";
      const policy = DestinationPolicy.parse(examples.map((e) => e.replaceAll("$(HOST_IP)", hostIp)));
      assert.ok(policy.isRestricted);
      if (examples.some((e) => e.startsWith("$(HOST_IP)/32:10250"))) {
        assert.ok(policy.allows(hostIp, 10250), "the own kubelet is allowed");
        assert.ok(!policy.allows("192.0.2.8", 10250), "another node's kubelet is not");
        assert.ok(!policy.allows(hostIp, 22), "another port on the node is not");
      }
    }
  });
});

describe("the checks catch broken manifests", () => {
  const daemonSet = (): K8sObject => clone(findRendered("agent-daemonset", "DaemonSet"));

  it("a misspelt field is an unknown field", () => {
    const ds = daemonSet();
    ((ds.spec as Obj).template as Obj).spec = { ...podSpecOf(ds), hostNetwrok: true };
    assert.deepEqual(fields.unknownFields(ds), ["/spec/template/spec/hostNetwrok: unknown field"]);
  });

  it("a field of the wrong type fails the Kubernetes schema", async () => {
    const ds = daemonSet();
    (containersOf(ds)[0]!.ports as Obj[])[0]!.containerPort = "eighty";
    const problems = await validateWithKubernetesModels(ds);
    assert.ok(problems.some((p) => p.includes("/containers/0/ports/0/containerPort")), problems.join("\n"));
  });

  it("an unknown kind has no schema", async () => {
    assert.deepEqual(await validateWithKubernetesModels({ apiVersion: "v1", kind: "Pdo" }), ["no Kubernetes schema for v1 Pdo"]);
  });

  it("the EgressSelectorConfiguration schema enforces kube-apiserver's rules", () => {
    const base = egressOf("grpc-uds.yaml");
    const withCluster = (connection: Json): K8sObject => {
      const o = clone(base);
      (o.egressSelections as Obj[])[0]!.connection = connection;
      return o;
    };
    assert.deepEqual(validateEgressSelectorConfiguration(base), []);
    assert.notDeepEqual(validateEgressSelectorConfiguration(withCluster({ proxyProtocol: "GRPC", transport: { tcp: { url: "http://127.0.0.1:8131" } } })), []);
    assert.notDeepEqual(validateEgressSelectorConfiguration(withCluster({ proxyProtocol: "grpc", transport: { uds: { udsName: socketPath } } })), []);
    assert.notDeepEqual(validateEgressSelectorConfiguration(withCluster({ proxyProtocol: "Direct", transport: { uds: { udsName: socketPath } } })), []);
    assert.notDeepEqual(validateEgressSelectorConfiguration(withCluster({ proxyProtocol: "HTTPConnect", transport: { tcp: { url: "https://127.0.0.1:8131", tlsConfig: { caBundle: "/ca" } } } })), []);
    assert.notDeepEqual(validateEgressSelectorConfiguration(withCluster({ proxyProtocol: "GRPC", transport: { uds: { udsName: `unix://${socketPath}` } } })), []);
    // EgressSelectorConfiguration exists as v1alpha1 and v1beta1 only.
    assert.notDeepEqual(validateEgressSelectorConfiguration({ ...clone(base), apiVersion: "apiserver.k8s.io/v1" }), []);
    const duplicate = clone(base);
    (duplicate.egressSelections as Obj[])[1]!.name = "master";
    (duplicate.egressSelections as Obj[])[2]!.name = "controlplane";
    assert.deepEqual(validateEgressSelectorConfiguration(duplicate), ["duplicate egress selection controlplane"]);
  });

  it("a JSON-patch test op that no longer matches stops the rendering", () => {
    const pod: Obj = { spec: { containers: [{ args: ["server", "--mode=grpc"] }] } };
    assert.throws(() => applyJsonPatch(pod, [{ op: "test", path: "/spec/containers/0/args/1", value: "--mode=http-connect" }]));
    applyJsonPatch(pod, [{ op: "add", path: "/spec/containers/0/args/-", value: "--server-count=3" }]);
    assert.deepEqual(((pod.spec as Obj).containers as Obj[])[0]!.args, ["server", "--mode=grpc", "--server-count=3"]);
  });

  it("a mismatched agent port, socket path or mode is reported for the pairing", () => {
    const server = clone(rendered.get("server-static-pod")!);
    const agent = clone(rendered.get("agent-daemonset")!);
    const serverArgs = containersOf(server.find((o) => o.kind === "Pod")!)[0]!.args as string[];
    serverArgs[serverArgs.indexOf("--agent-port=8132")] = "--agent-port=8091";
    serverArgs[serverArgs.indexOf(`--uds-name=${socketPath}`)] = "--uds-name=/run/other.socket";
    const problems = pairingProblems(server, agent, egressOf("http-connect-uds.yaml"));
    assert.ok(problems.some((p) => p.includes("--proxy-server-port=8132 is not the server's --agent-port=8091")), problems.join("\n"));
    assert.ok(problems.some((p) => p.startsWith(`udsName ${socketPath} is not`)), problems.join("\n"));
    assert.ok(problems.includes("server --mode=grpc but the cluster selection speaks HTTPConnect"), problems.join("\n"));
  });

  it("destHost routing with agents that announce no node IP is reported", () => {
    const problems = pairingProblems(rendered.get("server-static-pod")!, rendered.get("agent-deployment")!, egressOf("grpc-uds.yaml"));
    assert.ok(problems.some((p) => p.includes("does not announce ipv4=$(HOST_IP)")), problems.join("\n"));
  });

  it("a probe on the wrong port, a dangling mount, an unknown flag and an undefined env var are reported", () => {
    const objects = clone(rendered.get("agent-daemonset")!);
    const c = containersOf(objects.find((o) => o.kind === "DaemonSet")!)[0]!;
    ((c.livenessProbe as Obj).httpGet as Obj).port = 8093;
    (c.volumeMounts as Obj[]).push({ name: "nowhere", mountPath: "/nowhere" });
    (c.args as string[]).push("--proxy-server-prot=8132", "--agent-id=$(NODE)");
    const problems = shapeProblems(objects, knownFlags());
    const expected = [
      "livenessProbe port 8093 is not the health port 8134",
      "volumeMount nowhere has no volume",
      knownFlags().source === "docs/flags.md" ? undefined : "unknown flag --proxy-server-prot",
      "--agent-id=$(NODE) refers to undefined env var NODE",
    ];
    for (const text of expected) if (text) assert.ok(problems.some((p) => p.endsWith(text)), `${text}\n${problems.join("\n")}`);
  });

  it("an agent whose drain outlasts its pod's grace period is reported", () => {
    const objects = clone(rendered.get("agent-daemonset")!);
    const ds = objects.find((o) => o.kind === "DaemonSet")!;
    const args = containersOf(ds)[0]!.args as string[];
    const at = args.findIndex((a) => a.startsWith("--drain-timeout="));
    assert.ok(at >= 0, "the shipped agent sets --drain-timeout");
    args.splice(at, 1);
    const problems = shapeProblems(objects, knownFlags());
    assert.ok(problems.some((p) => p.endsWith("--drain-timeout (60 s) does not end before the kubelet's SIGKILL (terminationGracePeriodSeconds 30)")), problems.join("\n"));
  });

  it("a static pod that uses a Secret or a ServiceAccount is reported", () => {
    const objects = clone(rendered.get("server-static-pod")!);
    const pod = objects.find((o) => o.kind === "Pod")!;
    (pod.spec as Obj).serviceAccountName = "konnectivity-server";
    ((pod.spec as Obj).volumes as Obj[]).push({ name: "certs", secret: { secretName: "x" } });
    const problems = shapeProblems(objects, knownFlags());
    assert.ok(problems.some((p) => p.endsWith("a static pod cannot use a ServiceAccount")), problems.join("\n"));
    assert.ok(problems.some((p) => p.endsWith("static pod volume certs is neither hostPath nor emptyDir")), problems.join("\n"));
  });
});
