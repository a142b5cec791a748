// What users read must not cite sections of a spec they do not have: every § in a string of the
// doctor or the lab (summaries, details, fixes, assumptions, explain's causes) points at
// docs/troubleshooting.md, whose sections are 1-7. Comments may cite the spec (developer notes).
// The user docs likewise: docs/doctor.md, docs/lab.md and docs/troubleshooting.md name only files
// of this repository.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import ts from "typescript";

const repo = join(import.meta.dirname, "..");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** The text of every string literal and template part in a file, with its line. */
function strings(file: string): Array<{ line: number; text: string }> {
  const sf = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const out: Array<{ line: number; text: string }> = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteralLike(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) {
      out.push({ line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1, text: node.text });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

// A citation users can follow: docs/troubleshooting.md and one of its sections.
const resolvable = /docs\/troubleshooting\.md §[1-7](?![.\d])/g;

test("strings of src/doctor and src/lab cite only sections of docs/troubleshooting.md", () => {
  const bad: string[] = [];
  for (const file of [...sources(join(repo, "src", "doctor")), ...sources(join(repo, "src", "lab"))]) {
    for (const s of strings(file)) {
      const rest = s.text.replace(resolvable, "");
      if (/§|konnectivity\.md|doctor-cli\.md|(?<!docs\/)troubleshooting\.md|konnectivity #\d/.test(rest)) bad.push(`${relative(repo, file)}:${s.line}: ${s.text.slice(0, 120)}`);
    }
  }
  assert.deepEqual(bad, []);
});

test("the user docs name no spec file as if it were in docs/", () => {
  const bad: string[] = [];
  for (const doc of ["docs/doctor.md", "docs/lab.md", "docs/troubleshooting.md"]) {
    readFileSync(join(repo, doc), "utf8").split("\n").forEach((line, i) => {
      const rest = line.replace(/\[troubleshooting\.md\]\(troubleshooting\.md\) §[1-7](?![.\d])/g, "");
      if (/§|doctor-cli\.md|konnectivity\.md|(?<!\[)troubleshooting\.md/.test(rest)) bad.push(`${doc}:${i + 1}: ${line}`);
    });
  }
  assert.deepEqual(bad, []);
});

test("the developer notes in docs/doctor/ call spec files the spec's", () => {
  const bad: string[] = [];
  for (const name of readdirSync(join(repo, "docs", "doctor"))) {
    readFileSync(join(repo, "docs", "doctor", name), "utf8").split("\n").forEach((line, i) => {
      const rest = line.replace(/the spec's `?(troubleshooting|doctor-cli|konnectivity)\.md`?/gi, "").replace(/shared\/spec\/[\w.-]+|\[docs\/troubleshooting\.md\]\(\.\.\/troubleshooting\.md\)/g, "");
      if (/(troubleshooting|doctor-cli|konnectivity)\.md/.test(rest)) bad.push(`docs/doctor/${name}:${i + 1}: ${line}`);
    });
  }
  assert.deepEqual(bad, []);
});
