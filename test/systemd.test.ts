// Quadlet and systemd output, judged by the real quadlet 5.4 and systemd-analyze, and compared
// with the compose file of the same host as docker compose reads it.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App, Host, Network, Postgres, Stack, synth, type Service } from '../src/index.ts';
import { loadStacks } from '../src/cli/load.ts';
import { QUADLET_FEATURES, QUADLET_KEYS, canNameBridge, compareVersions, parsePodmanVersion, type PodmanVersion } from '../src/render/quadlet/index.ts';
import { podmeshRejection } from './helpers/errors.ts';
import type { Manifest } from '../src/render/manifest.ts';
import { svc, tempDir } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';
import { dryRun, podmanRun, verifyUnits, type RunSpec } from './helpers/units.ts';

const quadlet = tool('quadlet');
const analyze = tool('systemd-analyze');
const dockerCompose = tool('docker-compose');

/** Synthesizes an app into a temporary out/ and returns its path. */
async function synthTo(app: App, dir: string, stacks?: string[], stateDir = join(dir, '.podmesh')): Promise<string> {
  const outDir = join(dir, 'out');
  await synth(app, { outDir, stateDir, ...(stacks ? { stacks } : {}) });
  return outDir;
}

/** Every `Key=` of the Quadlet resource sections of a file, with its section. */
function quadletKeys(text: string): { section: string; key: string; value: string }[] {
  const keys: { section: string; key: string; value: string }[] = [];
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (/^\w+=/.test(line) && ['Container', 'Network', 'Volume', 'Pod', 'Quadlet'].includes(section)) {
      const eq = line.indexOf('=');
      keys.push({ section, key: line.slice(0, eq), value: line.slice(eq + 1) });
    }
  }
  return keys;
}

