// The secure container defaults, their relaxations (each with a reason), and the posture check:
// one test per control with a violating stack refused and a waived one accepted; `podmesh audit`.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Io } from '../src/cli/command.ts';
import { runCli } from '../src/cli/run.ts';
import { App, Host, Minio, Network, Postgres, Redis, Stack, type Workload } from '../src/index.ts';
import { auditStack, POSTURE_CONTROLS, postureProblems } from '../src/posture/index.ts';
import type { PostureControlId, ResolvedService, ResolvedStack } from '../src/resolve/model.ts';
import { tryResolveStack } from '../src/resolve/resolve.ts';
import { validateConstructs } from '../src/synth/index.ts';
import { synth } from '../src/synth.ts';
import { miniStack, podmeshProject, svc, tempDir, testState } from './helpers/stacks.ts';
import { repoRoot } from './helpers/tools.ts';

/** Every problem of a stack (props, resolution, posture) and the model when it resolved. */
function judge(stack: Stack): { problems: string[]; resolved?: ResolvedStack } {
  const invalid = validateConstructs([stack]);
  if (invalid.length > 0) return { problems: invalid.map((i) => `[${i.path}] ${i.message}`) };
  const { resolved, issues } = tryResolveStack(stack);
  return { problems: issues.map((i) => `[${i.path}] ${i.message}`), ...(resolved ? { resolved } : {}) };
}

function serviceOf(resolved: ResolvedStack | undefined, name: string): ResolvedService {
  const s = resolved?.services.find((x) => x.name === name);
  if (!s) throw new Error(`no service ${name}`);
  return s;
}

/** A one-service stack on a rootful (or rootless) host, the service built by `make`. */
function oneService(make: (stack: Stack) => Workload, rootless = false): Stack {
  const stack = new Stack(new App(), 'mini', { project: 'mini' });
  new Host(stack, 'local', { rootless });
  new Network(stack, 'mesh', { subnet: '10.90.0.0/24', gateway: '10.90.0.1', domain: 'mini.local' });
  make(stack);
  return stack;
}

