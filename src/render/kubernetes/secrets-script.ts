// `kubernetes/secrets.sh`: creates the Secrets the manifests reference from the state folder, so
// no key or password is ever written under out/ (the script holds only paths).
import { PKI_PATHS, servicePath } from '../../state/pki/store.ts';
import { secretPath } from '../../state/secrets/paths.ts';
import type { ResolvedKubernetes, ResolvedStack } from '../../resolve/model.ts';
import { hashHeader } from '../header.ts';
import { CA_ISSUER, CRL_SECRET, secretsName, tlsSecretName } from './names.ts';

/** A word for sh, single-quoted unless it is plainly safe. */
function sh(word: string): string {
  return /^[A-Za-z0-9_./=:-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * One Secret: `kubectl create secret` rendered client-side, then applied (create or update). Not a
 * pipe: sh has no pipefail, and a missing file must stop the script.
 */
function secret(name: string, type: string, files: readonly (readonly [key: string, statePath: string])[]): string {
  const from = files.map(([key, path]) => ` \\\n  --from-file=${sh(key)}="$state"/${sh(path)}`).join('');
  return `manifest=$($kubectl -n "$namespace" create secret generic ${sh(name)} --type=${sh(type)}${from} \\\n  --dry-run=client -o yaml)\nprintf '%s\\n' "$manifest" | $kubectl apply -f -\n`;
}

/** The script's text. */
export function renderSecretsScript(stack: ResolvedStack, k: ResolvedKubernetes): string {
  const parts: string[] = [];
  if (k.certificates === 'cert-manager') {
    parts.push(`# The root CA the Issuer ${CA_ISSUER} signs with.\n` + secret(CA_ISSUER, 'kubernetes.io/tls', [['tls.crt', PKI_PATHS.rootCert], ['tls.key', PKI_PATHS.rootKey]]));
    parts.push(`# The CRLs every pod finds at crl.pem beside its certificates.\n` + secret(CRL_SECRET, 'Opaque', [['crl.pem', PKI_PATHS.crl]]));
  } else {
    for (const s of stack.services) {
      const kinds = new Set(s.certificates);
      if (kinds.size === 0) continue;
      const leaf = kinds.has('server') ? 'server' : kinds.has('client') ? 'client' : 'public';
      const files = ['ca.crt', 'crl.pem', ...[...kinds].sort().flatMap((kind) => [`${kind}.crt`, `${kind}.key`])];
      parts.push(
        `# ${s.name}: its certificate folder, pki/services/${s.name}/.\n` +
          secret(tlsSecretName(s, 'mtls'), 'kubernetes.io/tls', [
            ['tls.crt', servicePath(s.name, `${leaf}.crt`)],
            ['tls.key', servicePath(s.name, `${leaf}.key`)],
            ...files.map((f) => [f, servicePath(s.name, f)] as const),
          ]),
      );
    }
  }
  for (const s of stack.services) {
    if (s.secrets.length === 0) continue;
    parts.push(`# ${s.name}: the files of its /run/secrets.\n` + secret(secretsName(s), 'Opaque', s.secrets.map((f) => [f.file, secretPath(f.file)] as const)));
  }
  return `#!/bin/sh
${hashHeader(stack.name)}# Creates or updates the Secrets that out/${stack.name}/kubernetes/ references, from the state
# folder: \${PODMESH_STATE_DIR:-.podmesh}/${stack.name} (run it where out/ and .podmesh/ are). Needs
# kubectl with access to the cluster ($KUBECTL names another one). Keys and passwords go from the
# state folder to the cluster and nowhere else.
set -eu
state="\${PODMESH_STATE_DIR:-.podmesh}/${stack.name}"
namespace=${sh(k.namespace)}
kubectl="\${KUBECTL:-kubectl}"
if [ ! -d "$state" ]; then
  echo "secrets.sh: no state folder $state: run npm run synth first, or set PODMESH_STATE_DIR" >&2
  exit 1
fi
${parts.join('')}`;
}
