export { logLines, startFakeKubelet, type FakeKubelet, type FakeKubeletOptions } from "./fake-kubelet.js";