describe.skipIf(!quadlet || !analyze)('Quadlet units of ashchan-dev', () => {
  const tmp = tempDir();
  let host = '';
  beforeAll(async () => {
    const out = await synthTo(await loadStacks(join(repoRoot, 'stacks')), tmp.path, ['ashchan-dev']);
    host = join(out, 'ashchan-dev/hosts/local');
  });
  afterAll(() => tmp.cleanup());

  it('GIVEN the host folder WHEN listed THEN one .network, a .volume per volume, a .container per service and the target', () => {
    expect(readdirSync(join(host, 'quadlet')).sort()).toEqual([
      'ashchan-auth.container',
      'ashchan-boards.container',
      'ashchan-gateway.container',
      'ashchan-media.container',
      'ashchan-mesh.network',
      'ashchan-minio-data.volume',
      'ashchan-minio-setup.container',
      'ashchan-minio.container',
      'ashchan-moderation.container',
      'ashchan-postgres-data.volume',
      'ashchan-postgres.container',
      'ashchan-redis-data.volume',
      'ashchan-redis.container',
      'ashchan-search.container',
    ]);
    expect(readdirSync(join(host, 'systemd')).sort()).toEqual([
      'ashchan-dev.target',
      'podmesh-ashchan-dev-cert-expiry.service',
      'podmesh-ashchan-dev-cert-expiry.timer',
      // OCSP (ashchan-dev has ocsp: {}): the two responders and the staple refresh.
      'podmesh-ashchan-dev-ocsp-client-ca.service',
      'podmesh-ashchan-dev-ocsp-root.service',
      'podmesh-ashchan-dev-ocsp-staple.service',
      'podmesh-ashchan-dev-ocsp-staple.timer',
      'podmesh-ashchan-dev-secrets.service',
    ]);
  });

  it('GIVEN the quadlet folder WHEN quadlet -dryrun -user THEN exit 0, no warning, and systemd-analyze verify is silent', () => {
    const gen = dryRun(quadlet!, join(host, 'quadlet'), true);
    expect(gen.status, gen.complaints.join('\n')).toBe(0);
    expect(gen.complaints).toEqual([]);
    expect(gen.services.size).toBe(14);
    const verify = verifyUnits(analyze!, gen.services, join(host, 'systemd'), true);
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
  });

  it('GIVEN manifest.json WHEN the units its Quadlet files say they affect are compared with what quadlet generates THEN the same services, installed into the user\'s Quadlet folder', () => {
    const manifest = JSON.parse(readFileSync(join(host, '../../manifest.json'), 'utf8')) as Manifest;
    const quadletFiles = manifest.files.filter((f) => f.path.startsWith('hosts/local/quadlet/'));
    const gen = dryRun(quadlet!, join(host, 'quadlet'), true);
    expect(quadletFiles.flatMap((f) => f.install!.units).sort()).toEqual([...gen.services.keys()].sort());
    for (const f of quadletFiles) {
      expect(f.install).toMatchObject({ host: 'local', path: `%h/.config/containers/systemd/${f.path.split('/').pop()}`, mode: '0644', unitFile: true, reloadable: false });
    }
  });

  it('GIVEN the auth service WHEN generated THEN the seed network, IP, DNS names, read-only /etc/mtls and health notify are in podman run', () => {
    const gen = dryRun(quadlet!, join(host, 'quadlet'), true);
    const auth = podmanRun(gen.services.get('ashchan-auth.service')!);
    expect(auth).toMatchObject({
      name: 'ashchan-auth-1',
      image: 'ghcr.io/ashchan/auth-accounts:1.0.0',
      network: 'ashchan-mesh',
      ip: '10.90.0.21',
      aliases: ['auth.ashchan.local', 'auth'],
      volumes: [
        '/home/user/.config/podmesh/ashchan-dev/config/_shared/autoload/server.php:/opt/www/config/autoload/server.php:ro,z',
        '/home/user/.config/podmesh/ashchan-dev/config/_shared/autoload/mtls_client.php:/opt/www/config/autoload/mtls_client.php:ro,z',
        '/home/user/.config/podmesh/ashchan-dev/config/_shared/autoload/mtls_policy.php:/opt/www/config/autoload/mtls_policy.php:ro,z',
        '/home/user/.config/podmesh/ashchan-dev/config/_shared/autoload/middlewares.http.php:/opt/www/config/autoload/middlewares.http.php:ro,z',
        '/home/user/.config/podmesh/ashchan-dev/config/_shared/app/Podmesh/MtlsMiddleware.php:/opt/www/app/Podmesh/MtlsMiddleware.php:ro,z',
        '/home/user/.config/podmesh/ashchan-dev/config/_shared/app/Podmesh/MtlsClientFactory.php:/opt/www/app/Podmesh/MtlsClientFactory.php:ro,z',
        '/home/user/.config/podmesh/ashchan-dev/config/_shared/app/Podmesh/Crl.php:/opt/www/app/Podmesh/Crl.php:ro,z',
        '/home/user/.config/podmesh/ashchan-dev/config/auth/Policy.php:/opt/www/app/Podmesh/Policy.php:ro,Z',
        '/home/user/.config/podmesh/ashchan-dev/config/_shared/openssl.cnf:/etc/podmesh/openssl.cnf:ro,z',
        '/home/user/.config/podmesh/ashchan-dev/pki/services/auth:/etc/mtls:ro,Z',
      ],
      envFiles: [],
      // Secrets as Podman secrets of the stack, never an env file or a bind mount.
      secrets: ['ashchan-dev-auth.postgres-password,type=mount,target=auth.postgres-password', 'ashchan-dev-auth.redis-password,type=mount,target=auth.redis-password'],
    });
    expect(auth.env).toMatchObject({ DB_USERNAME: 'auth', DB_PASSWORD_FILE: '/run/secrets/auth.postgres-password', REDIS_USERNAME: 'auth', REDIS_AUTH_FILE: '/run/secrets/auth.redis-password' });
    expect(Object.keys(auth.env).filter((k) => /PASSWORD$|AUTH$|SECRET$/.test(k))).toEqual([]);
    // postgres is awaited healthy by auth: its unit turns active only once healthy.
    expect(podmanRun(gen.services.get('ashchan-postgres.service')!).sdnotify).toBe('healthy');
    const unit = gen.services.get('ashchan-auth.service')!;
    expect(unit).toMatch(/^Requires=ashchan-postgres\.service$/m);
    expect(unit).toMatch(/^After=ashchan-postgres\.service$/m);
    expect(unit).toMatch(/^PartOf=ashchan-dev\.target$/m);
    expect(unit).toMatch(/^Restart=always$/m);
  });

  it('GIVEN the network WHEN generated THEN podman network create gets the seed subnet, gateway and bridge name', () => {
    const gen = dryRun(quadlet!, join(host, 'quadlet'), true);
    const line = gen.services.get('ashchan-mesh-network.service')!.split('\n').find((l) => l.startsWith('ExecStart='))!;
    expect(line).toContain('--subnet 10.90.0.0/24');
    expect(line).toContain('--gateway 10.90.0.1');
    expect(line).toContain('--interface-name=ashchan-mesh');
    expect(line).toMatch(/ ashchan-mesh$/);
  });

  it('GIVEN the target WHEN read THEN it wants every container and installs into the rootless default.target', () => {
    const target = readFileSync(join(host, 'systemd/ashchan-dev.target'), 'utf8');
    // Nine services and MinIO's setup.
    expect(target.match(/^Wants=/gm)).toHaveLength(10);
    expect(target).toMatch(/^WantedBy=default\.target$/m);
  });
});

