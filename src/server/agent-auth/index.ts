// Agent authentication and identity binding (issue 6 items 1–2, docs/security.md): who an agent
// is (client certificate or service-account token through TokenReview) and what it may claim.
export { parseSimpleYaml, type YamlValue } from "./parse-simple-yaml.js";
export { inClusterDir, kubeClientConfigFromKubeconfig, loadKubeClientConfig, type KubeClientConfig } from "./kube-client-config.js";
export {
  TokenReviewClient, defaultTokenReviewLimits, type TokenReviewLimits, type TokenReviewResult, type TokenReviewUser,
} from "./token-review-client.js";
export {
  createTokenAuthenticator, serviceAccountUsername, type TokenAuthenticator, type TokenAuthenticatorOptions,
} from "./token-authenticator.js";
export { parseIdentityMap, type IdentityGrant, type IdentityMap } from "./identity-map.js";
export {
  anonymousCredential, certificateCredential, checkIdentityClaims, describeAllowed, isBindingEnforced, nodeNameExtra,
  parseSubjectAltName, podNameExtra, tokenCredential,
  type AgentCredential, type AllowedIdentities, type IdentityBindingMode, type IdentityRefusal,
} from "./identity-binding.js";
export { requireAgentAuthentication } from "./require-agent-authentication.js";
