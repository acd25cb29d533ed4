// The real tools judge the output: a realistic .container/.network/.volume/.target/.timer set must
// pass `quadlet -dryrun` silently and its generated services `systemd-analyze verify`; and the
// version table must agree with what the real quadlet 5.4.2 accepts.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  QUADLET_KEYS,
  VALIDATED_QUADLET,
  checkUnit,
  compareVersions,
  formatPodmanVersion,
  isQuadletUnit,
  renderUnit,
  serviceName,
  unitFileName,
  type AnyUnit,
} from '../../src/render/quadlet/index.ts';
import { quadletComplaints, quadletDryRun, run } from '../helpers/quadlet.ts';
import { tool } from '../helpers/tools.ts';

const quadlet = { path: tool('quadlet') };
const analyze = { path: tool('systemd-analyze') };

/** A small ashchan-like host: network, volume, three containers, a target, a backup timer. */
const UNITS: Readonly<Record<string, AnyUnit>> = {
  'ashchan-mesh': {
    kind: 'network',
    unit: { description: 'ashchan service mesh' },
    network: {
      networkName: 'ashchan-mesh',
      driver: 'bridge',
      subnet: ['10.90.0.0/24'],
      gateway: ['10.90.0.1'],
      ipRange: ['10.90.0.128/25'],
      dns: ['10.90.0.1'],
      options: { mtu: '1420', isolate: 'true' },
      label: { 'org.podmesh.stack': 'ashchan-dev', 'org.podmesh.network': 'ashchan-mesh' },
      podmanArgs: ['--interface-name=ashchan-mesh'],
    },
  },
  pgdata: {
    kind: 'volume',
    volume: { volumeName: 'ashchan-pgdata', label: { 'org.podmesh.stack': 'ashchan-dev' } },
  },
  postgres: {
    kind: 'container',
    unit: { description: 'PostgreSQL for ashchan', partOf: ['ashchan.target'] },
    container: {
      image: 'docker.io/library/postgres:16-alpine',
      containerName: 'postgres',
      hostName: 'postgres',
      network: [{ network: 'ashchan-mesh.network', ip: '10.90.0.30', aliases: ['postgres.ashchan.local'] }],
      environment: { POSTGRES_DB: 'ashchan', POSTGRES_USER: 'ashchan', PGDATA: '/var/lib/postgresql/data/pgdata' },
      secret: ['ashchan-postgres-password,type=env,target=POSTGRES_PASSWORD'],
      volume: ['pgdata.volume:/var/lib/postgresql/data:Z'],
      healthCmd: 'pg_isready -U ashchan -d ashchan',
      healthInterval: '10s',
      healthTimeout: '5s',
      healthRetries: 5,
      healthStartPeriod: '30s',
      notify: 'healthy',
      ulimit: ['nofile=20000:20000'],
      shmSize: '256m',
      stopTimeout: 30,
      label: { 'org.podmesh.service': 'postgres' },
    },
    service: { restart: 'always', timeoutStartSec: '300' },
    install: { wantedBy: ['ashchan.target'] },
  },
  auth: {
    kind: 'container',
    unit: { description: 'ashchan auth (mTLS 8443, 100% literal)', after: ['postgres.service'], wants: ['postgres.service'], partOf: ['ashchan.target'] },
    container: {
      image: 'ghcr.io/ashchan/auth:1.4.2',
      containerName: 'auth',
      hostName: 'auth.ashchan.local',
      network: [{ network: 'ashchan-mesh.network', ip: '10.90.0.21' }],
      networkAlias: ['auth.ashchan.local'],
      addHost: ['boards.ashchan.local:10.90.0.22'],
      dns: ['10.90.0.1'],
      dnsSearch: ['ashchan.local'],
      environment: {
        APP_ENV: 'dev',
        DB_DSN: 'pgsql:host=postgres.ashchan.local;port=5432;dbname=ashchan',
        GREETING: 'Hello "world", it\'s 100% $HOME-free \\o/',
        MTLS_DIR: '/etc/mtls',
      },
      environmentFile: ['/etc/ashchan/auth.env'],
      volume: ['/etc/ashchan/mtls/auth:/etc/mtls:ro,Z'],
      mount: ['type=tmpfs,destination=/run/app,tmpfs-size=16m'],
      tmpfs: ['/tmp:rw,size=64m'],
      user: '1000',
      group: '1000',
      workingDir: '/opt/www',
      entrypoint: '/usr/local/bin/php',
      exec: ['bin/hyperf.php', 'start', '--config', '/etc/app/config dir/app.php'],
      healthCmd: 'curl -fsS --cacert /etc/mtls/ca.crt https://127.0.0.1:8443/health',
      healthInterval: '15s',
      healthOnFailure: 'kill',
      notify: 'healthy',
      readOnly: true,
      readOnlyTmpfs: true,
      noNewPrivileges: true,
      dropCapability: ['ALL'],
      addCapability: ['NET_BIND_SERVICE'],
      sysctl: ['net.ipv4.ip_unprivileged_port_start=80'],
      pidsLimit: 512,
      runInit: true,
      timezone: 'UTC',
      stopSignal: 'SIGTERM',
      label: { 'org.podmesh.service': 'auth', 'org.podmesh.note': 'mTLS on 8443 & plain on 9502' },
      annotation: { 'org.podmesh.path': 'ashchan-dev/auth' },
      autoUpdate: 'registry',
      logDriver: 'journald',
      logOpt: ['tag=auth'],
      pull: 'missing',
      podmanArgs: ['--memory', '512m', '--cpus=1.5'],
      globalArgs: ['--log-level=warn'],
    },
    quadlet: { defaultDependencies: true },
    service: { restart: 'on-failure', restartSec: '5s', timeoutStartSec: '300', timeoutStopSec: '70' },
    install: { wantedBy: ['ashchan.target'] },
  },
  gateway: {
    kind: 'container',
    unit: { description: 'ashchan gateway', after: ['auth.service'], partOf: ['ashchan.target'] },
    container: {
      image: 'ghcr.io/ashchan/gateway:1.4.2',
      containerName: 'gateway',
      network: [{ network: 'ashchan-mesh.network', ip: '10.90.0.10', aliases: ['gateway.ashchan.local'] }],
      publishPort: ['9501:9501', '127.0.0.1:8443:8443/tcp'],
      exposeHostPort: ['9501'],
      healthCmd: '["/usr/bin/curl","-fsS","http://127.0.0.1:9501/health"]',
      serviceName: 'gateway',
    },
    service: { restart: 'always' },
    install: { wantedBy: ['ashchan.target'] },
  },
  ashchan: {
    kind: 'target',
    unit: {
      description: 'ashchan (all services)',
      documentation: ['https://example.org/ashchan/TOPOLOGY.md'],
      wants: ['gateway.service', 'auth.service', 'postgres.service'],
      after: ['ashchan-mesh-network.service'],
      stopWhenUnneeded: false,
      refuseManualStop: false,
      allowIsolate: false,
    },
    install: { wantedBy: ['default.target'] },
  },
  'ashchan-backup': {
    kind: 'service',
    unit: {
      description: 'Back up ashchan (pg_dump to a dated file)',
      requires: ['postgres.service'],
      after: ['postgres.service'],
      conflicts: ['ashchan-restore.service'],
      onFailure: ['ashchan-alert.service'],
      requiresMountsFor: ['/var/backups'],
      conditionPathExists: ['/usr/bin/podman'],
      startLimitIntervalSec: '600',
      startLimitBurst: 3,
      defaultDependencies: true,
    },
    service: {
      type: 'oneshot',
      remainAfterExit: false,
      environment: { TARGET: '/var/backups/ashchan dumps', PGUSER: 'ashchan' },
      environmentFile: ['-/etc/ashchan/backup.env'],
      execCondition: [['/usr/bin/test', '-d', '/var/backups']],
      execStartPre: [['/usr/bin/mkdir', '-p', '/var/backups/ashchan dumps']],
      execStart: [['/usr/bin/sh', '-c', 'podman exec postgres pg_dump -U "$PGUSER" ashchan > "$TARGET/$(date +%F).sql"']],
      execStartPost: [['/usr/bin/find', '/var/backups/ashchan dumps', '-mtime', '+14', '-delete', ';']],
      execStopPost: [['/usr/bin/true']],
      successExitStatus: '0 2',
      workingDirectory: '/var/backups',
      killMode: 'mixed',
      killSignal: 'SIGINT',
      syslogIdentifier: 'ashchan-backup',
      standardOutput: 'journal',
      standardError: 'journal',
      limitNOFILE: '4096',
      timeoutStopSec: '5min',
    },
  },
  'ashchan-backup-timer': {
    kind: 'timer',
    unit: { description: 'Nightly ashchan backup' },
    timer: {
      onCalendar: ['*-*-* 03:00:00'],
      onBootSec: '15min',
      accuracySec: '1min',
      randomizedDelaySec: '10min',
      persistent: true,
      unit: 'ashchan-backup.service',
    },
    install: { wantedBy: ['timers.target'] },
  },
};