describe.skipIf(!quadlet || !analyze)('a rootful host', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('GIVEN rootless: false WHEN synthesized THEN system paths, multi-user.target, and quadlet -dryrun (system) + verify pass', async () => {
    const app = new App();
    const stack = new Stack(app, 'sys', { project: 'sys' });
    new Host(stack, 'server', { rootless: false });
    new Network(stack, 'mesh', { subnet: '10.91.0.0/24', domain: 'sys.local' });
    const db = new Postgres(stack, 'db');
    svc(stack, 'api', { dependsOn: [db], ports: { http: { port: 8080, publish: true } } });
    const out = await synthTo(app, tmp.path);
    const host = join(out, 'sys/hosts/server');
    const gen = dryRun(quadlet!, join(host, 'quadlet'), false);
    expect(gen.status).toBe(0);
    expect(gen.complaints).toEqual([]);
    expect(podmanRun(gen.services.get('sys-api.service')!).volumes).toContain('/etc/podmesh/sys/pki/services/api:/etc/mtls:ro,Z,U');
    expect(podmanRun(gen.services.get('sys-api.service')!).envFiles).toEqual([]);
    expect(podmanRun(gen.services.get('sys-api.service')!).secrets).toEqual(['sys-api.db-password,type=mount,target=api.db-password']);
    // The secrets unit creates it from the host root's 0600 copy, before the containers.
    expect(readFileSync(join(host, 'systemd/podmesh-sys-secrets.service'), 'utf8')).toContain('ExecStart=/usr/bin/podman secret create --replace --label io.podmesh.stack=sys sys-api.db-password /etc/podmesh/sys/secrets/api.db-password\n');
    expect(readFileSync(join(host, 'systemd/sys.target'), 'utf8')).toMatch(/^WantedBy=multi-user\.target$/m);
    const verify = verifyUnits(analyze!, gen.services, join(host, 'systemd'), false);
    expect(verify.stderr).toBe('');
  });
});

/**
 * A stack for the version table: names, health checks, a read-only root, a user, a volume. A
 * Podman before 4.6 cannot name the bridge, so there the bridge keeps its default name.
 */
