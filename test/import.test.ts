// `podmesh import`: each compose project under test/fixtures/import is imported, the stack files are
// type-checked in one tsc run and synthesized in-process, and the synthesized compose file is
// compared with the original, both through `docker compose config --format json`, field by field.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../src/cli/command.ts';
import { runCli } from '../src/cli/run.ts';
import { podmeshProject, tempDir } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';
import { treeState } from './helpers/tree.ts';

const compose = tool('docker-compose');
const FIXTURES = join(repoRoot, 'test/fixtures/import');

/** The fixtures and how each is imported. */
const CASES: Record<string, { readonly args?: readonly string[] }> = {
  'web-db-cache': {},
  extends: {},
  profiles: {},
  'env-file': {},
  healthchecks: {},
  'static-ips': {},
  mounts: {},
  'command-entrypoint': {},
  ports: {},
  unsupported: {},
  mtls: { args: ['--mtls'] },
};

/**
 * Every note each import must print, as `<where>: <start of the message>`: what podmesh cannot
 * express, or expresses differently, and nothing else.
 */
const NOTES: Record<string, readonly string[]> = {
  'web-db-cache': ['networks.default: subnet 10.89.0.0/24 chosen'],
  extends: ['networks.default: subnet 10.89.0.0/24 chosen'],
  profiles: [
    'services.backup: not imported: none of its profiles (tools) is active',
    'networks.default: subnet 10.89.0.0/24 chosen',
    'services.mailpit: profiles ["debug"]: podmesh has no profiles',
  ],
  'env-file': ['networks.default: subnet 10.89.0.0/24 chosen', 'services.api: environment API_SECRET_KEY looks like a secret: kept as a plain value'],
  healthchecks: [
    'networks.default: subnet 10.89.0.0/24 chosen',
    'services.app: depends_on migrate: condition service_completed_successfully is not expressible in podmesh: waits for migrate to start instead',
    'services.migrate: healthcheck disabled: podmesh writes no health check',
    'services.sidecar: healthcheck disabled: podmesh writes no health check',
  ],
  'static-ips': ['services.proxy: networks back: a podmesh workload joins one network; joins front only'],
  mounts: [
    'networks.default: subnet 10.89.0.0/24 chosen',
    'services.uploader: volumes (anonymous):/scratch: anonymous volumes are not expressible in podmesh',
  ],
  'command-entrypoint': ['networks.default: subnet 10.89.0.0/24 chosen'],
  ports: [
    'networks.default: subnet 10.89.0.0/24 chosen',
    'services.metrics: ports 9100-9105:9100/tcp: a range of host ports (9100-9105) for one container port is not expressible',
    'services.sip: ports 9090/tcp: published on a random host port',
  ],
  unsupported: [
    'networks.default: subnet 10.89.0.0/24 chosen',
    'services.monitor: restart on-failure:5: a retry limit is not expressible in podmesh',
    'services.monitor: cap_add ["NET_ADMIN","NET_RAW"] is not expressible in podmesh',
    'services.monitor: devices [{"source":"/dev/net/tun","target":"/dev/net/tun","permissions":"rwm"}] is not expressible',
    'services.monitor: extra_hosts ["gateway.example=192.0.2.1"] is not expressible',
    'services.monitor: init true is not expressible',
    'services.monitor: labels {"com.example.team":"ops"} is not expressible',
    'services.monitor: logging {"driver":"json-file","options":{"max-size":"10m"}} is not expressible',
    'services.monitor: privileged true is not expressible',
    'services.monitor: stop_grace_period "30s" is not expressible',
    'services.monitor: sysctls {"net.ipv4.ip_forward":"1"} is not expressible',
    'services.monitor: ulimits {"nofile":{"soft":65536,"hard":65536}} is not expressible',
    'services.monitor: working_dir "/srv" is not expressible',
    'services.worker: hostname "worker-host": podmesh sets the hostname to the service name (worker): not imported',
    'services.worker: deploy {"replicas":3,',
    'services.worker: network_mode "bridge" is not expressible',
    'services.worker: shm_size "268435456" is not expressible',
  ],
  mtls: [
    'networks.default: subnet 10.89.0.0/24 chosen',
    'services.gateway: depends_on orders: condition service_started becomes a call, which waits for orders to be healthy',
    'services.gateway: depends_on payments: condition service_started becomes a call, which waits for payments to be healthy',
    'services.gateway: mTLS listener on container port 9443',
  ],
};

