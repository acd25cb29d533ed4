// Least-privilege MinIO credentials: each client of a MinIO gets a user of its own and a policy
// limited to its bucket, created by MinIO's one-shot setup container (the `mc` image) with a
// generated script. MinIO and mc are in no Debian archive: the script runs here, under dash, bash
// and busybox sh, against a stand-in `mc` on PATH that records its argv, environment and stdin and
// keeps the users, policies and buckets a MinIO would (an in-file model, not MinIO).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINIO_SETUP_CA } from '../constructs/model/infra.ts';
import { afterRotation } from '../src/ops/rotation.ts';
import { loadStacks } from '../src/cli/load.ts';
import { App, Host, Minio, Network, resolveStack, Stack, type ResolvedService, type ResolvedStack } from '../src/index.ts';
import { renderStack } from '../src/render/stack.ts';
import { MC_CONFIG_DIR, minioPolicy, minioUsersScript } from '../src/render/minio-users.ts';
import { SECRETS_DIR } from '../src/resolve/environment.ts';
import { validateConstructs } from '../src/synth/index.ts';
import { podmeshError } from './helpers/errors.ts';
import { miniStack, svc, tempDir } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';
import { dryRun } from './helpers/units.ts';

const quadlet = tool('quadlet');

/**
 * The stand-in `mc`: records each call (argv NUL-separated, environment, stdin) under
 * $MC_STANDIN_LOG/<n>/, and keeps a MinIO's state under $MC_STANDIN_STATE: the root password it
 * accepts, buckets, users (their secret keys), policies (the JSON it was pointed at) and attached
 * policies. `policy attach` of a policy already attached fails as older mc does ("already in effect").
 */
const STAND_IN = `#!/bin/sh
set -eu
log="$MC_STANDIN_LOG"; st="$MC_STANDIN_STATE"
n=$(ls "$log" | wc -l); call="$log/$n"; mkdir -p "$call"
printf '%s\\0' "$@" > "$call/argv"
env > "$call/env"
need_stdin() { IFS= read -r podmesh_line || true; printf '%s' "$podmesh_line" > "$call/stdin"; }
case "$1 \${2:-} \${3:-}" in
"alias set "*)
	need_stdin
	# MC_STANDIN_NOT_READY=N: the first N calls find MinIO not taking requests yet, as mc words it.
	tries=$(cat "$st/tries" 2>/dev/null || echo 0)
	if [ "$tries" -lt "\${MC_STANDIN_NOT_READY:-0}" ]; then
		echo $((tries + 1)) > "$st/tries"
		echo 'mc: <ERROR> Unable to initialize new alias from the provided credentials. Server not initialized yet, please try again.' >&2; exit 1
	fi
	[ "$(cat "$call/stdin")" = "$(cat "$st/root")" ] || { echo 'mc: Access Denied.' >&2; exit 1; }
	[ -n "\${MC_CONFIG_DIR:-}" ] && [ -s "$MC_CONFIG_DIR/certs/CAs/podmesh-ca.crt" ] || { echo 'mc: certificate signed by unknown authority' >&2; exit 1; }
	printf '%s %s %s\\n' "$3" "$4" "$5" > "$MC_CONFIG_DIR/alias-$3"
	echo "Added \\\`$3\\\` successfully." ;;
"mb --ignore-existing "*)
	[ -f "$MC_CONFIG_DIR/alias-\${3%%/*}" ] || { echo 'mc: no alias' >&2; exit 1; }
	mkdir -p "$st/buckets/\${3#*/}"; echo "Bucket created successfully \\\`$3\\\`." ;;
"admin policy create")
	cp "$6" "$call/file"; mkdir -p "$st/policies"; cp "$6" "$st/policies/$5.json"; echo "Created policy \\\`$5\\\` successfully." ;;
"admin user add")
	need_stdin; mkdir -p "$st/users"; cp "$call/stdin" "$st/users/$5"; echo "Added user \\\`$5\\\` successfully." ;;
"admin policy attach")
	[ "$6" = --user ] && [ -f "$st/users/$7" ] && [ -f "$st/policies/$5.json" ] || { echo 'mc: no such user or policy' >&2; exit 1; }
	mkdir -p "$st/attached"
	if grep -qx "$5" "$st/attached/$7" 2>/dev/null; then echo 'mc: <ERROR> Unable to make user/group policy association. The specified policy change is already in effect.' >&2; exit 1; fi
	echo "$5" >> "$st/attached/$7"; echo "Attached Policies: [$5]" ;;
*) echo "stand-in mc: unexpected call: $*" >&2; exit 2 ;;
esac
`;

