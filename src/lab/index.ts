// The lab: a small AKS-like network in namespaces where the guide's causes are switched on for
// real (DESIGN.md "The lab"). Also the kubelet-like endpoint the demo uses.
export { logLines, startFakeKubelet, type FakeKubelet, type FakeKubeletOptions } from "./fake-kubelet.js";
export {
  checkPrerequisites, curlThroughTunnel, labDown, labExecArgv, labStatus, labUp, ownedNamespaces, requireState,
  type LabCertificates, type LabRuntime, type LabStatus, type PemPair, type Progress, type TunnelCurl,
} from "./lab.js";
export { FAULT_NAMES, defaultLabNsg, readChattyStats, setFault, type ChattyStats, type FaultName, type FaultOptions, type FaultResult } from "./lab-faults.js";
export {
  AGENT_HEALTH_PORT, AGENT_PORT, CONTROL_PLANE_IP, HTTP_CONNECT_PORT, KUBELET_PORT, LAB_RANGES, OUTBOUND_IP, SERVER_HEALTH_PORT,
  findNode, planLab, type LabNode, type LabPlan, type LabPlanInput,
} from "./lab-plan.js";
export { readState, type LabState } from "./lab-state.js";