/** Services whose official image has a podmesh preset: a hint each, nothing changed. */
const HINTS: Record<string, readonly string[]> = {
  'web-db-cache': ['services.cache: image docker.io/library/redis:7-alpine is imported as a plain InfraService, not as podmesh\'s Redis preset', 'services.db: image docker.io/library/postgres:16-alpine is imported as a plain InfraService, not as podmesh\'s Postgres preset'],
  healthchecks: ['services.db: image docker.io/library/postgres:16 is imported as a plain InfraService, not as podmesh\'s Postgres preset'],
  mtls: ['services.cache: image docker.io/library/redis:7-alpine is imported as a plain InfraService, not as podmesh\'s Redis preset'],
};

// What podmesh adds to every service by design (DESIGN.md, README "Secure defaults"), with the exact values.
const ADDED_DEFAULTS: Readonly<Record<string, unknown>> = {
  security_opt: ['no-new-privileges'],
  cap_drop: ['ALL'],
  read_only: true,
  userns_mode: 'auto',
};
/** podmesh's memory and pids limits where compose set none. */
const DEFAULT_LIMITS = { mem_limit: String(1024 ** 3), pids_limit: 1024 } as const;
/** The engine's health check defaults, which the import writes out (podmesh's own differ). */
const ENGINE_HEALTH = { interval: '30s', timeout: '30s', retries: 3, start_period: '0s' } as const;
/** tmpfs podmesh mounts on every workload. */
const ADDED_TMPFS = ['/tmp'];
/** Environment an mTLS service gets from podmesh (seed contract): names only, values are podmesh's. */
const MTLS_ENV = /^(MTLS_[A-Z_]+|OPENSSL_CONF|SERVICE_DNS_NAME|SERVICE_NAME|SERVICE_SPIFFE_ID|[A-Z0-9_]+_SERVICE_URL)$/;
/** Mounts podmesh adds to an mTLS service: its certificate folder and its OpenSSL configuration. */
const MTLS_MOUNT_TARGETS = ['/etc/mtls', '/etc/podmesh/openssl.cnf'];
/** Service keys the comparison reads; anything else in the original must be among the notes. */
const COMPARED = new Set([
  'image', 'command', 'entrypoint', 'environment', 'ports', 'expose', 'volumes', 'tmpfs', 'networks', 'depends_on', 'healthcheck',
  'restart', 'container_name', 'user', 'profiles', 'mem_limit', 'pids_limit', 'cpus', 'hostname', 'read_only', 'cap_drop',
]);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** `docker compose -f FILE config --format json`, run where compose runs it from. */
function config(file: string, env: Record<string, string> = {}): Json {
  const text = execFileSync(compose!, ['-f', file, 'config', '--format', 'json'], { cwd: join(file, '..'), encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return JSON.parse(text) as Json;
}

/** Go duration text in milliseconds. */
function ms(d: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) total += Number(m[1]) * units[m[2]!]!;
  return total;
}

function captured(env: Record<string, string | undefined>, cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env, cwd, tty: false };
  return { io, out, err };
}

