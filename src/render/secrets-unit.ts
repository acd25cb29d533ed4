// The unit that turns a Quadlet host's secret files into Podman secrets. `podmesh apply` installs
// each secret file its services mount into the host root's `secrets/` (0600, readable by the
// host's root or the rootless user only); this oneshot creates one Podman secret per file, before
// the containers that mount them (they want it and start after it). A changed file makes apply
// restart this unit, then exactly the services that mount that file: Podman copies a secret into
// a container when the container is created, and Quadlet's units re-create theirs on restart.
import { compareVersions, type PodmanVersion } from '../../constructs/core/podman-version.ts';
import { STAGE, hostFile, inHostRoot, podmanSecretName, secretPath, secretUsers } from '../layout.ts';
import type { ResolvedHost, ResolvedStack } from '../resolve/model.ts';
import type { RenderedFile } from './file.ts';
import { gatewaySecrets } from './gateway.ts';
import { generatedHeader } from './header.ts';
import { renderUnit, type ServiceUnit } from './quadlet/index.ts';

/** Podman where Quadlet runs it. */
const PODMAN = '/usr/bin/podman';

/**
 * `podman secret create --replace` (keeps the name, swaps the value) is in Podman 4.7's manual
 * and not in 4.6's; before it the secret is removed first (a missing one is no error).
 * @see https://docs.podman.io/en/v4.9.3/markdown/podman-secret-create.1.html
 */
const REPLACE_SINCE: PodmanVersion = { major: 4, minor: 7 };

/** The label that marks a Podman secret as one of `stack`'s (`podman secret ls --filter label=…`). */
export function secretLabel(stack: string): string {
  return `io.podmesh.stack=${stack}`;
}

/** The oneshot creating the host's Podman secrets; the file path is on the command line, never the value. */
function secretsService(stack: ResolvedStack, host: ResolvedHost, secrets: readonly { name: string; source: string }[]): string {
  const replace = compareVersions(host.podmanVersion, REPLACE_SINCE) >= 0;
  const execStart = secrets.flatMap(({ name, source }) => {
    // Rootless paths start at %h, which the unit writer keeps literal in arguments: sh expands $HOME.
    const create = host.rootless
      ? ['/bin/sh', '-c', `exec ${PODMAN} secret create${replace ? ' --replace' : ''} --label ${secretLabel(stack.name)} ${name} "${source.replace(/^%h\//, '$HOME/')}"`]
      : [PODMAN, 'secret', 'create', ...(replace ? ['--replace'] : []), '--label', secretLabel(stack.name), name, source];
    return replace ? [create] : [['-' + PODMAN, 'secret', 'rm', name], create];
  });
  const unit: ServiceUnit = {
    kind: 'service',
    unit: {
      description: `Podman secrets of podmesh stack ${stack.name} on host ${host.name}`,
      documentation: ['man:podman-secret-create(1)'],
      before: [host.install.target],
    },
    service: { type: 'oneshot', remainAfterExit: true, execStart },
    install: { wantedBy: [host.install.target] },
  };
  return renderUnit(unit, { path: stack.name, comments: generatedHeader(stack.name) });
}

/**
 * `hosts/<host>/systemd/podmesh-<stack>-secrets.service` for every host whose services mount
 * secrets or whose WireGuard gateway container reads its keys (the installed key files) as secrets.
 */
export function renderSecretsUnits(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  for (const host of stack.hosts) {
    const used = [
      ...secretUsers(stack.services.filter((s) => s.host === host.name)).map(([file]) => ({ name: podmanSecretName(stack.name, file), source: inHostRoot(host, secretPath(file)) })),
      ...gatewaySecrets(stack, host),
    ];
    if (used.length === 0) continue;
    // Restarted before the services (stage), so that they are re-created with the new values.
    files.set(...hostFile(host, 'systemd', host.install.secretsUnit, secretsService(stack, host, used), { units: [host.install.secretsUnit], stage: STAGE.volume }));
  }
  return files;
}
