// Generated secrets of a stack: database, cache and object-store passwords. Values are created
// once in the state folder (`secrets/values.json`, 0600) and kept; each secret file a workload
// mounts gets `secrets/<file>` (0444 in the 0700 folder, see MODE): the value, or a configuration
// built from values (Redis' `requirepass` and its clients' ACL users). compose mounts them as file
// secrets; on Quadlet hosts `podmesh apply` installs copies (0600) from which the host's secrets
// unit creates Podman secrets. Either way they are read-only files under /run/secrets. Nothing of
// it is ever written to `out/` or put in an environment.
import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { atomicWriter, dirMode, type StateWriter } from '../../io/atomic.ts';
import { compare } from '../../io/sort.ts';
import type { ResolvedService } from '../../resolve/model.ts';
import { noteRead, stateContext, type Reconciler, type StateContext } from '../reconciler.ts';
import { SECRETS_FILE, secretPath } from './paths.ts';

/** What reconcile did (or, as part of a plan, will do). */
export interface SecretsResult {
  /** Secret ids generated now. */
  readonly created: readonly string[];
  /** Secret files written (new or changed), relative to the state folder. */
  readonly written: readonly string[];
  /** Secret files removed (no service mounts them any more; env files of earlier versions). */
  readonly removed: readonly string[];
  /** Secret ids replaced on request (`podmesh secrets rotate`). */
  readonly rotated: readonly string[];
}

/** Input of the secrets reconciler. */
export interface SecretsInput {
  /** The stack's state folder (`.podmesh/<stack>`). */
  readonly stateDir: string;
  readonly stack: string;
  readonly services: readonly Pick<ResolvedService, 'name' | 'secrets'>[];
  /** Services whose own secrets (ids `<service>/…`) get new values now. @default - none */
  readonly rotate?: readonly string[];
}

/** Everything the secrets apply does: whole files (0600) to write and secret files to remove. */
export interface SecretsPlan {
  readonly stateDir: string;
  /** Whether `secrets/` must be created or its mode repaired (0700). */
  readonly dir: 'ok' | 'create' | 'chmod';
  /** Files to (re)write, relative to the state folder, in order: values first, then secret files. */
  readonly writes: readonly { readonly path: string; readonly content: string; readonly mode: number }[];
  readonly result: SecretsResult;
}

const SECRET_VALUE = /^[A-Za-z0-9_-]{16,}$/;
/**
 * `values.json` 0600. Each secret file 0444: compose bind-mounts it as a file secret into
 * containers whose users are not its owner (the image's postgres or redis user, or any user of a
 * container in its own user namespace on a rootful host), and compose cannot chown a secret. The
 * folder (0700) keeps every other host user out, as Docker keeps its own secrets; inside the
 * container the file is read-only, 0444, like Docker's and Podman's secrets.
 */
const MODE = { dir: 0o700, file: 0o600, secretFile: 0o444 } as const;

/** A file's text and mode, undefined when absent (never follows a symbolic link). */
function readFile(abs: string): { text: string; mode: number } | undefined {
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    return { text: readFileSync(fd, 'utf8'), mode: fstatSync(fd).mode & 0o777 };
  } finally {
    closeSync(fd);
  }
}