function versionStack(version: string, condition: 'healthy' | 'started' = 'started') {
  const app = new App();
  const stack = new Stack(app, 'ver', { project: 'ver' });
  new Host(stack, 'h', { podmanVersion: version });
  const bridge = canNameBridge(parsePodmanVersion(version)) ? { bridgeName: 'ver-mesh' } : {};
  new Network(stack, 'mesh', { subnet: '10.92.0.0/24', domain: 'ver.local', ...bridge });
  const db = new Postgres(stack, 'db');
  const api: Service = svc(stack, 'api', {
    dependsOn: [{ service: db, condition }],
    aliases: ['api-v1.ver.local'],
    user: 'www-data',
    readOnlyRootFilesystem: true,
    environment: { GREETING: 'it\'s 100% "$HOME"-free' },
    ports: { http: { port: 8080, publish: true } },
  });
  return { app, stack, api };
}

const VERSIONS = ['4.4', '4.9', '5.0', '5.2', '5.4'] as const;

describe.skipIf(!quadlet)('Podman version targeting', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  /** The lowest version each key, and each value form podmesh writes, needs. */
  function needs(k: { section: string; key: string; value: string }): PodmanVersion {
    const table = QUADLET_KEYS[k.section as keyof typeof QUADLET_KEYS] as Record<string, { since: PodmanVersion }>;
    let since = table[k.key]!.since;
    const raise = (v: PodmanVersion) => (since = compareVersions(v, since) > 0 ? v : since);
    if (k.key === 'Notify' && k.value === 'healthy') raise(QUADLET_FEATURES['Notify=healthy'].since);
    if ((k.key === 'User' || k.key === 'Group') && !/^\d+$/.test(k.value)) raise(QUADLET_FEATURES['User=name'].since);
    return since;
  }

  it.each(VERSIONS)('GIVEN a host on Podman %s WHEN synthesized THEN every key is one that version has, and quadlet 5.4 runs the result', async (version) => {
    const { app } = versionStack(version);
    const out = await synthTo(app, join(tmp.path, version));
    const dir = join(out, 'ver/hosts/h/quadlet');
    const host = parsePodmanVersion(version);
    for (const file of readdirSync(dir)) {
      for (const k of quadletKeys(readFileSync(join(dir, file), 'utf8'))) {
        expect(compareVersions(needs(k), host), `${file}: ${k.key}=${k.value} on ${version}`).toBeLessThanOrEqual(0);
      }
    }
    // The older forms mean the same to a newer Podman: the same container comes out.
    const gen = dryRun(quadlet!, dir, true);
    expect(gen.status).toBe(0);
    expect(gen.complaints).toEqual([]);
    const api = podmanRun(gen.services.get('ver-api.service')!);
    expect(api).toMatchObject({
      name: 'ver-api-1',
      hostname: 'api',
      ip: '10.92.0.3',
      aliases: ['api.ver.local', 'api-v1.ver.local', 'api'],
      user: 'www-data',
      readOnly: true,
      publish: ['8080:8080'],
      env: { GREETING: 'it\'s 100% "$HOME"-free', SERVICE_DNS_NAME: 'api.ver.local', SERVICE_NAME: 'api' },
    });
    expect(JSON.parse(api.healthCmd!)).toContain('https://api.ver.local:8443/health');
    expect(api.health).toEqual({ interval: '10s', timeout: '5s', retries: '5', 'start-period': '10s' });
  });

  it('GIVEN the forms chosen WHEN compared across versions THEN each version uses its best one', async () => {
    const text = async (version: string) => {
      const out = await synthTo(versionStack(version).app, join(tmp.path, `forms-${version}`));
      return {
        api: readFileSync(join(out, 'ver/hosts/h/quadlet/ver-api.container'), 'utf8'),
        net: readFileSync(join(out, 'ver/hosts/h/quadlet/mesh.network'), 'utf8'),
        secrets: readFileSync(join(out, 'ver/hosts/h/systemd/podmesh-ver-secrets.service'), 'utf8'),
      };
    };
    const v44 = await text('4.4');
    expect(v44.api).toContain('Network=mesh.network:ip=10.92.0.3,alias=api.ver.local,alias=api-v1.ver.local,alias=api\n');
    // Quadlet has no memory key: --memory is a PodmanArgs= word on every version, before the downgraded keys.
    expect(v44.api).toContain('PodmanArgs=--memory=1g --hostname=api --user=www-data --tmpfs=/opt/www/runtime --tmpfs=/run/secrets:mode=0755 --tmpfs=/tmp --userns=auto --secret=ver-api.db-password,type=mount,target=api.db-password --pids-limit=1024 "--health-cmd=[');
    expect(v44.api).not.toMatch(/^Secret=/m);
    // No `podman secret create --replace` before 4.7: the secret is removed first (a missing one is no error).
    expect(v44.secrets).toContain('ExecStart=-/usr/bin/podman secret rm ver-api.db-password\nExecStart=/bin/sh -c "exec /usr/bin/podman secret create --label io.podmesh.stack=ver ver-api.db-password \\"$$HOME/.config/podmesh/ver/secrets/api.db-password\\""\n');
    expect(v44.api).not.toMatch(/^(Tmpfs|UserNS|PidsLimit)=/m);
    expect(v44.api).toContain('NoNewPrivileges=true\nDropCapability=all\n');
    expect(v44.net).not.toContain('NetworkName=');
    expect(v44.net).not.toContain('interface-name');
    const v49 = await text('4.9');
    // From 4.7 the secret is replaced in one step, keeping its name.
    expect(v49.secrets).toContain('ExecStart=/bin/sh -c "exec /usr/bin/podman secret create --replace --label io.podmesh.stack=ver ver-api.db-password');
    expect(v49.secrets).not.toContain('secret rm');
    expect(v49.api).toContain('HostName=api\n');
    expect(v49.api).toContain('User=www-data\n');
    expect(v49.api).toContain('HealthCmd=');
    expect(v49.api).toContain('Tmpfs=/opt/www/runtime\nTmpfs=/run/secrets:mode=0755\nTmpfs=/tmp\nUser=www-data\nUserNS=auto\n');
    expect(v49.api).toContain('PidsLimit=1024\n');
    expect(v49.net).toContain('PodmanArgs=--interface-name=ver-mesh\n');
    const v52 = await text('5.2');
    expect(v52.api).toContain('Network=mesh.network\nIP=10.92.0.3\nNetworkAlias=api.ver.local\n');
  });

  it('GIVEN a healthy dependency WHEN the host runs 4.9, 5.0 THEN --sdnotify=healthy, then Notify=healthy', async () => {
    const read = async (version: string) => {
      const out = await synthTo(versionStack(version, 'healthy').app, join(tmp.path, `notify-${version}`));
      return readFileSync(join(out, 'ver/hosts/h/quadlet/ver-db.container'), 'utf8');
    };
    expect(await read('4.9')).toContain('PodmanArgs=--memory=1g --sdnotify=healthy\n');
    expect(await read('5.0')).toContain('Notify=healthy\n');
  });

  it('GIVEN a healthy dependency on Podman 4.6 WHEN synthesized THEN a clear error names the service, the key and the versions, and nothing is written', async () => {
    const { app } = versionStack('4.6', 'healthy');
    const dir = join(tmp.path, 'too-old');
    const err = await podmeshRejection(synthTo(app, dir));
    expect(err.issues).toEqual([
      {
        path: 'ver/api',
        message: expect.stringMatching(/waits for db to be healthy, but Podman 4\.6 on host h .*Notify=healthy needs v5\.0.*--sdnotify=healthy v4\.7.*Raise the host's podmanVersion or use condition: 'started'/),
      },
    ]);
    expect(() => readdirSync(join(dir, 'out'))).toThrow();
    expect(() => readdirSync(join(dir, '.podmesh'))).toThrow();
  });
});

