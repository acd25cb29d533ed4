// The posture check: controls, the judgement of a resolved stack, and its report formats.
export { POSTURE_CONTROLS, PSS_ALLOWED_CAPABILITIES, type PostureControl } from './controls.ts';
export { auditStack, postureProblems, type PostureReport, type PostureRow } from './check.ts';
export { formatAuditJson, formatAuditTable } from './format.ts';