describe('secure defaults of a stack that says nothing about security', () => {
  const { stack } = miniStack();
  new Postgres(stack, 'db');
  new Redis(stack, 'cache');
  new Minio(stack, 'files');
  svc(stack, 'api', { dependsOn: ['db', 'cache'] });
  const { problems, resolved } = judge(stack);

  it('GIVEN the presets and a service WHEN resolved THEN no problem, and every control passes or is waived by a preset with its reason', () => {
    expect(problems).toEqual([]);
    const report = auditStack(resolved!);
    expect(report.counts.fail).toBe(0);
    expect(report.rows.filter((r) => r.status === 'waived').map((r) => `${r.service}:${r.control}:${r.waivedBy}`)).toEqual(['db:capabilities:preset', 'cache:capabilities:preset']);
    // db, cache, files, api and files' setup (files-setup).
    expect(report.rows).toHaveLength(5 * POSTURE_CONTROLS.length);
  });

  it('GIVEN MinIO\'s setup container WHEN judged THEN every restricted-profile and CIS control passes, none waived', () => {
    const setup = serviceOf(resolved, 'files-setup');
    expect(setup.security).toEqual({
      noNewPrivileges: true,
      capAdd: [],
      readOnlyRootFilesystem: true,
      tmpfs: [{ path: '/run/secrets', mode: '0755' }, { path: '/tmp' }],
      memory: '1g',
      pids: 1024,
      userNamespace: 'auto',
      runAs: 'root',
      waivers: {},
    });
    const rows = auditStack(resolved!).rows.filter((r) => r.service === 'files-setup');
    expect(rows.map((r) => r.control).sort()).toEqual([...POSTURE_CONTROLS.map((c) => c.id)].sort());
    expect(rows.every((r) => r.status === 'pass'), JSON.stringify(rows)).toBe(true);
  });

  it('GIVEN PostgreSQL WHEN resolved THEN the entrypoint\'s capabilities, its tmpfs, limits, userns auto and root dropped by gosu', () => {
    expect(serviceOf(resolved, 'db').security).toEqual({
      noNewPrivileges: true,
      capAdd: ['CHOWN', 'DAC_READ_SEARCH', 'FOWNER', 'SETGID', 'SETUID'],
      readOnlyRootFilesystem: true,
      // /run/secrets: where Podman mounts its secrets in a read-only container (README, Secrets).
      tmpfs: [{ path: '/run/secrets', mode: '0755' }, { path: '/tmp' }, { path: '/var/run/postgresql' }],
      memory: '1g',
      pids: 1024,
      userNamespace: 'auto',
      runAs: 'image',
      dropsRoot: expect.stringContaining('gosu'),
      waivers: { capabilities: { by: 'preset', reason: expect.stringMatching(/^docker-entrypoint\.sh \(as root\) chmods and chowns PGDATA/) } },
    });
  });

  it('GIVEN Redis, MinIO and a Hyperf service WHEN resolved THEN Redis adds CHOWN, DAC_READ_SEARCH, SETGID, SETUID; the others none; Hyperf gets its runtime tmpfs', () => {
    expect(serviceOf(resolved, 'cache').security.capAdd).toEqual(['CHOWN', 'DAC_READ_SEARCH', 'SETGID', 'SETUID']);
    expect(serviceOf(resolved, 'files').security.capAdd).toEqual([]);
    expect(serviceOf(resolved, 'files').security.runAs).toBe('root');
    expect(serviceOf(resolved, 'api').security.capAdd).toEqual([]);
    expect(serviceOf(resolved, 'api').security.tmpfs).toEqual([{ path: '/opt/www/runtime' }, { path: '/run/secrets', mode: '0755' }, { path: '/tmp' }]);
  });

  it('GIVEN the stack WHEN synthesized THEN compose and Quadlet carry every default', async () => {
    const out = tempDir();
    try {
      await synth(stack.node.root as App, { outDir: out.path, stateDir: testState });
      const compose = parse(readFileSync(join(out.path, 'mini/hosts/local/compose.yaml'), 'utf8')) as { services: Record<string, Record<string, unknown>> };
      expect(compose.services.db).toMatchObject({
        security_opt: ['no-new-privileges'],
        cap_drop: ['ALL'],
        cap_add: ['CHOWN', 'DAC_READ_SEARCH', 'FOWNER', 'SETGID', 'SETUID'],
        read_only: true,
        tmpfs: ['/run/secrets:mode=0755', '/tmp', '/var/run/postgresql'],
        userns_mode: 'auto',
        mem_limit: '1g',
        pids_limit: 1024,
      });
      expect(compose.services.api!.cap_add).toBeUndefined();
      // Certificates are chowned to the container's root in its own user namespace (U).
      expect(compose.services.api!.volumes).toContainEqual(expect.stringMatching(/pki\/services\/api:\/etc\/mtls:ro,Z,U$/));
      const unit = readFileSync(join(out.path, 'mini/hosts/local/quadlet/mini-db.container'), 'utf8');
      expect(unit).toContain('Tmpfs=/run/secrets:mode=0755\nTmpfs=/tmp\nTmpfs=/var/run/postgresql\nUserNS=auto\n');
      expect(unit).toContain('ReadOnly=true\nNoNewPrivileges=true\nDropCapability=all\nAddCapability=CHOWN\nAddCapability=DAC_READ_SEARCH\nAddCapability=FOWNER\nAddCapability=SETGID\nAddCapability=SETUID\nPidsLimit=1024\n');
      expect(unit).toMatch(/^PodmanArgs=--memory=1g( |$)/m);
    } finally {
      out.cleanup();
    }
  });

  it('GIVEN a rootless host WHEN resolved THEN no userns key (rootless Podman maps already) and no U on mounts', () => {
    const s = oneService((st) => svc(st, 'api'), true);
    const { problems: p, resolved: r } = judge(s);
    expect(p).toEqual([]);
    expect(serviceOf(r, 'api').security.userNamespace).toBe('rootless');
  });
});

