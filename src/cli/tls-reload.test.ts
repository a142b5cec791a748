import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test, type TestContext } from "node:test";
import { createSecureContext } from "node:tls";
import { pino } from "pino";
import { Registry } from "prom-client";
import { checkCertificatePem, createPki } from "../transport/index.js";
import { TlsFileWatcher, type TlsContents } from "./tls-reload.js";

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "info" }, new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  }));
  return { log, lines, warnings: () => lines.filter((l) => l.level === 40), infos: () => lines.filter((l) => l.level === 30) };
}

async function setUp(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "nt-tls-reload-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [a, b] = await Promise.all([createPki(), createPki()]);
  const path = (name: string) => join(dir, name);
  // As the kubelet updates a mounted Secret: the new file is written aside and renamed over.
  const put = (name: string, text: string) => {
    writeFileSync(path(`.${name}.tmp`), text);
    renameSync(path(`.${name}.tmp`), path(name));
  };
  put("tls.crt", a.server.cert);
  put("tls.key", a.server.key);
  put("ca.crt", a.ca);
  const applied: TlsContents[] = [];
  /** Run between the two reads of a change: what a writer does meanwhile. */
  const settling: Array<() => void> = [];
  const { log, warnings, infos } = capture();
  const registry = new Registry();
  const watcher = new TlsFileWatcher([{
    name: "agent-port",
    files: { cert: { flag: "--cluster-cert", path: path("tls.crt") }, key: { flag: "--cluster-key", path: path("tls.key") }, ca: { flag: "--cluster-ca-cert", path: path("ca.crt") } },
    initial: { cert: Buffer.from(a.server.cert), key: Buffer.from(a.server.key), ca: Buffer.from(a.ca) },
    apply: (contents) => {
      if (contents.ca) checkCertificatePem("the CA", contents.ca);
      createSecureContext(contents);
      applied.push(contents);
    },
  }], 1000, log, registry, async () => settling.splice(0).forEach((f) => f()));
  const metric = async (name: string, labels: string) => {
    const line = (await registry.metrics()).split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
    return line === undefined ? undefined : Number(line.split(" ").at(-1));
  };
  return { a, b, path, put, applied, watcher, warnings, infos, metric, settling };
}

test("unchanged or merely touched files are not applied again; the expiry of the files in use is exported from the start", async (t) => {
  const { a, path, applied, watcher, warnings, metric } = await setUp(t);
  assert.equal(await metric("nodetunnel_tls_certificate_not_after_timestamp_seconds", 'flag="--cluster-cert"'), Math.floor(Date.parse(new X509Certificate(a.server.cert).validTo) / 1000));
  await watcher.check();
  utimesSync(path("tls.crt"), new Date(), new Date(Date.now() + 5000));
  await watcher.check();
  assert.equal(applied.length, 0);
  assert.equal(warnings().length, 0);
});

test("a rotated certificate, key and CA are applied together, and the log names the flags, the subject and the expiry", async (t) => {
  const { b, put, applied, watcher, infos, metric } = await setUp(t);
  put("tls.crt", b.server.cert);
  put("tls.key", b.server.key);
  put("ca.crt", b.ca);
  await watcher.check();
  assert.equal(applied.length, 1);
  assert.equal(applied[0]!.cert!.toString(), b.server.cert);
  assert.equal(applied[0]!.key!.toString(), b.server.key);
  assert.equal(applied[0]!.ca!.toString(), b.ca);
  const line = infos().at(-1)!;
  assert.deepEqual(line.changed, ["--cluster-cert", "--cluster-key", "--cluster-ca-cert"]);
  assert.equal(line.tls, "agent-port");
  assert.match(String(line.subject), /CN=localhost/);
  assert.ok(Date.parse(String(line.notAfter)) > Date.now(), `notAfter ${String(line.notAfter)}`);
  assert.equal(line.caSubject, new X509Certificate(b.ca).subject.replace(/\n/g, ", "));
  await watcher.check();
  assert.equal(applied.length, 1, "applied once");
  assert.equal(await metric("nodetunnel_tls_reloads_total", 'tls="agent-port",result="applied"'), 1);
  const notAfter = (pem: string) => Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000);
  assert.equal(await metric("nodetunnel_tls_certificate_not_after_timestamp_seconds", 'flag="--cluster-cert"'), notAfter(b.server.cert));
  assert.equal(await metric("nodetunnel_tls_certificate_not_after_timestamp_seconds", 'flag="--cluster-ca-cert"'), notAfter(b.ca));
});

test("a CA bundle changed alone: the log names the CA's subject, not the certificate's (found by an ops audit)", async (t) => {
  const { b, put, watcher, infos } = await setUp(t);
  put("ca.crt", b.ca);
  await watcher.check();
  const line = infos().at(-1)!;
  assert.deepEqual(line.changed, ["--cluster-ca-cert"]);
  assert.equal(line.subject, undefined, "the certificate did not change");
  assert.equal(line.caSubject, new X509Certificate(b.ca).subject.replace(/\n/g, ", "));
});

