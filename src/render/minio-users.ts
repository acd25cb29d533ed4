// MinIO's setup script (`hosts/<host>/config/<minio>/podmesh-users.sh`): run by MinIO's one-shot
// setup container (the official `mc` image) once MinIO is healthy. It creates the bucket when
// missing and, unless MinIO shares its root user, one MinIO user per client (its own access key
// and password) with a policy that allows only the bucket. It holds no secret: the root password
// and every client's are read from the secret files mounted in the setup container.
import { MINIO_SETUP_CA } from '../../constructs/model/infra.ts';
import { hostFile, serviceConfigPath } from '../layout.ts';
import { secretTarget } from '../resolve/environment.ts';
import { MINIO_USERS_FILE } from '../resolve/mounts.ts';
import type { ResolvedCredentials, ResolvedStack } from '../resolve/model.ts';
import type { RenderedFile } from './file.ts';
import { hashHeader } from './header.ts';

/** The mc alias the script defines, in its private configuration folder. */
const ALIAS = 'podmesh';

/** mc's configuration folder (`MC_CONFIG_DIR`): in the setup container's /tmp tmpfs, gone with the container. */
export const MC_CONFIG_DIR = '/tmp/podmesh-mc';

/** A single-quoted shell word (an inner `'` closed, escaped and reopened). */
function shellWord(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The name of a client's policy on MinIO: `podmesh-<access key>`. */
export function minioPolicyName(user: string): string {
  return `podmesh-${user}`;
}

/**
 * A client's policy (MinIO's IAM policy JSON, version 2012-10-17): listing the bucket (and its
 * multipart uploads) and reading, writing and deleting its objects; no other bucket, no admin action.
 */
export function minioPolicy(bucket: string): object {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
        Resource: [`arn:aws:s3:::${bucket}`],
      },
      {
        Effect: 'Allow',
        Action: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'],
        Resource: [`arn:aws:s3:::${bucket}/*`],
      },
    ],
  };
}

// Longer than 80 lines' worth of reading: one shell script as one template literal, top to bottom like the file it writes.
/**
 * The script of one MinIO's setup. POSIX sh (the mc image's `/bin/sh` is bash; the tests also run
 * it under dash and busybox sh). Every secret reaches mc on its standard input through `printf`, a
 * shell builtin: `mc alias set ALIAS URL ACCESSKEY` and `mc admin user add ALIAS ACCESSKEY` read the
 * secret key from stdin when it is not a terminal (mc `fetchAliasKeys`, `fetchUserKeys`).
 */