describe('resources and tmpfs props', () => {
  it('GIVEN memory, cpus, pids and tmpfs with size and mode WHEN resolved THEN they replace the defaults, and tmpfs merge by path', () => {
    const s = oneService((st) => svc(st, 'api', { resources: { memory: '512m', cpus: 1.5, pids: 256 }, tmpfs: ['/var/cache/app', { path: '/tmp', size: '64m', mode: '1777' }] }));
    const { problems, resolved } = judge(s);
    expect(problems).toEqual([]);
    const sec = serviceOf(resolved, 'api').security;
    expect(sec).toMatchObject({ memory: '512m', cpus: 1.5, pids: 256 });
    expect(sec.tmpfs).toEqual([{ path: '/opt/www/runtime' }, { path: '/tmp', size: '64m', mode: '1777' }, { path: '/var/cache/app' }]);
  });

  it.each([
    [{ resources: { memory: '1.5g' } }, 'resources.memory: "1.5g" is not a memory size: a number and b, k, m or g, e.g. "512m"'],
    [{ resources: { pids: 4 } }, 'resources.pids: must be at least 16 processes'],
    [{ resources: { cpus: 0 } }, 'resources.cpus: must be more than 0 CPUs'],
    [{ tmpfs: ['tmp'] }, 'tmpfs[0]: must be an absolute path without ":", "," or spaces'],
    [{ tmpfs: [{ path: '/tmp', mode: 'rwx' }] }, 'tmpfs[0].mode: "rwx" is not an octal mode like "1777"'],
  ])('GIVEN %j WHEN checked THEN the problem names the prop and the fix', (props, message) => {
    const s = oneService((st) => svc(st, 'api', props as Partial<Parameters<typeof svc>[2]>));
    const { problems } = judge(s);
    expect(problems).toEqual([expect.stringContaining(`[mini/api] ${message}`)]);
  });
});

describe('relaxations need a reason', () => {
  it.each([
    ['allowPrivilegeEscalation', { allowPrivilegeEscalation: {} }, 'security.allowPrivilegeEscalation.reason'],
    ['allowPrivilegeEscalation (empty)', { allowPrivilegeEscalation: { reason: '  ' } }, 'security.allowPrivilegeEscalation.reason'],
    ['capabilities', { capabilities: { add: ['NET_ADMIN'] } }, 'security.capabilities.reason'],
    ['writableRootFilesystem', { writableRootFilesystem: true }, 'security.writableRootFilesystem'],
    ['hostUserNamespace', { hostUserNamespace: {} }, 'security.hostUserNamespace.reason'],
    ['runAsRoot', { runAsRoot: {} }, 'security.runAsRoot.reason'],
    ['unlimitedMemory', { unlimitedMemory: {} }, 'security.unlimitedMemory.reason'],
    ['unlimitedPids', { unlimitedPids: {} }, 'security.unlimitedPids.reason'],
  ])('GIVEN %s without a reason WHEN checked THEN refused at the construct path, saying a reason is needed', (_name, security, field) => {
    const s = oneService((st) => svc(st, 'api', { security } as never));
    const { problems } = judge(s);
    expect(problems).toEqual([expect.stringMatching(new RegExp(`^\\[mini/api\\] ${field.replaceAll('.', '\\.')}: .*needs a reason`))]);
  });

  it('GIVEN readOnlyRootFilesystem: false alone WHEN resolved THEN refused: the writable root is security.writableRootFilesystem with a reason', () => {
    const { problems } = judge(oneService((st) => svc(st, 'api', { readOnlyRootFilesystem: false })));
    expect(problems).toEqual(['[mini/api] readOnlyRootFilesystem: false relaxes a secure default without a reason. Remove it, or write security: { writableRootFilesystem: { reason: "…" } } saying why the image must write outside its volumes and tmpfs.']);
  });

  it('GIVEN an unknown capability WHEN checked THEN the problem suggests the name meant', () => {
    const { problems } = judge(oneService((st) => svc(st, 'api', { security: { capabilities: { add: ['NET_BIND_SERVIC' as never], reason: 'port 443' } } })));
    expect(problems).toEqual([expect.stringMatching(/^\[mini\/api\] security\.capabilities\.add\[0\]: must be one of .*Did you mean "NET_BIND_SERVICE"\?$/)]);
  });

  it('GIVEN hostUserNamespace on a rootless host WHEN resolved THEN refused: it has no effect there', () => {
    const { problems } = judge(oneService((st) => svc(st, 'api', { security: { hostUserNamespace: { reason: 'x' } } }), true));
    expect(problems).toEqual([expect.stringContaining('[mini/api] security.hostUserNamespace has no effect on rootless host local')]);
  });
});

