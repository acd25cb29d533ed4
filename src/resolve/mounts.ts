// What is mounted into a container: the stack's volumes and host folders, generated Hyperf and
// OpenSSL configuration, and the workload's certificates, each target mounted once.
import { posix } from 'node:path';
import { serviceConfigPath, sharedConfigPath } from '../layout.ts';
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { Service } from '../../constructs/model/service.ts';
import type { Workload } from '../../constructs/model/workload.ts';
import { OPENSSL_CONF_PATH } from './environment.ts';
import type { ResolvedMount } from './model.ts';
import type { Names } from './naming.ts';

/**
 * Files of a Hyperf service's `config/autoload/`: the same for every Hyperf service, generated once
 * per host under `config/_shared/`; they read the service's own class, {@link HYPERF_POLICY}.
 */
export const HYPERF_FILES = ['server.php', 'mtls_client.php', 'mtls_policy.php'] as const;

/**
 * Classes of `app/Podmesh/` (namespace `App\\Podmesh`, the skeleton's `App\\` PSR-4 root) that are
 * the same for every Hyperf service: generated once per host, under `config/_shared/`. They
 * read the service's own class, {@link HYPERF_POLICY}.
 */
export const HYPERF_CLASSES = ['MtlsMiddleware.php', 'MtlsClientFactory.php', 'Crl.php'] as const;

/**
 * The one file made per Hyperf service, a class of `app/Podmesh/`: its identity, listeners and
 * call policy, as constants, which every other file reads.
 */
export const HYPERF_POLICY = 'Policy.php';

/** One generated Hyperf file: its template under `templates/hyperf/`, where it is under the host folder, and under the application root. */
export interface HyperfFile {
  readonly template: string;
  /** Under the host folder: `config/<service>/…`, or `config/_shared/…` when {@link shared}. */
  readonly source: string;
  readonly target: string;
  /** The same file for every Hyperf service of the host (of the same mTLS server name): one copy, rendered from no service's values. */
  readonly shared: boolean;
}

/**
 * Every generated file of a Hyperf service: the config/autoload files, the global middleware list
 * of the mTLS server (`middlewares.<server>.php`: Hyperf 3's ConfigFactory keys an autoload file by
 * its dotted base name, so it lands at `middlewares.<server>` beside the application's own
 * `middlewares.php`), the shared classes, and the service's own Policy.php, the one not shared.
 */
export function hyperfFiles(service: string, serverName: string): HyperfFile[] {
  const shared = (file: string, target: string, template: string): HyperfFile => ({ template, source: sharedConfigPath(file), target, shared: true });
  return [
    ...HYPERF_FILES.map((f) => shared(`autoload/${f}`, `config/autoload/${f}`, f)),
    shared(`autoload/middlewares.${serverName}.php`, `config/autoload/middlewares.${serverName}.php`, 'middlewares.php'),
    ...HYPERF_CLASSES.map((f) => shared(`app/Podmesh/${f}`, `app/Podmesh/${f}`, `Podmesh/${f}`)),
    // The service's folder holds it alone, beside nothing: no app/Podmesh/ folders of its own.
    { template: `Podmesh/${HYPERF_POLICY}`, source: serviceConfigPath(service, HYPERF_POLICY), target: `app/Podmesh/${HYPERF_POLICY}`, shared: false },
  ];
}

/** The generated OpenSSL configuration of the host's mTLS services, under the host folder's `config/_shared/`. */
export const OPENSSL_CONF_FILE = 'openssl.cnf';

/** PostgreSQL's generated roles script, under the host folder's `config/<service>/`. */
export const POSTGRES_ROLES_FILE = 'podmesh-roles.sh';

/**
 * Where the official postgres image runs (sources, for a non-executable `*.sh`) init scripts on
 * its first start; also the path of the documented command for an existing database.
 */
export const POSTGRES_ROLES_PATH = `/docker-entrypoint-initdb.d/${POSTGRES_ROLES_FILE}`;

/** An absolute host path as given (without a trailing `/`); a relative one without `./` and `//`. */
function normalizeFolder(path: string): string {
  const n = posix.normalize(path);
  return n.length > 1 ? n.replace(/\/$/, '') : n;
}

/** Every mount of a workload, in a fixed order; a target mounted twice is reported. */
/** MinIO's setup script, under the MinIO's host folder `config/<minio>/`. */
export const MINIO_USERS_FILE = 'podmesh-users.sh';

/**
 * Files podmesh generates for a workload: PostgreSQL's roles script; for MinIO's setup, its script
 * (in MinIO's config folder) and the CA of MinIO's certificate, and where each is mounted.
 */
export interface GeneratedMounts {
  readonly postgresRoles?: boolean;
  readonly minioSetup?: { readonly minio: string; readonly script: string; readonly ca: string };
}

export function resolveMounts(w: Workload, names: Names, issues: IssueCollector, generated: GeneratedMounts = {}): ResolvedMount[] {
  const setup = generated.minioSetup;
  const hyperf = w instanceof Service ? w.hyperf : undefined;
  const mounts: ResolvedMount[] = [
    ...w.mounts.map((m): ResolvedMount => ({
      type: m.volume ? 'volume' : 'folder',
      // A volume of another stack has no name here (reported by the volume phase): its own path stands in.
      source: m.volume ? (names.volumeNameOf.get(m.volume) ?? m.volume.node.path) : normalizeFolder(m.hostPath!),
      target: m.target,
      readOnly: m.readOnly ?? false,
    })),
    ...hyperfMounts(w.name, hyperf),
    ...(w instanceof Service ? [opensslMount()] : []),
    ...(generated.postgresRoles ? [{ type: 'bind', source: `./${serviceConfigPath(w.name, POSTGRES_ROLES_FILE)}`, target: POSTGRES_ROLES_PATH, readOnly: true } satisfies ResolvedMount] : []),
    ...(setup
      ? [
          { type: 'bind', source: `./${serviceConfigPath(setup.minio, MINIO_USERS_FILE)}`, target: setup.script, readOnly: true } satisfies ResolvedMount,
          // The mesh CA from MinIO's own certificate folder: mc trusts it for MinIO's TLS (no --insecure).
          { type: 'pki', source: `${setup.minio}/ca.crt`, target: setup.ca, readOnly: true, foreign: true } satisfies ResolvedMount,
        ]
      : []),
    ...w.tlsMounts().map((m): ResolvedMount => ({
      type: 'pki',
      source: m.file ? `${w.name}/${m.file}` : w.name,
      target: m.target,
      readOnly: true,
    })),
  ];
  const targets = new Set<string>();
  for (const m of mounts) {
    if (targets.has(m.target)) issues.add(w.node.path, `two mounts target ${m.target}. Mount each path once${m.type === 'pki' ? ` (podmesh mounts the certificates at ${m.target})` : ''}.`);
    targets.add(m.target);
  }
  return mounts;
}

function opensslMount(): ResolvedMount {
  return { type: 'bind', source: `./${sharedConfigPath(OPENSSL_CONF_FILE)}`, target: OPENSSL_CONF_PATH, readOnly: true, shared: true };
}

function hyperfMounts(service: string, hyperf: { readonly appRoot: string; readonly serverName: string } | undefined): ResolvedMount[] {
  if (!hyperf) return [];
  return hyperfFiles(service, hyperf.serverName).map((file) => ({
    type: 'bind',
    source: `./${file.source}`,
    target: `${hyperf.appRoot}/${file.target}`,
    readOnly: true,
    ...(file.shared ? { shared: true } : {}),
  }));
}
