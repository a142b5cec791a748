// Where the TokenReview client finds kube-apiserver and how it proves who it is
// (shared/spec/konnectivity.md §2.1 `--kubeconfig`: "in-cluster if empty"): the current context
// of a kubeconfig file (server, CA, client certificate/key or bearer token, inline `-data` or
// file paths relative to the kubeconfig), or the pod's in-cluster service account.
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { TunnelError } from "../../protocol/index.js";
import { proxySettingsFromEnv, type ProxySettings } from "../../transport/index.js";
import { parseSimpleYaml, type YamlValue } from "./parse-simple-yaml.js";

export interface KubeClientConfig {
  /** https://host:port of kube-apiserver. */
  readonly server: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly token?: string;
  /** Re-read for every request: projected in-cluster tokens rotate. */
  readonly tokenFile?: string;
  readonly insecureSkipTlsVerify: boolean;
  /** Where it came from, for messages. */
  readonly source: string;
  /** HTTPS_PROXY and NO_PROXY to reach the API server by, as client-go does (Go's ProxyFromEnvironment). */
  readonly proxy?: ProxySettings;
}

export const inClusterDir = "/var/run/secrets/kubernetes.io/serviceaccount";

const invalid = (message: string): never => {
  throw new TunnelError("INVALID_OPTION", message);
};

type Obj = { [key: string]: YamlValue };
const isObj = (v: YamlValue | undefined): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (o: Obj | undefined, key: string): string | undefined => {
  const v = o?.[key];
  return typeof v === "string" && v !== "" ? v : undefined;
};

/** Picks the current context's cluster and user out of a parsed kubeconfig. */
export async function kubeClientConfigFromKubeconfig(text: string, path: string): Promise<KubeClientConfig> {
  let doc: YamlValue;
  try {
    doc = parseSimpleYaml(text, { withholdText: true });
  } catch (err) {
    return invalid(`--kubeconfig ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isObj(doc)) return invalid(`--kubeconfig ${path}: not a kubeconfig (expected a mapping)`);
  const named = (listKey: string, name: string | undefined, inner: string): Obj | undefined => {
    const list = doc[listKey];
    if (!Array.isArray(list)) return undefined;
    const entry = list.find((e) => isObj(e) && e.name === name);
    return isObj(entry) && isObj(entry[inner]) ? entry[inner] : undefined;
  };
  const contextName = str(doc, "current-context");
  const contexts = Array.isArray(doc.contexts) ? doc.contexts : [];
  // With no current-context, a kubeconfig holding a single context means that one.
  const context = contextName !== undefined
    ? named("contexts", contextName, "context")
    : contexts.length === 1 && isObj(contexts[0]) && isObj(contexts[0].context) ? contexts[0].context : undefined;
  if (!context) return invalid(`--kubeconfig ${path}: no context ${contextName === undefined ? "(current-context is not set)" : `"${contextName}"`}`);
  const cluster = named("clusters", str(context, "cluster"), "cluster");
  if (!cluster) return invalid(`--kubeconfig ${path}: context names cluster "${str(context, "cluster") ?? ""}", which is not defined`);
  const userName = str(context, "user");
  const user = userName === undefined ? {} : named("users", userName, "user");
  if (!user) return invalid(`--kubeconfig ${path}: context names user "${userName}", which is not defined`);
  const server = str(cluster, "server");
  if (!server) return invalid(`--kubeconfig ${path}: cluster has no server`);
  if (!server.startsWith("https://")) return invalid(`--kubeconfig ${path}: server ${server} is not https:// (TokenReview carries agent tokens; refusing cleartext)`);
  if (user.exec !== undefined || user["auth-provider"] !== undefined) {
    return invalid(`--kubeconfig ${path}: exec and auth-provider credentials are not supported; use a client certificate or a token`);
  }
  const base = dirname(path);
  const dataOrFile = async (o: Obj, key: string): Promise<string | undefined> => {
    const data = str(o, `${key}-data`);
    if (data !== undefined) return Buffer.from(data, "base64").toString("utf8");
    const file = str(o, key);
    if (file === undefined) return undefined;
    return await readFile(isAbsolute(file) ? file : join(base, file), "utf8");
  };
  const tokenFile = str(user, "tokenFile");
  return {
    server: server.replace(/\/+$/, ""),
    ca: await dataOrFile(cluster, "certificate-authority"),
    cert: await dataOrFile(user, "client-certificate"),
    key: await dataOrFile(user, "client-key"),
    token: str(user, "token"),
    tokenFile: tokenFile === undefined ? undefined : isAbsolute(tokenFile) ? tokenFile : join(base, tokenFile),
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true,
    source: `kubeconfig ${path}`,
  };
}

/**
 * `--kubeconfig` given: that file; empty: the in-cluster service account, as client-go's
 * rest.InClusterConfig (KUBERNETES_SERVICE_HOST/PORT, token and ca.crt under `dir`). Either way
 * HTTPS_PROXY / NO_PROXY from `env` apply, as client-go's default transport applies them.
 */
export async function loadKubeClientConfig(
  kubeconfigPath: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  dir = inClusterDir,
  /** What needs the API, for the error when there is no configuration. */
  purpose = "token authentication",
): Promise<KubeClientConfig> {
  if (kubeconfigPath) {
    let text: string;
    try {
      text = await readFile(kubeconfigPath, "utf8");
    } catch (err) {
      return invalid(`--kubeconfig ${kubeconfigPath}: ${(err as Error).message}`);
    }
    return withProxy(await kubeClientConfigFromKubeconfig(text, kubeconfigPath), env);
  }
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    return invalid(`${purpose} needs --kubeconfig outside a pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set, so there is no in-cluster configuration)`);
  }
  let ca: string;
  try {
    ca = await readFile(join(dir, "ca.crt"), "utf8");
    await readFile(join(dir, "token"), "utf8");
  } catch (err) {
    return invalid(`in-cluster configuration: cannot read ${dir}: ${(err as Error).message}; give --kubeconfig`);
  }
  return withProxy({
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca,
    tokenFile: join(dir, "token"),
    insecureSkipTlsVerify: false,
    source: `in-cluster service account (${dir})`,
  }, env);
}

function withProxy(config: KubeClientConfig, env: Readonly<Record<string, string | undefined>>): KubeClientConfig {
  const proxy = proxySettingsFromEnv(env);
  return proxy ? { ...config, proxy } : config;
}