/**
 * One row per control: the props that relax it with a reason (accepted, `waived`), and the
 * resolved container with that waiver taken away (the check refuses it, naming the fix).
 */
const RULES: ReadonlyArray<readonly [PostureControlId, Partial<Parameters<typeof svc>[2]>, RegExp]> = [
  ['no-new-privileges', { security: { allowPrivilegeEscalation: { reason: 'the image runs sudo at start' } } }, /Fix: remove security\.allowPrivilegeEscalation, or write security\.allowPrivilegeEscalation: \{ reason: "…" \}/],
  ['capabilities', { security: { capabilities: { add: ['NET_ADMIN'], reason: 'manages its own routes' } } }, /ALL dropped, NET_ADMIN added \(beyond NET_BIND_SERVICE: NET_ADMIN\)\. Fix: remove the added capabilities/],
  ['read-only-rootfs', { security: { writableRootFilesystem: { reason: 'writes its cache below /var/lib/app' } } }, /the root filesystem is writable\. Fix: remove security\.writableRootFilesystem/],
  ['memory-limit', { security: { unlimitedMemory: { reason: 'sized by the host' } } }, /no memory limit\. Fix: remove security\.unlimitedMemory/],
  ['pids-limit', { security: { unlimitedPids: { reason: 'forks per request' } } }, /no pids limit\. Fix: remove security\.unlimitedPids/],
  ['user-namespace', { security: { hostUserNamespace: { reason: 'needs host uids on a bind mount' }, runAsRoot: { reason: 'same' } } }, /container root is host root\. Fix: remove security\.hostUserNamespace/],
];