/** A folder laid out as the setup container sees it, the stand-in on PATH, and a run of the script in it. */
class SetupSandbox {
  readonly bin: string;
  readonly secrets: string;
  readonly log: string;
  readonly state: string;
  readonly ca: string;
  readonly mcDir: string;
  runs = 0;

  constructor(readonly root: string) {
    this.bin = join(root, 'bin');
    this.secrets = join(root, 'secrets');
    this.log = join(root, 'log');
    this.state = join(root, 'minio');
    this.ca = join(root, 'ca.crt');
    this.mcDir = join(root, 'tmp/podmesh-mc');
    for (const d of [this.bin, this.secrets, this.log, this.state, join(root, 'tmp')]) mkdirSync(d, { recursive: true });
    writeFileSync(join(this.bin, 'mc'), STAND_IN);
    chmodSync(join(this.bin, 'mc'), 0o755);
    writeFileSync(this.ca, '-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n');
  }

  secret(file: string, value: string): void {
    writeFileSync(join(this.secrets, file), value, { mode: 0o400 });
  }

  /**
   * The script with the container's mount points mapped into the sandbox, as the setup container's
   * mounts place them: /run/secrets, the mesh CA, mc's tmpfs folder. Nothing else is changed.
   */
  install(script: string): string {
    const mapped = script.replaceAll(`${SECRETS_DIR}/`, `${this.secrets}/`).replaceAll(MINIO_SETUP_CA, this.ca).replaceAll(MC_CONFIG_DIR, this.mcDir);
    const file = join(this.root, `podmesh-users-${this.runs}.sh`);
    writeFileSync(file, mapped);
    return file;
  }