/** Decides the stack's secrets without writing: new values from `ctx.random`, secret files, removals. */
export async function planSecrets(input: SecretsInput, ctx: StateContext): Promise<SecretsPlan> {
  const valuesPath = join(input.stateDir, SECRETS_FILE);
  // A Redis configuration also needs its ACL users' passwords (their hashes go into it).
  const needed = [...new Set(input.services.flatMap((s) => s.secrets.flatMap((f) => [f.id, ...(f.acl ?? []).map((a) => a.id)])))].sort(compare);
  const rotated = needed.filter((id) => (input.rotate ?? []).some((svc) => id.startsWith(`${svc}/`)));
  const values = currentValues(input, valuesPath, needed, rotated);
  const created = needed.filter((id) => values[id] === undefined && !rotated.includes(id));
  // 24 random bytes, base64url: no character needs quoting in a configuration file, SQL, URL or shell.
  for (const id of [...created, ...rotated].sort(compare)) values[id] = Buffer.from(ctx.random.bytes(24)).toString('base64url');
  const writes: { path: string; content: string; mode: number }[] = [];
  const dirAbs = join(input.stateDir, 'secrets');
  const folderMode = dirMode(dirAbs);
  // Every file is in secrets/: with nothing there (a first run) there is nothing to read, and a
  // failed open each (2,000 of them for 1,000 services) costs more than the rest of the plan.
  const anything = existsSync(dirAbs);
  const want = (rel: string, content: string, mode: number): void => {
    const have = anything ? readFile(join(input.stateDir, rel)) : undefined;
    if (have) noteRead(ctx, join(input.stateDir, rel), have.text);
    if (!have || have.text !== content || have.mode !== mode) writes.push({ path: rel, content, mode });
  };
  if (created.length > 0 || rotated.length > 0 || !existsSync(valuesPath)) {
    const sorted = Object.fromEntries(Object.entries(values).sort(([a], [b]) => compare(a, b)));
    want(SECRETS_FILE, `${JSON.stringify(sorted, null, 2)}\n`, MODE.file);
  }
  const wanted = new Set<string>();
  const files = new Map<string, string>();
  for (const f of input.services.flatMap((s) => s.secrets)) files.set(secretPath(f.file), secretFileContent(f, values));
  for (const [rel, content] of [...files].sort(([a], [b]) => compare(a, b))) {
    wanted.add(rel);
    want(rel, content, MODE.secretFile);
  }
  // Every other file in secrets/ is podmesh's (the folder is its own): secret files nothing mounts
  // any more, and the env files earlier versions passed to containers.
  // Hidden names are an interrupted write's temporaries: the leftovers sweep owns those.
  const removed = folderMode === undefined ? [] : readdirSync(dirAbs).filter((f) => !f.startsWith('.')).map((f) => `secrets/${f}`).filter((rel) => rel !== SECRETS_FILE && !wanted.has(rel)).sort(compare);
  return {
    stateDir: input.stateDir,
    dir: folderMode === undefined ? 'create' : folderMode !== MODE.dir ? 'chmod' : 'ok',
    writes,
    result: { created, written: writes.map((w) => w.path), removed, rotated },
  };
}

/**
 * A secret file's content: the value alone (no newline: `*_FILE` readers differ in trimming), or
 * Redis' configuration, read by redis-server from stdin: the default user's password
 * (`requirepass`), then one ACL user per client, holding only its password's SHA-256 (`#<hex>`),
 * allowed the keys (`~`) and Pub/Sub channels (`&`) under its prefix and every command but the
 * administrative and dangerous ones.
 * @see https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/
 */
export function secretFileContent(f: Pick<ResolvedService['secrets'][number], 'id' | 'format' | 'acl'>, values: Readonly<Record<string, string>>): string {
  const value = values[f.id]!;
  if (f.format !== 'redis-conf') return value;
  const users = (f.acl ?? []).map((a) => `user ${a.user} on #${createHash('sha256').update(values[a.id]!).digest('hex')} ~${a.user}:* &${a.user}:* +@all -@admin -@dangerous\n`);
  return `# Generated by podmesh. Secret: never commit, never copy out of the state folder or host root.\nrequirepass ${value}\n${users.join('')}`;
}

/**
 * Carries out a secrets plan: the folder (0700), every file atomically (values 0600, secret files
 * 0444), then removals. `values.json` goes first and alone: once the CA exists a state folder
 * without it is refused, so the window in which a crash leaves that stays one file wide; the
 * secret files, derived from it (and written again by the next run if a crash loses them), follow
 * as one durable batch.
 */