/** Environment values the renderers must carry exactly, or refuse with a reason. */
const ENV_CASES: readonly string[] = [
  'plain',
  'two words',
  '  leading and trailing  ',
  'quotes "double" and \'single\'',
  '"quoted whole"',
  'back\\slash \\n not a newline',
  'trailing backslash\\',
  '100% %h %n %% specifiers',
  '$HOME ${HOME} $$ dollars',
  'semi;colon ; alone',
  ';',
  'unicode: ünïcødé ✓ 漢字 🚀',
  'tab\there',
  'line\nbreak',
  'carriage\rreturn',
  'nul\u0000byte',
  '',
  '=starts with equals',
  'a=b=c',
];

/** Seeded random strings from a nasty alphabet, for the same round trip. */
function randomValues(count: number, seed: number): string[] {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s);
  const alphabet = ['a', 'Z', '0', ' ', '"', "'", '\\', '%', '$', '{', '}', ';', '=', ',', ':', 'é', '漢', '🚀', '\t', '\n', '#'];
  return Array.from({ length: count }, () => Array.from({ length: 1 + (next() % 12) }, () => alphabet[next() % alphabet.length]).join(''));
}

describe.skipIf(!quadlet)('environment escaping through the whole pipeline', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('GIVEN tricky and random values WHEN synthesized THEN accepted ones reach podman unchanged and refused ones say why', async () => {
    const values = [...ENV_CASES, ...randomValues(150, 20261128)];
    let accepted = 0;
    for (const [i, value] of values.entries()) {
      const app = new App();
      const stack = new Stack(app, 'env', { project: 'env' });
      new Host(stack, 'h');
      new Network(stack, 'mesh', { subnet: '10.93.0.0/24', domain: 'env.local' });
      svc(stack, 'api', { environment: { VALUE: value } });
      const dir = join(tmp.path, String(i));
      let out: string;
      try {
        // One state folder for all: the certificates are issued once.
        out = await synthTo(app, dir, undefined, join(tmp.path, 'state'));
      } catch (e) {
        const err = await podmeshRejection(Promise.reject(e));
        // Refused: named at the service, the key, and a fix.
        expect(err.issues[0]!.path, JSON.stringify(value)).toBe('env/api');
        expect(err.issues[0]!.message).toMatch(/Environment=.*\. [A-Z].*\.$/s);
        expect(value === '' || /^\s|\s$|[\u0000-\u0008\n-\u001f]|\\$/u.test(value), `refused ${JSON.stringify(value)}: ${err.issues[0]!.message}`).toBe(true);
        continue;
      }
      accepted++;
      const gen = dryRun(quadlet!, join(out, 'env/hosts/h/quadlet'), true);
      expect(gen.complaints).toEqual([]);
      expect(podmanRun(gen.services.get('env-api.service')!).env.VALUE, JSON.stringify(value)).toBe(value);
    }
    expect(accepted).toBeGreaterThan(values.length / 2);
  });
});