export function minioUsersScript(stack: string, url: string, credentials: ResolvedCredentials): string {
  const m = credentials.minio!;
  const users = credentials.shared ? [] : credentials.clients;
  const root = secretTarget(m.rootPasswordId, 'value');
  const files = [root, ...users.map((c) => secretTarget(c.secretId, 'value'))];
  const target = `${ALIAS}/${m.bucket}`;
  const who = credentials.shared
    ? `Every client uses the root user (sharedCredentials: ${credentials.shared.reason.replace(/\s+/g, ' ')}): no user is created.`
    : `One user per client (${users.map((c) => `${c.user ?? c.name} for ${c.name}`).join(', ') || 'none'}), each with its own password and the policy podmesh-<user>: the bucket only.`;
  const clientLines = users.map((c) => {
    const user = c.user ?? c.name;
    const policy = minioPolicyName(user);
    return `podmesh_user ${shellWord(user)} ${shellWord(policy)} ${secretTarget(c.secretId, 'value')} ${shellWord(JSON.stringify(minioPolicy(m.bucket)))}`;
  });
  return `${hashHeader(stack).trimEnd()}
#
# MinIO setup of ${m.name}: run by the one-shot container ${m.name}-setup (image quay.io/minio/mc)
# once ${m.name} is healthy, and again on every start of that container (a client's password
# rotated, a client added). It creates the bucket "${m.bucket}" when missing.
# ${who}
# Idempotent: a user that exists gets its password set again, a policy is replaced, an attached
# policy stays attached. It never removes anything: a removed client's user and policy stay until
# you remove them (mc admin user rm, mc admin policy rm).
#
# No secret is in this file, on a command line or in the environment: the root password and each
# client's are read from the secret files under /run/secrets and reach mc on its standard input
# (printf is a shell builtin). mc keeps the alias with the root credentials in ${MC_CONFIG_DIR}, a tmpfs
# of this container, and trusts MinIO's certificate through the mesh CA copied to its certs/CAs/.
set -eu
umask 077
MC_CONFIG_DIR=${MC_CONFIG_DIR}
export MC_CONFIG_DIR
# Colour and the progress bar off: the output is a log.
MC_NO_COLOR=1
MC_QUIET=1
export MC_NO_COLOR MC_QUIET

for podmesh_file in ${files.join(' ')}; do
	if [ ! -r "$podmesh_file" ] || [ ! -s "$podmesh_file" ]; then
		printf 'podmesh-users: %s is missing, unreadable or empty: is the secret mounted?\\n' "$podmesh_file" >&2
		exit 1
	fi
done

mkdir -p "$MC_CONFIG_DIR/certs/CAs"
cp ${MINIO_SETUP_CA} "$MC_CONFIG_DIR/certs/CAs/podmesh-ca.crt"
# MinIO may not take requests yet (where the host's Podman cannot start this container only once
# MinIO is healthy, it starts right after MinIO): mc alias set asks the server, so it is tried
# again, once a second, for up to PODMESH_MINIO_WAIT seconds (default 60). Wrong credentials stop at once.
podmesh_wait=\${PODMESH_MINIO_WAIT:-60}
podmesh_try=0
until podmesh_out=$(printf '%s\\n' "$(cat ${root})" | mc alias set ${ALIAS} ${shellWord(url)} ${shellWord(m.rootUser)} --api s3v4 2>&1); do
	case "$podmesh_out" in
		*'Access Denied'*|*InvalidAccessKeyId*|*SignatureDoesNotMatch*) printf '%s\\n' "$podmesh_out" >&2; exit 1 ;;
	esac
	podmesh_try=$((podmesh_try + 1))
	if [ "$podmesh_try" -ge "$podmesh_wait" ]; then
		printf '%s\\npodmesh-users: MinIO did not take requests within %s s\\n' "$podmesh_out" "$podmesh_wait" >&2
		exit 1
	fi
	sleep 1
done
printf '%s\\n' "$podmesh_out"
mc mb --ignore-existing ${shellWord(target)}

# podmesh_user USER POLICY PASSWORD_FILE POLICY_JSON
podmesh_user() {
	printf '%s\\n' "$4" > "$MC_CONFIG_DIR/policy-$1.json"
	mc admin policy create ${ALIAS} "$2" "$MC_CONFIG_DIR/policy-$1.json"
	printf '%s\\n' "$(cat "$3")" | mc admin user add ${ALIAS} "$1"
	# Older mc refuses to attach a policy already attached ("already in effect"): that is done too.
	if ! podmesh_out=$(mc admin policy attach ${ALIAS} "$2" --user "$1" 2>&1); then
		case "$podmesh_out" in
			*'already in effect'*) ;;
			*) printf '%s\\n' "$podmesh_out" >&2; return 1 ;;
		esac
	fi
	printf 'podmesh-users: user %s has policy %s\\n' "$1" "$2"
}
${clientLines.length > 0 ? `\n${clientLines.join('\n')}\n` : ''}
printf 'podmesh-users: bucket %s is ready\\n' ${shellWord(m.bucket)}
`;
}

/** `config/<minio>/podmesh-users.sh` of every MinIO, for its setup container. */
export function renderMinioUsers(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  for (const s of stack.services) {
    const c = s.credentials;
    if (c?.kind !== 'minio' || !c.minio) continue;
    const host = stack.hosts.find((h) => h.name === s.host)!;
    // The setup reads it at each start: a change restarts the setup unit (it runs again).
    files.set(...hostFile(host, 'root', serviceConfigPath(c.minio.name, MINIO_USERS_FILE), minioUsersScript(stack.name, c.minio.url, c), { units: [s.unit.service] }));
  }
  return files;
}