  run(shell: readonly string[], script: string, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
    const file = this.install(script);
    this.runs++;
    const r = spawnSync(shell[0]!, [...shell.slice(1), file], {
      encoding: 'utf8',
      input: '',
      timeout: 20_000,
      env: { PATH: `${this.bin}:/usr/bin:/bin`, MC_STANDIN_LOG: this.log, MC_STANDIN_STATE: this.state, ...env },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Every recorded call: argv, environment, stdin, and the file it was pointed at. */
  calls(): { argv: string[]; env: string; stdin?: string; file?: string }[] {
    return readdirSync(this.log)
      .sort((a, b) => Number(a) - Number(b))
      .map((n) => {
        const dir = join(this.log, n);
        const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : undefined);
        return { argv: read('argv')!.split('\0').slice(0, -1), env: read('env')!, ...(read('stdin') !== undefined ? { stdin: read('stdin')! } : {}), ...(read('file') !== undefined ? { file: read('file')! } : {}) };
      });
  }

  read(path: string): string {
    return readFileSync(join(this.state, path), 'utf8');
  }
}

const service = (r: ResolvedStack, name: string): ResolvedService => {
  const s = r.services.find((x) => x.name === name);
  if (!s) throw new Error(`no service ${name}`);
  return s;
};

describe('MinIO users: ashchan-dev and ashchan-prod', () => {
  let dev: ResolvedStack;
  let prod: ResolvedStack;
  beforeAll(async () => {
    const app = await loadStacks(join(repoRoot, 'stacks'));
    dev = resolveStack(app.node.findChild('ashchan-dev') as Stack, { lock: JSON.parse(readFileSync(join(repoRoot, 'out/ashchan-dev/podmesh.lock.json'), 'utf8')) });
    prod = resolveStack(app.node.findChild('ashchan-prod') as Stack, { lock: JSON.parse(readFileSync(join(repoRoot, 'out/ashchan-prod/podmesh.lock.json'), 'utf8')) });
  }, 60_000);

  it('GIVEN media (a MinIO client) THEN S3_KEY is its own user and S3_SECRET_FILE its own password; MinIO\'s root password is not mounted into it', () => {
    for (const r of [dev, prod]) {
      const media = service(r, 'media');
      expect(Object.fromEntries(media.environment)).toMatchObject({ S3_KEY: 'media', S3_SECRET_FILE: '/run/secrets/media.minio-password', S3_BUCKET: 'ashchan' });
      expect(media.secrets.map((f) => f.id)).toContain('media/minio-password');
      expect(media.secrets.map((f) => f.id)).not.toContain('minio/password');
      expect(media.dependsOn).toContainEqual({ service: 'minio-setup', condition: 'completed' });
    }
  });

  it('GIVEN MinIO\'s setup THEN it mounts the root password, each client\'s, the script and the mesh CA read-only, and is a oneshot after MinIO', () => {
    const setup = service(dev, 'minio-setup');
    expect(setup.image).toMatch(/^quay\.io\/minio\/mc:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/);
    expect(setup.entrypoint).toEqual(['/bin/sh']);
    expect(setup.command).toEqual(['/etc/podmesh/podmesh-users.sh']);
    expect(setup.oneshot).toBe(true);
    expect(setup.restart).toBe('no');
    expect(setup.healthcheck).toBeUndefined();
    expect(setup.dependsOn).toEqual([{ service: 'minio', condition: 'healthy' }]);
    expect(setup.secrets.map((f) => [f.id, f.variable, f.target])).toEqual([
      ['media/minio-password', undefined, '/run/secrets/media.minio-password'],
      ['minio/password', undefined, '/run/secrets/minio.password'],
    ]);
    expect(setup.environment).toEqual([]);
    expect(setup.mounts).toEqual([
      { type: 'bind', source: './config/minio/podmesh-users.sh', target: '/etc/podmesh/podmesh-users.sh', readOnly: true },
      { type: 'pki', source: 'minio/ca.crt', target: '/etc/podmesh/minio-ca.crt', readOnly: true, foreign: true },
    ]);
    expect(setup.credentials).toEqual({
      kind: 'minio',
      minio: { name: 'minio', url: 'https://minio.ashchan.local:9000', rootUser: 'ashchan', rootPasswordId: 'minio/password', bucket: 'ashchan' },
      clients: [{ name: 'media', secretId: 'media/minio-password', user: 'media' }],
    });
    // The rotation of media's password restarts the setup (it carries the file) before media.
    const text = afterRotation(dev, ['media/minio-password']).join('\n');
    expect(text).toContain('Redeploy on host local: minio-setup first, then media');
    expect(text).toContain('minio-setup sets the passwords of minio\'s users for media in minio each time it runs');
  });

  it('GIVEN the committed compose files THEN media waits for the setup to complete, the setup for MinIO to be healthy, once; MinIO\'s CA is shared (z), not chowned', () => {
    const compose = readFileSync(join(repoRoot, 'out/ashchan-prod/hosts/data/compose.yaml'), 'utf8');
    expect(compose).toMatch(/ {6}minio-setup:\n {8}condition: service_completed_successfully\n/);
    expect(compose).toMatch(/ {2}minio-setup:\n(?: {4}.*\n)*? {4}restart: "no"\n/);
    expect(compose).toContain('/ashchan-prod/pki/services/minio/ca.crt:/etc/podmesh/minio-ca.crt:ro,z\n');
    expect(compose).toContain('./config/minio/podmesh-users.sh:/etc/podmesh/podmesh-users.sh:ro,Z\n');
  });

  it('GIVEN the committed Quadlet units THEN the setup is Type=oneshot with RemainAfterExit, media After/Wants it, and the units stay secret-free', () => {
    const dir = join(repoRoot, 'out/ashchan-prod/hosts/data/quadlet');
    const setup = readFileSync(join(dir, 'ashchan-minio-setup.container'), 'utf8');
    expect(setup).toMatch(/^Requires=ashchan-minio\.service$/m);
    expect(setup).toMatch(/^After=ashchan-minio\.service$/m);
    expect(setup).toMatch(/\[Service\]\nType=oneshot\nRemainAfterExit=true\nRestart=no\n/);
    // Podman 4.9 on the data host: no Entrypoint= key (5.0), the flag instead.
    expect(setup).toMatch(/^PodmanArgs=.* --entrypoint=\/bin\/sh$/m);
    expect(setup).toMatch(/^Exec=\/etc\/podmesh\/podmesh-users\.sh$/m);
    const media = readFileSync(join(dir, 'ashchan-media.container'), 'utf8');
    expect(media).toMatch(/^Wants=ashchan-minio-setup\.service$/m);
    expect(media).toMatch(/^After=ashchan-minio-setup\.service$/m);
    // Wants=, not Requires=: restarting the setup for a rotated password does not restart media.
    expect(media).not.toMatch(/^Requires=ashchan-minio-setup\.service$/m);
  });

  it.skipIf(!quadlet)('GIVEN the setup units WHEN quadlet -dryrun THEN a oneshot podman run of the mc image with the script, after MinIO', () => {
    for (const [dir, user] of [[join(repoRoot, 'out/ashchan-dev/hosts/local/quadlet'), true], [join(repoRoot, 'out/ashchan-prod/hosts/data/quadlet'), false]] as const) {
      const gen = dryRun(quadlet!, dir, user);
      expect(gen.status, gen.complaints.join('\n')).toBe(0);
      expect(gen.complaints).toEqual([]);
      const unit = gen.services.get('ashchan-minio-setup.service')!;
      expect(unit).toMatch(/^Type=oneshot$/m);
      expect(unit).toMatch(/^RemainAfterExit=(yes|true)$/m);
      const exec = unit.split('\n').find((l) => l.startsWith('ExecStart='))!;
      expect(exec).toContain('--entrypoint');
      expect(exec).toMatch(/quay\.io\/minio\/mc:RELEASE\.[^ ]+ \/etc\/podmesh\/podmesh-users\.sh$/);
    }
  });

  it('GIVEN the generated script THEN it holds no secret and names every secret by its path only', () => {
    const script = readFileSync(join(repoRoot, 'out/ashchan-dev/hosts/local/config/minio/podmesh-users.sh'), 'utf8');
    expect(script).toBe(minioUsersScript('ashchan-dev', 'https://minio.ashchan.local:9000', service(dev, 'minio-setup').credentials!));
    expect(script).toContain('"$(cat /run/secrets/minio.password)" | mc alias set podmesh \'https://minio.ashchan.local:9000\' \'ashchan\' --api s3v4');
    expect(script).not.toMatch(/--insecure/);
  });
});

describe('MinIO users: the setup script run for real against a stand-in mc', () => {
  const dir = tempDir('podmesh-minio-users-');
  afterAll(() => dir.cleanup());
  // Two clients, one with a name shorter than MinIO's 3-character access keys.
  const { stack } = miniStack('files');
  const minio = new Minio(stack, 'store', { bucket: 'mini-media' });
  svc(stack, 'api', { dependsOn: [minio] });
  svc(stack, 'ab', { dependsOn: [minio] });
  const resolved = resolveStack(stack);
  const setup = service(resolved, 'store-setup');
  const script = minioUsersScript('files', setup.credentials!.minio!.url, setup.credentials!);
  const secrets = { root: 'RootPw-0123456789abcdefghij', api: 'ApiPw-abcdefghijklmnop0123', ab: 'AbPw-zyxwvutsrqponmlk98765' };

  it('GIVEN a client named "ab" THEN its access key is <project>-ab and its environment names it', () => {
    expect(setup.credentials!.clients).toEqual([
      { name: 'ab', secretId: 'ab/store-password', user: 'mini-ab' },
      { name: 'api', secretId: 'api/store-password', user: 'api' },
    ]);
    expect(Object.fromEntries(service(resolved, 'ab').environment)).toMatchObject({ S3_KEY: 'mini-ab', S3_SECRET_FILE: '/run/secrets/ab.store-password', S3_BUCKET: 'mini-media' });
  });

  it.each([
    ['dash', ['/usr/bin/dash']],
    ['bash', ['/usr/bin/bash']],
    ['busybox sh', ['/usr/bin/busybox', 'sh']],
  ] as const)('GIVEN %s WHEN the script runs twice and again after a rotation THEN bucket, users and policies are set, idempotently, with no secret on any argv or in any environment', (name, shell) => {
    if (!existsSync(shell[0])) throw new Error(`${shell[0]} is missing (apt-get install ${name.split(' ')[0]})`);
    const box = new SetupSandbox(join(dir.path, name.replace(' ', '-')));
    writeFileSync(join(box.state, 'root'), secrets.root);
    box.secret('store.password', `${secrets.root}\n`);
    box.secret('api.store-password', secrets.api);
    box.secret('ab.store-password', `${secrets.ab}\n`);

    const first = box.run(shell, script);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toContain('podmesh-users: user api has policy podmesh-api\n');
    expect(first.stdout).toContain('podmesh-users: user mini-ab has policy podmesh-mini-ab\n');
    expect(first.stdout).toMatch(/podmesh-users: bucket mini-media is ready\n$/);

    // THEN the bucket, each user with its own password, each policy attached once
    expect(readdirSync(join(box.state, 'buckets'))).toEqual(['mini-media']);
    expect(box.read('users/api')).toBe(secrets.api);
    expect(box.read('users/mini-ab')).toBe(secrets.ab);
    expect(box.read('attached/api')).toBe('podmesh-api\n');
    expect(box.read('attached/mini-ab')).toBe('podmesh-mini-ab\n');
    // THEN each policy is valid JSON allowing only the bucket and its objects, only S3 actions
    for (const user of ['api', 'mini-ab']) {
      const policy = JSON.parse(box.read(`policies/podmesh-${user}.json`)) as { Version: string; Statement: { Effect: string; Action: string[]; Resource: string[] }[] };
      expect(policy).toEqual(minioPolicy('mini-media'));
      expect(policy.Version).toBe('2012-10-17');
      for (const st of policy.Statement) {
        expect(st.Effect).toBe('Allow');
        expect(st.Action.every((a) => /^s3:[A-Za-z]+$/.test(a))).toBe(true);
        expect(st.Resource.every((r) => r === 'arn:aws:s3:::mini-media' || r === 'arn:aws:s3:::mini-media/*')).toBe(true);
      }
      expect(policy.Statement.flatMap((s) => s.Action)).not.toContain('s3:*');
    }

    // THEN no secret value in any argv or environment; each reached mc on stdin only
    const calls = box.calls();
    expect(calls.map((c) => c.argv.slice(0, 3).join(' '))).toEqual([
      'alias set podmesh',
      'mb --ignore-existing podmesh/mini-media',
      ...['mini-ab', 'api'].flatMap(() => ['admin policy create', 'admin user add', 'admin policy attach']),
    ]);
    expect(calls.filter((c) => c.argv[1] === 'policy').map((c) => c.argv.slice(3))).toEqual([
      ['podmesh', 'podmesh-mini-ab', `${box.mcDir}/policy-mini-ab.json`],
      ['podmesh', 'podmesh-mini-ab', '--user', 'mini-ab'],
      ['podmesh', 'podmesh-api', `${box.mcDir}/policy-api.json`],
      ['podmesh', 'podmesh-api', '--user', 'api'],
    ]);
    for (const c of calls) {
      for (const value of Object.values(secrets)) {
        expect(c.argv.join(' '), `${name}: argv of mc ${c.argv[0]}`).not.toContain(value);
        expect(c.env, `${name}: environment of mc ${c.argv.join(' ')}`).not.toContain(value);
      }
      expect(c.env).toMatch(/^MC_CONFIG_DIR=.*\/tmp\/podmesh-mc$/m);
    }
    expect(calls[0]!.argv).toEqual(['alias', 'set', 'podmesh', 'https://store.mini.local:9000', 'minio-root', '--api', 's3v4']);
    expect(calls[0]!.stdin).toBe(secrets.root);
    expect(calls.filter((c) => c.argv[1] === 'user').map((c) => [c.argv[4], c.stdin])).toEqual([['mini-ab', secrets.ab], ['api', secrets.api]]);
    // mc's configuration (with the root credentials) stays in its private folder, owner-only.
    expect(spawnSync('stat', ['-c', '%a', box.mcDir], { encoding: 'utf8' }).stdout.trim()).toBe('700');

    // WHEN run again THEN it succeeds (attach "already in effect" is done) and nothing changes
    const second = box.run(shell, script);
    expect(second.stderr).toBe('');
    expect(second.status).toBe(0);
    expect(box.read('attached/api')).toBe('podmesh-api\n');
    expect(box.read('users/api')).toBe(secrets.api);

    // WHEN api's password is rotated THEN the next run sets the new one
    box.secret('api.store-password.new', 'ApiPw-rotated-9876543210zz');
    spawnSync('mv', ['-f', join(box.secrets, 'api.store-password.new'), join(box.secrets, 'api.store-password')]);
    const third = box.run(shell, script);
    expect(third.status, third.stderr).toBe(0);
    expect(box.read('users/api')).toBe('ApiPw-rotated-9876543210zz');
    expect(box.read('users/mini-ab')).toBe(secrets.ab);
  });

  it('GIVEN a client\'s secret file missing WHEN the script runs THEN it stops before calling mc and names the file', () => {
    const box = new SetupSandbox(join(dir.path, 'missing'));
    writeFileSync(join(box.state, 'root'), secrets.root);
    box.secret('store.password', secrets.root);
    box.secret('api.store-password', secrets.api);
    const r = box.run(['/usr/bin/dash'], script);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`podmesh-users: ${box.secrets}/ab.store-password is missing, unreadable or empty: is the secret mounted?\n`);
    expect(box.calls()).toEqual([]);
  });

  it('GIVEN MinIO not taking requests yet WHEN the script runs THEN it tries mc alias set again once a second, bounded, and goes on once MinIO answers', () => {
    const ready = new SetupSandbox(join(dir.path, 'late'));
    writeFileSync(join(ready.state, 'root'), secrets.root);
    ready.secret('store.password', secrets.root);
    ready.secret('api.store-password', secrets.api);
    ready.secret('ab.store-password', secrets.ab);
    const late = ready.run(['/usr/bin/dash'], script, { MC_STANDIN_NOT_READY: '2' });
    expect(late.status, late.stderr).toBe(0);
    expect(ready.calls().filter((c) => c.argv[0] === 'alias')).toHaveLength(3);
    expect(existsSync(join(ready.state, 'users/api'))).toBe(true);
    // ... and gives up after PODMESH_MINIO_WAIT tries, saying why
    const never = new SetupSandbox(join(dir.path, 'never'));
    writeFileSync(join(never.state, 'root'), secrets.root);
    never.secret('store.password', secrets.root);
    never.secret('api.store-password', secrets.api);
    never.secret('ab.store-password', secrets.ab);
    const r = never.run(['/usr/bin/dash'], script, { MC_STANDIN_NOT_READY: '99', PODMESH_MINIO_WAIT: '3' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Server not initialized yet');
    expect(r.stderr).toContain('podmesh-users: MinIO did not take requests within 3 s');
    expect(never.calls().filter((c) => c.argv[0] === 'alias')).toHaveLength(3);
    expect(existsSync(join(never.state, 'users'))).toBe(false);
  });

  it('GIVEN a wrong root password WHEN the script runs THEN it stops at mc alias set, no user is created', () => {
    const box = new SetupSandbox(join(dir.path, 'wrong-root'));
    writeFileSync(join(box.state, 'root'), secrets.root);
    box.secret('store.password', 'not-the-root-password');
    box.secret('api.store-password', secrets.api);
    box.secret('ab.store-password', secrets.ab);
    const r = box.run(['/usr/bin/dash'], script);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('mc: Access Denied.');
    // (at once: wrong credentials are not tried again)
    expect(box.calls().filter((c) => c.argv[0] === 'alias')).toHaveLength(1);
    expect(existsSync(join(box.state, 'users'))).toBe(false);
  });
});

describe('MinIO users: the shared opt-out and refusals', () => {
  it('GIVEN sharedCredentials with a reason THEN the client uses the root user and password, the setup only creates the bucket', () => {
    const reason = 'the legacy uploader manages its own buckets';
    const { stack } = miniStack('opt');
    const minio = new Minio(stack, 'store', { sharedCredentials: { reason } });
    svc(stack, 'api', { dependsOn: [minio] });
    const r = resolveStack(stack);
    expect(Object.fromEntries(service(r, 'api').environment)).toMatchObject({ S3_KEY: 'minio-root', S3_SECRET_FILE: '/run/secrets/store.password' });
    const setup = service(r, 'store-setup');
    expect(setup.secrets.map((f) => f.id)).toEqual(['store/password']);
    expect(setup.credentials).toMatchObject({ kind: 'minio', shared: { user: 'minio-root', reason } });
    const script = minioUsersScript('opt', setup.credentials!.minio!.url, setup.credentials!);
    expect(script).toContain("mc mb --ignore-existing 'podmesh/mini'");
    expect(script).not.toMatch(/^podmesh_user /m);
    expect(script).toContain(`Every client uses the root user (sharedCredentials: ${reason}): no user is created.`);
  });

  it('GIVEN sharedCredentials without a reason THEN synth refuses it and says what to write', () => {
    const { stack } = miniStack('opt');
    new Minio(stack, 'store', { sharedCredentials: {} as never });
    const messages = validateConstructs([stack]).map((i) => `[${i.path}] ${i.message}`);
    expect(messages.some((m) => m.startsWith('[opt/store] sharedCredentials.reason: every relaxation of a secure default needs a reason'))).toBe(true);
  });

  it('GIVEN MinIO without a health check, or a host whose Podman cannot wait for health (4.6) THEN its setup waits for its start, no problem: its script waits for MinIO', () => {
    const { stack } = miniStack('opt');
    new Minio(stack, 'store', { healthcheck: false });
    expect(service(resolveStack(stack), 'store-setup').dependsOn).toEqual([{ service: 'store', condition: 'started' }]);
    const old = new Stack(new App(), 'old', { project: 'old' });
    new Host(old, 'h', { podmanVersion: '4.6' });
    new Network(old, 'mesh', { subnet: '10.91.0.0/24', domain: 'old.local' });
    new Minio(old, 'store');
    const r = renderStack(resolveStack(old), { outDir: '/tmp/out' });
    expect(r.issues).toEqual([]);
    const unit = r.files.get('hosts/h/quadlet/old-store-setup.container')!.content;
    expect(unit).toMatch(/^After=.*old-store\.service/m);
    expect(unit).not.toContain('Notify=healthy');
  });

  it('GIVEN a client whose access key is MinIO\'s root user THEN synth refuses it and names the fixes', () => {
    const { stack } = miniStack('opt');
    const minio = new Minio(stack, 'store', { rootUser: 'api' });
    svc(stack, 'api', { dependsOn: [minio] });
    const err = podmeshError(() => resolveStack(stack));
    const issue = err.issues.find((i) => i.path === 'opt/api')!;
    expect(issue.message).toBe('would connect to store as its own user "api", which is store\'s root user. Rename the workload or store\'s rootUser, or give store sharedCredentials: { reason: "…" } to let every client use the root user.');
  });
});