export async function applySecrets(plan: SecretsPlan, writer: StateWriter): Promise<SecretsResult> {
  const dir = join(plan.stateDir, 'secrets');
  // Today's behaviour: the folder exists (0700) after every reconcile, even for a stack without secrets.
  if (plan.dir === 'create') await writer.mkdir(dir, MODE.dir);
  else if (plan.dir === 'chmod') await writer.chmod(dir, MODE.dir);
  const values = plan.writes.filter((w) => w.path === SECRETS_FILE);
  for (const w of values) await writer.write(join(plan.stateDir, w.path), w.content, w.mode);
  await writer.writeBatch(plan.writes.filter((w) => w.path !== SECRETS_FILE).map((w) => ({ abs: join(plan.stateDir, w.path), content: w.content, mode: w.mode })));
  for (const rel of plan.result.removed) await writer.unlink(join(plan.stateDir, rel));
  return plan.result;
}

/** The secrets reconciler. */
export const secretsReconciler: Reconciler<SecretsInput, SecretsPlan, SecretsResult> = { plan: planSecrets, apply: applySecrets };

/** Plans and applies at once. Throws (writing nothing) on a damaged file. */
export async function reconcileSecrets(input: SecretsInput, ctx: StateContext = stateContext()): Promise<SecretsResult> {
  return applySecrets(await planSecrets(input, ctx), atomicWriter);
}

/**
 * The values a plan starts from. A fresh state folder (nothing there yet) starts empty. A state
 * folder that already holds a CA or secret files but lost or damaged `values.json` is refused: the
 * running services and their data volumes keep the old passwords, so new ones must be asked for
 * (`podmesh secrets rotate`), never made up silently. Ids being rotated need no old value.
 */
function currentValues(input: SecretsInput, valuesPath: string, needed: readonly string[], rotated: readonly string[]): Record<string, string> {
  const read = readValues(valuesPath);
  if (read.ok) return read.values;
  const history = stateHistory(input.stateDir);
  if (read.reason === 'missing' && history === undefined) return {};
  const lost = needed.filter((id) => !rotated.includes(id));
  if (lost.length === 0) return {};
  const owners = [...new Set(lost.map((id) => id.split('/')[0]!))];
  const what = read.reason === 'missing' ? `is missing, but ${history} already exists` : read.reason;
  throw PodmeshError.at(valuesPath, `${what}, so the running services use passwords podmesh no longer has (${lost.join(', ')}); it will not invent new ones silently. Restore ${SECRETS_FILE} from a backup of the state folder, or replace them on purpose with \`podmesh secrets rotate --stack ${input.stack} ${owners.map((o) => `--service ${o}`).join(' ')}\`, then redeploy those services; rotate prints what else sets the new passwords in the servers' data (PostgreSQL's ALTER ROLE and its roles script).`);
}

/** What shows a stack's state folder was used before (a CA, the inventory, a secret or env file), or undefined. */
function stateHistory(stateDir: string): string | undefined {
  for (const rel of ['pki/ca.crt', 'pki/inventory.json']) if (existsSync(join(stateDir, rel))) return rel;
  const dir = join(stateDir, 'secrets');
  const file = dirMode(dir) === undefined ? undefined : readdirSync(dir).sort(compare).find((f) => !f.startsWith('.') && `secrets/${f}` !== SECRETS_FILE);
  return file ? `secrets/${file}` : undefined;
}

type ValuesRead = { readonly ok: true; readonly values: Record<string, string> } | { readonly ok: false; readonly reason: string };

function readValues(path: string): ValuesRead {
  if (!existsSync(path)) return { ok: false, reason: 'missing' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return { ok: false, reason: `is not valid JSON (${(e as Error).message})` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((v) => typeof v === 'string' && SECRET_VALUE.test(v))) {
    return { ok: false, reason: 'does not map secret ids to generated values (16+ characters of A-Z, a-z, 0-9, "_", "-")' };
  }
  return { ok: true, values: { ...(parsed as Record<string, string>) } };
}