test("a certificate rotated before its key is held back with one warning, then applied once the key follows", async (t) => {
  const { b, put, applied, watcher, warnings, metric } = await setUp(t);
  put("tls.crt", b.server.cert);
  await watcher.check();
  await watcher.check();
  assert.equal(applied.length, 0, "a certificate with another's key is not applied");
  assert.equal(warnings().length, 1, "one warning for the same files, however often they are checked");
  assert.deepEqual(warnings()[0]!.changed, ["--cluster-cert"]);
  assert.match(String(warnings()[0]!.err), /key values mismatch/);
  assert.equal(await metric("nodetunnel_tls_reloads_total", 'tls="agent-port",result="rejected"'), 1, "counted once, as logged");
  const c = await createPki();
  put("tls.crt", c.server.cert);
  await watcher.check();
  assert.equal(warnings().length, 2, "another mismatched set is another warning");
  put("tls.crt", b.server.cert);
  put("tls.key", b.server.key);
  await watcher.check();
  assert.equal(applied.length, 1);
  assert.equal(applied[0]!.key!.toString(), b.server.key);
});

test("a CA file emptied or cut short is refused, not applied: the CA in use stays", async (t) => {
  const { b, put, applied, watcher, warnings } = await setUp(t);
  put("ca.crt", "");
  await watcher.check();
  put("ca.crt", b.ca.slice(0, 300));
  await watcher.check();
  assert.equal(applied.length, 0);
  assert.deepEqual(warnings().map((w) => String(w.err).replace(/:.*/, "")), ["the CA", "the CA"]);
  assert.match(String(warnings()[0]!.err), /the file is empty/);
  assert.match(String(warnings()[1]!.err), /cut short/);
  put("ca.crt", b.ca);
  await watcher.check();
  assert.equal(applied.length, 1);
});

test("a file still being written is taken only once two reads agree", async (t) => {
  const { b, path, applied, watcher, settling } = await setUp(t);
  const c = await createPki();
  // A writer still at work: B's CA is there at the first read, a bundle of B's and C's at the second.
  writeFileSync(path("ca.crt"), b.ca);
  settling.push(() => writeFileSync(path("ca.crt"), `${b.ca}\n${c.ca}`));
  await watcher.check();
  assert.equal(applied.length, 0, "changed between the two reads: left for the next check");
  await watcher.check();
  assert.equal(applied.length, 1);
  assert.equal(applied[0]!.ca!.toString(), `${b.ca}\n${c.ca}`);
});

test("a file that disappears keeps the material in use, with one warning naming the flag and path", async (t) => {
  const { b, path, put, applied, watcher, warnings } = await setUp(t);
  rmSync(path("ca.crt"));
  await watcher.check();
  await watcher.check();
  assert.equal(applied.length, 0);
  assert.equal(warnings().length, 1);
  assert.equal(warnings()[0]!.flag, "--cluster-ca-cert");
  assert.equal(warnings()[0]!.path, path("ca.crt"));
  assert.equal(warnings()[0]!.err, "ENOENT");
  put("ca.crt", b.ca);
  await watcher.check();
  assert.equal(applied.length, 1, "the new CA with the certificate and key in use");
  assert.equal(applied[0]!.ca!.toString(), b.ca);
});

test("an interval of 0 watches nothing, and no timer keeps the process alive", async () => {
  const { log } = capture();
  const set = { name: "agent", files: { ca: { flag: "--ca-cert", path: "/nonexistent" } }, initial: {}, apply: () => {} };
  const off = new TlsFileWatcher([set], 0, log);
  assert.equal(off.watching, false);
  off.start();
  off.stop();
  assert.equal(new TlsFileWatcher([], 1000, log).watching, false, "no files, nothing to watch");
  assert.equal(new TlsFileWatcher([set], 1000, log).watching, true);
});

test("a certificate in use that expires within two weeks, or has expired, is a warning at start and once a day after", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "nt-tls-expiry-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await createPki();
  const soon = await pki.issue("soon", { dns: ["localhost"], notAfter: new Date(Date.now() + 3 * 24 * 60 * 60 * 1000) });
  const gone = await pki.issue("gone", { client: true, notAfter: new Date(Date.now() - 60 * 60 * 1000) });
  const path = (name: string) => join(dir, name);
  writeFileSync(path("server.crt"), soon.cert);
  writeFileSync(path("ca.crt"), pki.ca);
  writeFileSync(path("agent.crt"), gone.cert);
  const { log, warnings } = capture();
  const watcher = new TlsFileWatcher([
    { name: "agent-port", files: { cert: { flag: "--cluster-cert", path: path("server.crt") }, ca: { flag: "--cluster-ca-cert", path: path("ca.crt") } },
      initial: { cert: Buffer.from(soon.cert), ca: Buffer.from(pki.ca) }, apply: () => {} },
    { name: "agent", files: { cert: { flag: "--agent-cert", path: path("agent.crt") } }, initial: { cert: Buffer.from(gone.cert) }, apply: () => {} },
  ], 1000, log, undefined, async () => {});
  const messages = () => warnings().map((w) => String(w.msg));
  assert.equal(messages().length, 2, messages().join(" | "));
  assert.match(messages()[0]!, /^the certificate in --cluster-cert expires in 3 days \(\d{4}-.*\): rotate it before then$/);
  assert.match(messages()[1]!, /^the certificate in --agent-cert expired at \d{4}-.*: peers refuse it; rotate it$/);
  assert.equal(warnings()[0]!.path, path("server.crt"));
  await watcher.check();
  await watcher.check();
  assert.equal(warnings().length, 2, "not again within the day");
});