describe('posture check: one test per control', () => {
  it.each(RULES)('GIVEN %s relaxed with a reason WHEN synthesized THEN accepted and the audit says waived with the reason; without the waiver THEN refused with the fix', (control, props, fix) => {
    // GIVEN / WHEN
    const { problems, resolved } = judge(oneService((st) => svc(st, 'api', props)));
    // THEN accepted, waived
    expect(problems).toEqual([]);
    const row = auditStack(resolved!).rows.find((r) => r.service === 'api' && r.control === control)!;
    const given = Object.values((props as { security: Record<string, { reason: string; add?: string[] }> }).security)[0]!;
    const reason = given.add ? `${given.add.join(', ')}: ${given.reason}` : given.reason;
    expect(row).toMatchObject({ status: 'waived', reason, waivedBy: 'stack' });
    // WHEN the same container has no waiver for the control THEN the check refuses it
    const api = serviceOf(resolved, 'api');
    const { [control]: _, ...rest } = api.security.waivers;
    const unwaived: ResolvedStack = { ...resolved!, services: resolved!.services.map((s) => (s === api ? { ...api, security: { ...api.security, waivers: rest } } : s)) };
    const found = postureProblems(unwaived);
    expect(found).toHaveLength(1);
    expect(found[0]!.path).toBe('mini/api');
    expect(found[0]!.message).toMatch(fix);
  });

  it('GIVEN run-as-non-root: a container in the host user namespace running as root WHEN synthesized without runAsRoot THEN refused with the fix; with it, waived', () => {
    const violating = judge(oneService((st) => svc(st, 'api', { security: { hostUserNamespace: { reason: 'needs host uids' } } })));
    expect(violating.problems).toEqual([
      '[mini/api] posture: main process does not run as host root (PSS restricted: Running as Non-root) fails: runs as uid 0, which is host root (no user namespace). Fix: set user to a non-root uid the image supports, or remove security.hostUserNamespace, or write security.runAsRoot: { reason: "…" } saying why it cannot hold.',
    ]);
    const waived = judge(oneService((st) => svc(st, 'api', { security: { hostUserNamespace: { reason: 'needs host uids' }, runAsRoot: { reason: 'binds port 80 as root' } } })));
    expect(waived.problems).toEqual([]);
    expect(auditStack(waived.resolved!).rows.find((r) => r.control === 'run-as-non-root')).toMatchObject({ status: 'waived', reason: 'binds port 80 as root' });
    // A non-root user passes without a waiver.
    const user = judge(oneService((st) => svc(st, 'api', { user: '1000:1000', security: { hostUserNamespace: { reason: 'needs host uids' } } })));
    expect(user.problems).toEqual([]);
    expect(auditStack(user.resolved!).rows.find((r) => r.control === 'run-as-non-root')).toMatchObject({ status: 'pass', detail: 'runs as 1000:1000' });
  });

  it('GIVEN NET_BIND_SERVICE, the one capability the restricted profile allows WHEN added THEN the control passes (the reason is still recorded)', () => {
    const { problems, resolved } = judge(oneService((st) => svc(st, 'api', { security: { capabilities: { add: ['NET_BIND_SERVICE'], reason: 'serves port 443' } } })));
    expect(problems).toEqual([]);
    expect(auditStack(resolved!).rows.find((r) => r.control === 'capabilities')).toMatchObject({ status: 'pass', reason: 'NET_BIND_SERVICE: serves port 443' });
  });

  it('GIVEN PostgreSQL with a capability added by the stack WHEN audited THEN the waiver keeps the preset\'s reason and the stack\'s, each with its capabilities', () => {
    const { problems, resolved } = judge(oneService((st) => new Postgres(st, 'db', { security: { capabilities: { add: ['NET_BIND_SERVICE'], reason: 'listens on 443 for a proxy' } } })));
    expect(problems).toEqual([]);
    expect(serviceOf(resolved, 'db').security.capAdd).toEqual(['CHOWN', 'DAC_READ_SEARCH', 'FOWNER', 'NET_BIND_SERVICE', 'SETGID', 'SETUID']);
    expect(auditStack(resolved!).rows.find((r) => r.control === 'capabilities')).toMatchObject({
      status: 'waived',
      waivedBy: 'stack',
      reason: expect.stringMatching(/^CHOWN, DAC_READ_SEARCH, FOWNER, SETGID, SETUID: docker-entrypoint\.sh .*; NET_BIND_SERVICE: listens on 443 for a proxy$/),
    });
  });

  it('GIVEN privileged and host namespaces WHEN judged THEN they pass: podmesh has no prop for either', () => {
    const { resolved } = judge(oneService((st) => svc(st, 'api')));
    const rows = auditStack(resolved!).rows.filter((r) => r.control === 'privileged' || r.control === 'host-namespaces');
    expect(rows.map((r) => r.status)).toEqual(['pass', 'pass']);
  });

  it('GIVEN a relaxation WHEN TOPOLOGY.md is rendered THEN it lists the control, who relaxed it and why', async () => {
    const { resolved } = judge(oneService((st) => svc(st, 'api', RULES[2]![1])));
    const { topologyMarkdown } = await import('../src/render/topology.ts');
    const md = topologyMarkdown(resolved!);
    expect(md).toContain('| api | read-only-rootfs | stack | writes its cache below /var/lib/app |');
    expect(md).toContain('| api | yes | ALL dropped; added: none | writable | memory 1g, pids 1024 | auto | root |');
  });
});