describe.skipIf(!quadlet.path || !analyze.path)('a realistic unit set against quadlet and systemd-analyze', () => {
  let root = '';
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'podmesh-quadlet-real-'));
    mkdirSync(join(root, 'quadlet'));
    for (const [name, unit] of Object.entries(UNITS)) {
      const dir = isQuadletUnit(unit) ? 'quadlet' : 'systemd';
      mkdirSync(join(root, dir), { recursive: true });
      writeFileSync(join(root, dir, unitFileName(name, unit.kind)), renderUnit(unit, { path: `ashchan-dev/${name}`, comments: ['Generated by podmesh.'] }));
    }
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('GIVEN the set WHEN rendered THEN every file matches its snapshot', async () => {
    for (const [name, unit] of Object.entries(UNITS)) {
      await expect(renderUnit(unit)).toMatchFileSnapshot(`./__snapshots__/realistic/${unitFileName(name, unit.kind)}`);
    }
  });

  it(`GIVEN the set WHEN checked for Podman ${formatPodmanVersion(VALIDATED_QUADLET)} THEN no version issue`, () => {
    for (const [name, unit] of Object.entries(UNITS)) {
      if (isQuadletUnit(unit)) expect(checkUnit(unit, VALIDATED_QUADLET, name)).toEqual([]);
    }
  });

  it.each([
    ['rootless', true],
    ['rootful', false],
  ])('GIVEN the %s Quadlet files WHEN quadlet -dryrun THEN exit 0, no complaint, and systemd-analyze verify passes', (_mode, user) => {
    // WHEN
    const gen = quadletDryRun(quadlet.path ?? '', join(root, 'quadlet'), user);
    // THEN: Quadlet is silent
    expect(gen.status, gen.stderr).toBe(0);
    expect(quadletComplaints(gen.stderr)).toEqual([]);
    const expected = Object.entries(UNITS)
      .filter(([, unit]) => isQuadletUnit(unit))
      .map(([name, unit]) => serviceName(name, unit))
      .sort();
    expect([...gen.services.keys()].sort()).toEqual(expected);

    // WHEN: generated services and the plain units are verified together
    const out = join(root, user ? 'verify-user' : 'verify-system');
    mkdirSync(out, { recursive: true });
    for (const [name, text] of gen.services) writeFileSync(join(out, name), text);
    for (const file of readdirSync(join(root, 'systemd'))) copyFileSync(join(root, 'systemd', file), join(out, file));
    const files = readdirSync(out).sort().map((f) => join(out, f));
    // No systemd runs as PID 1 here: `verify` only needs unit files and, for --user, a runtime dir.
    const runtime = mkdtempSync(join(tmpdir(), 'podmesh-xdg-'));
    try {
      const verify = run(analyze.path ?? '', [...(user ? ['--user'] : []), 'verify', '--generators=false', ...files], {
        XDG_RUNTIME_DIR: runtime,
      });
      // THEN: systemd reports nothing (it warns on stderr but still exits 0, so both are checked)
      expect(verify.stderr).toBe('');
      expect(verify.status).toBe(0);
    } finally {
      rmSync(runtime, { recursive: true, force: true });
    }
  });

  it('GIVEN a deliberately broken unit WHEN verified THEN systemd-analyze does complain (the check has teeth)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podmesh-verify-bad-'));
    try {
      writeFileSync(join(dir, 'bad.service'), '[Service]\nRestart=sometimes\nExecStart=/usr/bin/true "\\q"\n');
      const verify = run(analyze.path ?? '', ['verify', '--generators=false', join(dir, 'bad.service')]);
      expect(verify.stderr).toContain('Failed to parse service restart specifier');
      expect(verify.stderr).toContain('Ignoring unknown escape sequences');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!quadlet.path)(`the version table against the real quadlet (Podman ${formatPodmanVersion(VALIDATED_QUADLET)})`, () => {
  it('GIVEN one file per modelled key WHEN converted THEN quadlet rejects exactly the keys gated after its version', () => {
    // GIVEN
    const dir = mkdtempSync(join(tmpdir(), 'podmesh-quadlet-keys-'));
    const ext = { Container: 'container', Network: 'network', Volume: 'volume', Pod: 'pod', Quadlet: 'container' } as const;
    const files: { file: string; key: string; newer: boolean }[] = [];
    try {
      for (const [section, gates] of Object.entries(QUADLET_KEYS)) {
        for (const [key, gate] of Object.entries(gates)) {
          const file = `k-${section.toLowerCase()}-${key.toLowerCase()}.${ext[section as keyof typeof ext]}`;
          const text =
            section === 'Container' || section === 'Quadlet'
              ? `[Container]\nImage=registry.example/a:1\n${key === 'Image' ? '' : `[${section}]\n${key}=x\n`}`
              : `[${section}]\n${key}=x\n`;
          writeFileSync(join(dir, file), text);
          files.push({ file, key, newer: compareVersions(gate.since, VALIDATED_QUADLET) > 0 });
        }
      }
      // WHEN
      const gen = quadletDryRun(quadlet.path ?? '', dir);
      // THEN
      for (const { file, key, newer } of files) {
        const rejected = gen.stderr.split('\n').some((l) => l.includes(`unsupported key '${key}'`) && l.endsWith(`/${file}`));
        expect(rejected, `${file}: ${newer ? 'gated after' : 'gated at or before'} ${formatPodmanVersion(VALIDATED_QUADLET)}`).toBe(newer);
      }
      expect(files.filter((f) => f.newer).map((f) => f.key).sort()).toEqual(['InterfaceName', 'ReloadCmd', 'ReloadSignal']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
