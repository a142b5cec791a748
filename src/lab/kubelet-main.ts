// Entry script for a lab node's kubelet-like endpoint (run with tsx inside the node namespace).
// An entry point, not a library module: its one input is the NODETUNNEL_LAB_KUBELET environment
// variable the lab sets (JSON: nodeName, certFile, keyFile, host, port).
import { readFileSync } from "node:fs";
import { startFakeKubelet } from "./fake-kubelet.js";

const config = JSON.parse(process.env.NODETUNNEL_LAB_KUBELET ?? "{}") as {
  nodeName: string; certFile: string; keyFile: string; host: string; port: number;
};
const kubelet = await startFakeKubelet({
  nodeName: config.nodeName,
  cert: readFileSync(config.certFile, "utf8"),
  key: readFileSync(config.keyFile, "utf8"),
  host: config.host,
  port: config.port,
});
console.log(`kubelet ${kubelet.nodeName} listening on ${kubelet.host}:${kubelet.port}`);
const stop = () => void kubelet.close().then(() => { process.exitCode = 0; });
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
