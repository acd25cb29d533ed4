// `out/<stack>/kubernetes/secrets.sh` run with the real kubectl, which renders each Secret
// client-side (`kubectl create secret … --dry-run=client -o yaml`); in place of `kubectl apply -f -`
// (there is no cluster here) a wrapper records what it would apply.
import { execa } from 'execa';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { tool } from './tools.ts';

/** The kubectl binary, or undefined when it is not installed. */
export const KUBECTL = tool('kubectl');

/** Runs `script` in `work` against the state folder `state`; the Secrets it would apply, as plain objects. */
export async function recordSecretsScript(script: string, work: string, state: string): Promise<any[]> {
  if (!KUBECTL) throw new Error('kubectl is needed: run scripts/install-validators.sh');
  const applied = join(work, 'applied.yaml');
  const wrapper = join(work, 'kubectl');
  writeFileSync(applied, '');
  writeFileSync(wrapper, `#!/bin/sh\nfor a in "$@"; do [ "$a" = apply ] && { cat >> '${applied}'; echo --- >> '${applied}'; exit 0; }; done\nexec '${KUBECTL}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  await execa('sh', [script], { cwd: work, env: { KUBECTL: wrapper, PODMESH_STATE_DIR: state }, timeout: 60_000 });
  return parseAllDocuments(readFileSync(applied, 'utf8')).map((d) => d.toJS()).filter(Boolean);
}