/** docker compose's reading of a compose file. */
function composeConfig(file: string): any {
  const r = spawnSync(dockerCompose!, ['-f', file, 'config', '--format', 'json'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`docker compose config failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.replaceAll('$$', '$'));
}

/** Mount sources that differ by design (where certificates live) reduced to what they name. */
function mountKey(source: string, target: string, ro: boolean): string {
  const pki = /\/pki\/services\/(.+)$/.exec(source);
  // Generated config: beside the compose file, or in the host root that mirrors that folder.
  const config = /\/(config\/[^/]+\/(?:autoload\/|app\/Podmesh\/)?[^/]+)$/.exec(source);
  if (config) return `${config[1]}:${target}${ro ? ':ro' : ''}`;
  // Secret files: compose's file secrets from the state folder, Quadlet's bind mounts from the host root.
  const secret = /\/secrets\/([^/]+)$/.exec(source);
  if (secret) return `secret:${secret[1]}:${target}${ro ? ':ro' : ''}`;
  // Quadlet before 4.7 cannot name a volume: it is systemd-<name> there (README, version table).
  return `${pki ? `pki:${pki[1]}` : source.replace(/^systemd-/, '')}:${target}${ro ? ':ro' : ''}`;
}

/** The container as compose describes it, in RunSpec terms. */
function fromCompose(name: string, svcModel: any): Partial<RunSpec> & { mounts: string[]; security: Record<string, unknown> } {
  const [network] = Object.entries<any>(svcModel.networks);
  return {
    name: svcModel.container_name,
    image: svcModel.image,
    hostname: svcModel.hostname,
    ip: network![1].ipv4_address,
    // Compose adds the service name as an alias by itself.
    aliases: [...(network![1].aliases ?? []), name],
    // docker compose config writes host entries as name=ip.
    addHost: (svcModel.extra_hosts ?? []).map((e: string) => e.replace('=', ':')),
    publish: (svcModel.ports ?? []).map((p: any) => `${p.host_ip ? `${p.host_ip}:` : ''}${p.published}:${p.target}${p.protocol === 'udp' ? '/udp' : ''}`),
    env: Object.fromEntries(Object.entries<string>(svcModel.environment ?? {})),
    // File secrets: compose mounts each read-only at /run/secrets/<target, by default the name>.
    mounts: [
      ...(svcModel.volumes ?? []).map((v: any) => mountKey(v.source, v.target, Boolean(v.read_only))),
      ...(svcModel.secrets ?? []).map((x: any) => `secret:${x.source}:${String(x.target ?? x.source).startsWith('/') ? x.target : `/run/secrets/${x.target ?? x.source}`}:ro`),
    ].sort(),
    // docker compose config writes the entrypoint as a list; Podman's --entrypoint takes one word here.
    entrypoint: svcModel.entrypoint?.join(' '),
    command: svcModel.command ?? [],
    healthCmd: svcModel.healthcheck ? JSON.stringify(svcModel.healthcheck.test[0] === 'CMD' ? svcModel.healthcheck.test.slice(1) : svcModel.healthcheck.test) : undefined,
    security: {
      noNewPrivileges: (svcModel.security_opt ?? []).includes('no-new-privileges'),
      capDrop: svcModel.cap_drop ?? [],
      capAdd: svcModel.cap_add ?? [],
      readOnly: svcModel.read_only === true,
      tmpfs: svcModel.tmpfs ?? [],
      // docker compose config writes the memory limit in bytes.
      memory: svcModel.mem_limit,
      pids: svcModel.pids_limit === undefined ? undefined : String(svcModel.pids_limit),
      cpus: svcModel.cpus === undefined ? undefined : String(svcModel.cpus),
      userns: svcModel.userns_mode,
    },
  };
}

/** `1g`, `512m` … as bytes, the way docker compose config writes mem_limit. */
function bytes(size: string | undefined): string | undefined {
  if (size === undefined) return undefined;
  const m = /^(\d+)([bkmg])$/.exec(size);
  if (!m) return size;
  return String(Number(m[1]) * { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2] as 'b' | 'k' | 'm' | 'g']);
}

/** The entries of a `--hosts-file` (`address name` lines) as `name:ip`, read from the host's output folder. */
function hostsFileEntries(path: string | undefined, stack: string, hostDir: string): string[] {
  if (path === undefined) return [];
  const root = `/podmesh/${stack}/`;
  expect(path, 'a --hosts-file in the host root').toContain(root);
  return readFileSync(join(hostDir, path.slice(path.indexOf(root) + root.length)), 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [ip, name] = l.split(/\s+/) as [string, string];
      return `${name}:${ip}`;
    });
}

/**
 * The container Quadlet runs, in compose's terms: no env file; each Podman secret of the stack
 * (`<stack>-<file>`, relative target) as the file secret compose mounts at /run/secrets/<file>.
 */
function fromQuadlet(spec: RunSpec, stack: string, hostDir: string): Partial<RunSpec> & { mounts: string[]; security: Record<string, unknown> } {
  expect(spec.envFiles, spec.name).toEqual([]);
  const secrets = spec.secrets.map((x) => {
    const [name, ...opts] = x.split(',');
    const options = Object.fromEntries(opts.map((o) => o.split('=') as [string, string]));
    expect(name!.startsWith(`${stack}-`), x).toBe(true);
    expect(options.type, x).toBe('mount');
    return `secret:${name!.slice(stack.length + 1)}:/run/secrets/${options.target}:ro`;
  });
  return {
    name: spec.name,
    image: spec.image,
    hostname: spec.hostname,
    ip: spec.ip,
    aliases: spec.aliases,
    // A --hosts-file names the host root's remote-hosts, which mirrors out/<stack>/hosts/<host>/.
    addHost: [...spec.addHost, ...hostsFileEntries(spec.hostsFile, stack, hostDir)],
    publish: spec.publish,
    env: spec.env,
    mounts: [
      ...spec.volumes.map((v) => {
        const [source, target, opts] = v.split(':') as [string, string, string | undefined];
        return mountKey(source.replace(/\.volume$/, ''), target, (opts ?? '').split(',').includes('ro'));
      }),
      ...secrets,
    ].sort(),
    entrypoint: spec.entrypoint,
    command: spec.command,
    healthCmd: spec.healthCmd,
    security: {
      noNewPrivileges: spec.securityOpt.includes('no-new-privileges'),
      capDrop: spec.capDrop,
      capAdd: spec.capAdd,
      readOnly: spec.readOnly,
      tmpfs: spec.tmpfs,
      memory: bytes(spec.memory),
      pids: spec.pidsLimit,
      cpus: spec.cpus,
      userns: spec.userns,
    },
  };
}

describe.skipIf(!quadlet || !dockerCompose)('compose and Quadlet describe the same containers', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it.each([
    ['ashchan-dev (Podman 5.4 forms)', 'ashchan-dev', undefined, true],
    ['a stack on Podman 4.4 (oldest forms)', 'ver', '4.4', true],
    ['ashchan-prod (three rootful hosts, one on Podman 4.9, host entries for the other hosts)', 'ashchan-prod', undefined, false],
  ])('GIVEN %s WHEN both outputs are read by their real consumers THEN names, images, IPs, aliases, host entries, ports, mounts, env, commands, health checks and confinement match', async (_label, stackName, version, rootless) => {
    const app = version ? versionStack(version).app : await loadStacks(join(repoRoot, 'stacks'));
    const out = await synthTo(app, join(tmp.path, stackName), [stackName]);
    const hostsDir = join(out, stackName, 'hosts');
    for (const host of readdirSync(hostsDir)) {
      const compose = composeConfig(join(hostsDir, host, 'compose.yaml'));
      const gen = dryRun(quadlet!, join(hostsDir, host, 'quadlet'), rootless);
      expect(gen.complaints).toEqual([]);
      const project = compose.name as string;
      const names = Object.keys(compose.services).sort();
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) {
        const unit = gen.services.get(`${project}-${name}.service`);
        expect(unit, `${host}/${name}`).toBeDefined();
        expect(fromQuadlet(podmanRun(unit!), stackName, join(hostsDir, host)), `${host}/${name}`).toEqual(fromCompose(name, compose.services[name]));
      }
      // No container exists on one side only.
      const containers = [...gen.services.keys()].filter((s) => !/-(network|volume)\.service$/.test(s));
      expect(containers.sort()).toEqual(names.map((n) => `${project}-${n}.service`).sort());
    }
  });
});
