// Builds test/go-peer (the grpc-go peer of the interop tests and the Go client of
// bench/go-client-rows.ts) in GOPATH mode against Debian's Go library sources
// (golang-go, golang-google-grpc-dev, golang-google-protobuf-dev).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const grpcGoSources = "/usr/share/gocode/src/google.golang.org/grpc";

/** The Go toolchain's binary, if there is one. */
export const goBinary = ["/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go"].find((p) => existsSync(p));

/** Why the peer cannot be built here, or undefined when it can. */
export function goPeerMissing(): string | undefined {
  if (goBinary === undefined) return "needs Go (apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev)";
  if (!existsSync(grpcGoSources)) return `needs grpc-go's sources in ${grpcGoSources} (apt-get install golang-google-grpc-dev golang-google-protobuf-dev)`;
  return undefined;
}

/** Builds the peer to `output`; rejects with the compiler's output when it fails. */
export function buildGoPeer(output: string): Promise<void> {
  const dir = fileURLToPath(new URL(".", import.meta.url));
  const env = { ...process.env, GO111MODULE: "off", GOPATH: "/usr/share/gocode", GOFLAGS: "", CGO_ENABLED: "0" };
  return new Promise((resolve, reject) => {
    execFile(goBinary!, ["build", "-o", output, "."], { cwd: dir, env, timeout: 240_000, encoding: "utf8" }, (err, _stdout, stderr) =>
      err === null ? resolve() : reject(new Error(`go build failed:\n${stderr}`)));
  });
}