describe('podmesh audit', () => {
  const captured = () => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env: {}, cwd: repoRoot, tty: false };
    return { io, out, err };
  };
  const dir = tempDir('podmesh-audit-');
  afterAll(() => dir.cleanup());

  it('GIVEN ashchan-dev WHEN audited as a table THEN one row per control and service, the preset waivers with their reasons, exit 0', async () => {
    const { io, out } = captured();
    const code = await runCli(['audit', '--stack', 'ashchan-dev', '--stacks', join(repoRoot, 'stacks'), '--out', join(repoRoot, 'out')], io);
    expect(code).toBe(0);
    const text = out.join('');
    expect(text).toMatch(/^ashchan-dev: 88 pass, 2 waived, 0 fail\nCONTROL {12}SERVICE {6}STATUS {2}WAIVER REASON \/ FINDING\n/);
    expect(text).toMatch(/^capabilities +postgres +waived +\(preset\) docker-entrypoint\.sh \(as root\) chmods and chowns PGDATA/m);
    expect(text).toMatch(/^user-namespace +gateway +pass +rootless Podman: container uids map to the host user's subordinate ids$/m);
    // Nine services and MinIO's setup.
    expect(text.trim().split('\n')).toHaveLength(2 + 10 * POSTURE_CONTROLS.length);
  });

  it('GIVEN ashchan-prod WHEN audited as JSON THEN the rows parse, with status, detail and the waiver reason', async () => {
    const { io, out } = captured();
    const code = await runCli(['audit', '--stack', 'ashchan-prod', '--format', 'json', '--stacks', join(repoRoot, 'stacks'), '--out', join(repoRoot, 'out')], io);
    expect(code).toBe(0);
    const json = JSON.parse(out.join('')) as { stacks: Array<{ stack: string; counts: Record<string, number>; rows: Array<Record<string, string>> }> };
    expect(json.stacks.map((s) => s.stack)).toEqual(['ashchan-prod']);
    expect(json.stacks[0]!.counts).toEqual({ pass: 88, waived: 2, fail: 0 });
    expect(json.stacks[0]!.rows).toContainEqual({
      control: 'capabilities', service: 'redis', host: 'data', status: 'waived',
      detail: 'ALL dropped, CHOWN, DAC_READ_SEARCH, SETGID, SETUID added (beyond NET_BIND_SERVICE: CHOWN, DAC_READ_SEARCH, SETGID, SETUID)',
      reason: 'docker-entrypoint.sh (as root) chowns /data for the redis user, then switches to it with gosu', waivedBy: 'preset',
    });
    expect(json.stacks[0]!.rows).toContainEqual(expect.objectContaining({ control: 'user-namespace', service: 'gateway', host: 'edge', status: 'pass', detail: 'userns auto: a range of unprivileged host ids of its own' }));
  });

  it('GIVEN a stack whose container runs as host root WHEN audited THEN the table shows fail and the exit code is 1', async () => {
    const stacks = join(dir.path, 'stacks');
    mkdirSync(stacks, { recursive: true });
    podmeshProject(dir.path);
    writeFileSync(
      join(stacks, 'bad.ts'),
      [
        `import { type App, Host, Network, Service, Stack } from 'podmesh';`,
        'export default (app: App): void => {',
        "  const stack = new Stack(app, 'bad', { project: 'bad' });",
        "  new Host(stack, 'h');",
        "  new Network(stack, 'mesh', { subnet: '10.93.0.0/24', domain: 'bad.local' });",
        "  new Service(stack, 'api', { image: 'localhost/api:1', security: { hostUserNamespace: { reason: 'host uids on a bind mount' } } });",
        '};',
        '',
      ].join('\n'),
    );
    const { io, out } = captured();
    const code = await runCli(['audit', '--stacks', stacks, '--out', join(dir.path, 'out')], io);
    expect(code).toBe(1);
    expect(out.join('')).toMatch(/^bad: 7 pass, 1 waived, 1 fail$/m);
    expect(out.join('')).toMatch(/^run-as-non-root +api +fail +runs as uid 0, which is host root \(no user namespace\)$/m);
    expect(out.join('')).toMatch(/^user-namespace +api +waived +host uids on a bind mount$/m);
  });

  it('GIVEN a bad --format WHEN parsed THEN a usage error', async () => {
    const { io, err } = captured();
    const code = await runCli(['audit', '--format', 'yaml'], io);
    expect(code).toBe(2);
    expect(err.join('')).toContain('--format');
  });
});