describe.skipIf(!compose)('podmesh import of compose projects', () => {
  const dir = tempDir('podmesh-import-');
  const project = dir.path;
  const stacks = join(project, 'stacks');
  const env = { PODMESH_DOCKER_COMPOSE: compose };
  const runs: Record<string, { code: number; out: string; err: string; source: string }> = {};
  let tsc = '';
  let synthCode = -1;
  let synthErr = '';

  beforeAll(async () => {
    podmeshProject(project);
    mkdirSync(stacks);
    // All at once: the time goes to docker compose's processes.
    await Promise.all(
      Object.entries(CASES).map(async ([name, c]) => {
        const { io, out, err } = captured(env, project);
        const code = await runCli(['import', join(FIXTURES, name, 'compose.yaml'), '--stack', name, ...(c.args ?? [])], io);
        runs[name] = { code, out: out.join(''), err: err.join(''), source: existsSync(join(stacks, `${name}.ts`)) ? readFileSync(join(stacks, `${name}.ts`), 'utf8') : '' };
      }),
    );
    // One tsc run over every generated stack file, with the repository's compiler settings. 'podmesh'
    // is its constructs entry point, which the package's src/index.ts re-exports: the same types,
    // without checking the whole engine again (half the time).
    const base = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.json'), 'utf8')) as Json;
    const compilerOptions = { ...base.compilerOptions, typeRoots: [join(repoRoot, 'node_modules/@types')], paths: { podmesh: [join(repoRoot, 'constructs/index.ts')] } };
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['stacks/*.ts'] }));
    const typecheck = new Promise<string>((done) => {
      execFile(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project, encoding: 'utf8', timeout: 120_000 }, (e, stdout) => done(e ? `${stdout}${e.message}` : ''));
    });
    // Synth in-process meanwhile (tsc runs in its own process).
    const { io, err } = captured({}, project);
    synthCode = await runCli(['synth', '--stacks', stacks, '--out', join(project, 'out'), '--state', join(project, '.podmesh')], io);
    synthErr = err.join('');
    tsc = await typecheck;
  }, 180_000);
  afterAll(() => dir.cleanup());

  it('GIVEN eleven compose projects WHEN imported THEN each stack file is written, type-checks and synthesizes without edits', () => {
    for (const [name, r] of Object.entries(runs)) expect({ name, code: r.code, err: r.code === 0 ? '' : r.err }).toEqual({ name, code: 0, err: '' });
    expect(tsc).toBe('');
    expect(synthErr).toBe('');
    expect(synthCode).toBe(0);
  });

  it.each(Object.keys(CASES))('GIVEN %s WHEN imported THEN exactly the expected notes are printed on stderr and listed at the top of the file', (name) => {
    const r = runs[name]!;
    const lines = r.err.split('\n').filter((l) => l !== '').map((l) => l.replace(/^podmesh import: /, ''));
    const header = r.source.split('\n').filter((l) => l.startsWith('//   ')).map((l) => l.slice(5));
    expect(header).toEqual(lines);
    const hints = lines.filter((l) => l.startsWith('hint: ')).map((l) => l.slice(6));
    expect(hints.map((h) => h.replace(/ preset:.*/, ' preset'))).toEqual(HINTS[name] ?? []);
    const printed = lines.filter((l) => !l.startsWith('hint: '));
    const expected = NOTES[name]!;
    expect(printed).toHaveLength(expected.length);
    for (const e of expected) expect(printed.some((p) => p.startsWith(e)), `${name}: no note starting ${e}\n${printed.join('\n')}`).toBe(true);
  });

  it.each(Object.keys(CASES))('GIVEN %s WHEN its import is synthesized THEN the compose output matches the original field by field', (name) => {
    const original = config(join(FIXTURES, name, 'compose.yaml'));
    const generated = config(join(project, 'out', name, 'hosts/local/compose.yaml'), { PODMESH_STATE_DIR: join(project, '.podmesh') });
    const notes = runs[name]!.err;
    const noted = (service: string, what: string) => notes.includes(`services.${service}: ${what}`);
    const projectName = original.name as string;
    const domain = `${projectName}.local`;

    expect(Object.keys(generated.services).sort()).toEqual(Object.keys(original.services).sort());
    // Volumes and networks by their engine names.
    const names = (m: Json | undefined) => Object.values((m ?? {}) as Record<string, Json>).map((v) => v.name as string).sort();
    expect(names(generated.volumes)).toEqual(names(original.volumes));
    const genNet = (n: string) => Object.values(generated.networks as Record<string, Json>).find((g) => g.name === n);
    for (const [key, n] of Object.entries((original.networks ?? {}) as Record<string, Json>)) {
      const g = genNet(n.name);
      if (!g) {
        expect(notes, `network ${n.name} neither in the output nor reported`).toContain(`networks.${key}: no service joins it in podmesh`);
        continue;
      }
      const o4 = (n.ipam?.config ?? [])[0];
      if (o4?.subnet) expect(g.ipam.config[0].subnet).toBe(o4.subnet);
      if (o4?.gateway) expect(g.ipam.config[0].gateway).toBe(o4.gateway);
      expect(Boolean(g.internal)).toBe(Boolean(n.internal));
    }

    for (const [svc, o] of Object.entries(original.services as Record<string, Json>)) {
      const g = (generated.services as Record<string, Json>)[svc]!;
      const at = `${name}/${svc}`;
      const mtls = g.environment?.MTLS_ENABLED === 'true';
      // Every field of the original is compared below or reported.
      for (const k of Object.keys(o)) if (!COMPARED.has(k)) expect(noted(svc, `${k} `), `${at}: ${k} neither compared nor reported`).toBe(true);

      expect(g.image, at).toBe(o.image);
      if (!noted(svc, 'command ')) expect(g.command, `${at} command`).toEqual(o.command);
      expect(g.entrypoint, `${at} entrypoint`).toEqual(o.entrypoint);
      expect(g.user, `${at} user`).toEqual(o.user);
      expect(g.container_name, at).toBe(o.container_name ?? `${projectName}-${svc}-1`);
      expect(g.hostname, at).toBe(svc);
      if (o.hostname !== undefined && o.hostname !== svc) expect(noted(svc, 'hostname ')).toBe(true);
      expect(g.restart ?? 'no', `${at} restart`).toBe(noted(svc, 'restart on-failure:') ? 'on-failure' : (o.restart ?? 'no'));
      for (const [k, v] of Object.entries(ADDED_DEFAULTS)) expect(g[k], `${at} ${k}`).toEqual(v);
      expect(g.mem_limit, `${at} mem_limit`).toBe(o.mem_limit ?? DEFAULT_LIMITS.mem_limit);
      expect(g.pids_limit, `${at} pids_limit`).toBe(o.pids_limit ?? DEFAULT_LIMITS.pids_limit);
      expect(g.cpus, `${at} cpus`).toEqual(o.cpus);

      // Environment: the original's values; only an mTLS service has more, podmesh's own.
      const oEnv = (o.environment ?? {}) as Record<string, string | null>;
      const gEnv = (g.environment ?? {}) as Record<string, string>;
      for (const [k, v] of Object.entries(oEnv)) {
        if (v === null) expect(noted(svc, `environment ${k}:`)).toBe(true);
        else expect(gEnv[k], `${at} environment ${k}`).toBe(v);
      }
      for (const k of Object.keys(gEnv)) if (!(k in oEnv)) expect(mtls && MTLS_ENV.test(k), `${at} environment ${k} added`).toBe(true);

      // Published ports as the engine sees them; the rest is reported.
      const key = (p: Json) => `${p.host_ip ?? ''}|${p.published}|${p.target}/${p.protocol}`;
      const oPorts = ((o.ports ?? []) as Json[]).filter((p) => /^\d+$/.test(p.published ?? ''));
      for (const p of (o.ports ?? []) as Json[]) if (!/^\d+$/.test(p.published ?? '')) expect(noted(svc, `ports ${p.published ?? ''}${p.published ? ':' : ''}${p.target}/${p.protocol}`), `${at} port ${key(p)}`).toBe(true);
      expect(((g.ports ?? []) as Json[]).map(key).sort(), `${at} ports`).toEqual(oPorts.map(key).sort());

      // One network: the one with the static address, else the only or first one.
      const oNets = Object.keys(o.networks ?? {}).sort();
      // A static address decides, on a network that is not internal if there is a choice.
      const rank = (n: string) => (o.networks[n]?.ipv4_address ? 0 : 2) + (original.networks[n]?.internal ? 1 : 0);
      const chosen = [...oNets].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))[0];
      // Without networks (network_mode, reported) a service joins the project's default network.
      if (chosen === undefined) expect(noted(svc, 'network_mode ')).toBe(true);
      const chosenName = chosen === undefined ? `${projectName}_default` : ((original.networks[chosen] as Json).name as string);
      const gNets = Object.keys(g.networks);
      expect(gNets.map((n) => generated.networks[n].name), at).toEqual([chosenName]);
      if (oNets.length > 1) expect(noted(svc, `networks ${oNets.filter((n) => n !== chosen).join(', ')}:`)).toBe(true);
      const oAttach = (chosen === undefined ? {} : (o.networks?.[chosen] ?? {})) as Json;
      const gAttach = g.networks[gNets[0]!] as Json;
      if (oAttach.ipv4_address) expect(gAttach.ipv4_address, `${at} ip`).toBe(oAttach.ipv4_address);
      expect([...gAttach.aliases].sort(), `${at} aliases`).toEqual([...(oAttach.aliases ?? []), `${svc}.${domain}`].sort());

      // Mounts: binds and named volumes as given; tmpfs mounts among the tmpfs; podmesh's certificate mounts for mTLS.
      const mount = (m: Json, names: Json) => `${m.type}|${m.type === 'volume' ? names[m.source]?.name : m.source}|${m.target}|${Boolean(m.read_only)}`;
      const oMounts = ((o.volumes ?? []) as Json[]).filter((m) => m.type !== 'tmpfs' && !(m.type === 'volume' && m.source === undefined));
      for (const m of (o.volumes ?? []) as Json[]) if (m.type === 'volume' && m.source === undefined) expect(noted(svc, `volumes (anonymous):${m.target}`)).toBe(true);
      const gMounts = ((g.volumes ?? []) as Json[]).filter((m) => !(mtls && MTLS_MOUNT_TARGETS.includes(m.target)));
      expect(gMounts.map((m) => mount(m, generated.volumes ?? {})).sort(), `${at} mounts`).toEqual(oMounts.map((m) => mount(m, original.volumes ?? {})).sort());
      for (const m of gMounts.filter((x) => x.type === 'bind')) expect(m.bind, `${at} bind options`).toEqual({ selinux: 'Z', create_host_path: true });
      const oTmpfs = [...((o.tmpfs ?? []) as string[]), ...((o.volumes ?? []) as Json[]).filter((m) => m.type === 'tmpfs').map((m) => m.target as string)];
      expect(((g.tmpfs ?? []) as string[]).map((t) => t.split(':')[0]).sort(), `${at} tmpfs`).toEqual([...oTmpfs, ...ADDED_TMPFS].sort());

      // Dependencies with their conditions; a changed condition is reported.
      expect(Object.keys(g.depends_on ?? {}).sort(), `${at} depends_on`).toEqual(Object.keys(o.depends_on ?? {}).sort());
      for (const [dep, d] of Object.entries((o.depends_on ?? {}) as Record<string, Json>)) {
        if (g.depends_on[dep].condition !== d.condition) expect(noted(svc, `depends_on ${dep}:`), `${at} depends_on ${dep}`).toBe(true);
      }

      // Health checks: the same test, and the original's timings or the engine's defaults.
      const oh = o.healthcheck as Json | undefined;
      if (!oh || oh.disable || oh.test?.[0] === 'NONE') {
        expect(g.healthcheck, `${at} healthcheck`).toBeUndefined();
      } else {
        expect(g.healthcheck.test, `${at} healthcheck test`).toEqual(oh.test);
        for (const f of ['interval', 'timeout', 'start_period'] as const) expect(ms(g.healthcheck[f]), `${at} healthcheck ${f}`).toBe(ms(oh[f] ?? ENGINE_HEALTH[f]));
        expect(g.healthcheck.retries, `${at} healthcheck retries`).toBe(oh.retries ?? ENGINE_HEALTH.retries);
      }

      // Nothing else is added.
      const known = new Set([...COMPARED, ...Object.keys(ADDED_DEFAULTS), ...Object.keys(DEFAULT_LIMITS), 'container_name', 'hostname']);
      for (const k of Object.keys(g)) expect(known.has(k), `${at}: podmesh added ${k}`).toBe(true);
    }
  });

  it('GIVEN the same compose files WHEN imported again with --force THEN the files are byte-identical', async () => {
    const again = await Promise.all(
      Object.entries(CASES).map(async ([name, c]) => {
        const { io } = captured(env, project);
        const code = await runCli(['import', join(FIXTURES, name, 'compose.yaml'), '--stack', name, '--force', ...(c.args ?? [])], io);
        return { name, code, source: readFileSync(join(stacks, `${name}.ts`), 'utf8') };
      }),
    );
    for (const r of again) expect(r, r.name).toEqual({ name: r.name, code: 0, source: runs[r.name]!.source });
  });

  it('GIVEN --mtls WHEN a project is imported THEN depending services become mTLS services that call each other, and without it no service does', () => {
    const withMtls = runs.mtls!.source;
    expect(withMtls).toContain("new InfraService(stack, 'cache'");
    expect(withMtls).toMatch(/const payments = new Service\(stack, 'payments'/);
    expect(withMtls).toContain('calls: [orders, payments]');
    expect(withMtls).toContain('calls: [payments]');
    expect(withMtls).not.toContain('dependsOn');
    for (const [name, r] of Object.entries(runs)) if (name !== 'mtls') expect(r.source, name).not.toMatch(/new Service\(|calls:/);
  });

  it('GIVEN an entrypoint WHEN imported THEN a small subclass replaces the image entrypoint, as the presets do', () => {
    const source = runs['command-entrypoint']!.source;
    expect(source).toContain('class InfraWithEntrypoint extends InfraService {');
    expect(source).toContain("new InfraWithEntrypoint(stack, 'shell-string', ['/bin/sh', '-c'], {");
    expect(runs.mtls!.source).toContain('class ServiceWithEntrypoint extends Service {');
    expect(runs.mtls!.source).toContain("const orders = new ServiceWithEntrypoint(stack, 'orders', ['/app/orders'], {");
  });

  it('GIVEN bad input WHEN imported THEN a clear error names the file and the fix, and nothing is written', async () => {
    const before = treeState(stacks);
    const cases: [string[], RegExp][] = [
      [['import', join(project, 'missing.yaml'), '--stack', 'missing'], /missing\.yaml\] cannot be read \(no such file\)\. Give the path of a compose file/],
      [['import', join(FIXTURES, 'web-db-cache/compose.yaml'), '--stack', 'extends'], /stacks\/extends\.ts\] exists already\. Pass --force to replace it/],
    ];
    const broken = join(project, 'broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'compose.yaml'), 'services:\n  web:\n    image: nginx\n   ports: [80\n');
    cases.push([['import', join(broken, 'compose.yaml'), '--stack', 'broken'], /broken\/compose\.yaml\] docker compose config refused it: .*yaml.*Fix the compose file/]);
    for (const [argv, message] of cases) {
      const { io, err } = captured(env, project);
      expect(await runCli(argv, io), argv.join(' ')).toBe(1);
      expect(err.join(''), argv.join(' ')).toMatch(message);
    }
    expect(treeState(stacks)).toEqual(before);
  });
});

describe('podmesh import without docker compose', () => {
  it('GIVEN no Docker Compose v2 WHEN importing THEN the error names what to install and nothing is written', async () => {
    const dir = tempDir('podmesh-import-none-');
    try {
      writeFileSync(join(dir.path, 'compose.yaml'), 'services:\n  web:\n    image: nginx\n');
      const { importCommand } = await import('../src/cli/commands/import.ts');
      const { COMMANDS, GROUPS } = await import('../src/cli/commands/index.ts');
      // Every candidate answers "not found", as on a machine with neither docker nor docker-compose.
      const none = async () => ({ exitCode: 127, stdout: '', stderr: 'not found', missing: true });
      const table = { commands: COMMANDS.map((c) => (c.name === 'import' ? importCommand(none) : c)), groups: GROUPS };
      const { io, err } = captured({}, dir.path);
      expect(await runCli(['import', 'compose.yaml', '--stack', 'web'], io, table)).toBe(1);
      expect(err.join('')).toMatch(/\[compose\.yaml\] needs Docker Compose v2 .* Install Docker Compose v2 .*podman-compose cannot stand in/);
      expect(readdirSync(dir.path)).toEqual(['compose.yaml']);
    } finally {
      dir.cleanup();
    }
  });
});
