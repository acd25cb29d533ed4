// podmesh verify: probe a running mesh over mTLS and judge it against the stack and its state.
export { meshOf, verifyMesh, EXPECTED_CIPHERS, EXPECTED_TLS_VERSION } from './verify.ts';
export type { CheckKind, CheckResult, CheckStatus, MeshClient, MeshTarget, VerifyOptions, VerifyReport } from './verify.ts';
export { formatVerifyJson, formatVerifyProm, formatVerifyTable } from './format.ts';
export { probe, type ProbeOutcome, type ProbeRequest, type ProbeVerdict, type PresentedCert } from './probe.ts';
