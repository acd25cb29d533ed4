// The import's pure parts, without docker compose: compose config JSON in, stack file text and notes out.
import { describe, expect, it } from 'vitest';
import { PodmeshError } from '../constructs/core/errors.ts';
import { findCompose, importComposeCommand, type ComposeQuery } from '../src/cli/commands/import.ts';
import { UsageError } from '../src/cli/options.ts';
import { duration, importCompose, type ImportOptions } from '../src/import/convert.ts';
import { Obj, Ref, identifier, print, quote } from '../src/import/source.ts';

const OPTIONS: ImportOptions = { stack: 'demo', file: 'compose.yaml', mtls: false };

/** A project as compose config prints it, with one service unless told otherwise. */
function project(services: Record<string, unknown>, rest: Record<string, unknown> = {}) {
  return { name: 'demo', networks: { default: { name: 'demo_default', ipam: {} } }, services, ...rest };
}

const notesOf = (r: { notes: readonly { where: string; message: string }[] }) => r.notes.map((n) => `${n.where}: ${n.message}`);

describe('duration (Go duration text to podmesh durations)', () => {
  it.each([
    ['30s', '30s'],
    ['1m0s', '1m'],
    ['1m30s', '1m30s'],
    ['1.5s', '1500ms'],
    ['500ms', '500ms'],
    ['2h0m0s', '2h'],
    ['0s', '0s'],
    ['1h2m3s', '1h2m3s'],
  ])('%s is %s', (go, ours) => expect(duration(go)).toBe(ours));

  it.each(['', 'soon', '10', '1.0000001ns'])('%j is not a duration podmesh can write', (go) => expect(duration(go)).toBeUndefined());
});

describe('the stack file writer', () => {
  it('quotes strings in single quotes with the escapes TypeScript reads back', () => {
    expect(quote("it's a \\ path\nnext")).toBe("'it\\'s a \\\\ path\\nnext'");
    expect(quote('\u0001')).toBe("'\\u0001'");
  });

  it('writes short values on one line and breaks long ones, one entry per line', () => {
    expect(print(new Obj([['image', 'nginx:1'], ['ports', new Obj([['http', 80]])], ['dependsOn', [new Ref('db')]]]), 2)).toBe("{ image: 'nginx:1', ports: { http: 80 }, dependsOn: [db] }");
    const long = new Obj([['command', ['x'.repeat(60), 'y'.repeat(60)]], ['ok', true]]);
    expect(print(long, 2)).toBe(`{\n    command: [\n      '${'x'.repeat(60)}',\n      '${'y'.repeat(60)}',\n    ],\n    ok: true,\n  }`);
    expect(print(new Obj([['tcp-80', 80], ['A_B', 'c']]), 0)).toBe("{ 'tcp-80': 80, A_B: 'c' }");
  });

  it.each([
    ['web', '', 'web'],
    ['my-web_app', '', 'myWebApp'],
    ['default', 'Net', 'defaultNet'],
    ['app', '', 'appService'],
    ['new', '', 'newService'],
    ['9lives', '', '_9lives'],
  ])('names %s (suffix %j) %s', (name, suffix, id) => expect(identifier(name, suffix, new Set())).toBe(id));

  it('never gives the same identifier twice', () => {
    const taken = new Set<string>();
    expect([identifier('a-b', '', taken), identifier('a_b', '', taken), identifier('aB', '', taken)]).toEqual(['aB', 'aB2', 'aB3']);
  });
});

describe('importCompose', () => {
  it('GIVEN the same project in another key order WHEN imported THEN the bytes are the same', () => {
    const a = project({ web: { image: 'nginx:1', environment: { B: '2', A: '1' } }, db: { image: 'postgres:16' } });
    const b = project({ db: { image: 'postgres:16' }, web: { environment: { A: '1', B: '2' }, image: 'nginx:1' } });
    expect(importCompose(b, OPTIONS).source).toBe(importCompose(a, OPTIONS).source);
  });

  it('GIVEN a service name that is not a DNS label WHEN imported THEN it is renamed, references follow and the rename is reported', () => {
    const r = importCompose(project({ Web_App: { image: 'nginx:1', depends_on: { db: { condition: 'service_started' } } }, db: { image: 'postgres:16' } }), OPTIONS);
    expect(r.source).toContain("new InfraService(stack, 'web-app', {");
    expect(r.source).toContain("dependsOn: [{ service: db, condition: 'started' }]");
    expect(notesOf(r)).toContain('services.Web_App: renamed to web-app: podmesh service names are DNS labels (lower-case letters, digits, inner hyphens)');
  });

  it('GIVEN a service name with dots WHEN imported THEN it is renamed and keeps its compose name as an alias', () => {
    const r = importCompose(project({ 'api.v1': { image: 'nginx:1' } }), OPTIONS);
    expect(r.source).toContain("new InfraService(stack, 'api-v1', { image: 'nginx:1', aliases: ['api.v1'], restart: 'no' });");
    expect(notesOf(r)).toContain('services.api.v1: renamed to api-v1: podmesh service names are DNS labels (lower-case letters, digits, inner hyphens); api.v1 stays an alias');
  });

  it('GIVEN values a Quadlet unit cannot carry WHEN imported THEN they are left out and reported, never written', () => {
    const r = importCompose(
      project({
        job: {
          image: 'alpine:3',
          command: ['sh', '-c', 'echo one\necho two'],
          environment: { MOTD: 'hello\nworld', FROM_SHELL: null, 'bad-name': 'x', API_TOKEN: 't0ken' },
          healthcheck: { test: ['CMD-SHELL', 'a\nb'] },
        },
      }),
      OPTIONS,
    );
    // The notes at the top name them; the code below holds none of them.
    const code = r.source.split('\n').filter((l) => !l.startsWith('//')).join('\n');
    expect(code).not.toMatch(/echo one|MOTD|FROM_SHELL|bad-name|a\\nb/);
    expect(r.source).toContain("environment: { API_TOKEN: 't0ken' }");
    expect(notesOf(r)).toEqual([
      expect.stringMatching(/^networks\.default: subnet 10\.89\.0\.0\/24 chosen/),
      'services.job: environment API_TOKEN looks like a secret: kept as a plain value, as in the compose project (it is written to out/); podmesh generates secrets only for Postgres, Redis and Minio',
      'services.job: environment FROM_SHELL: no value (compose passes the value from its own environment): not imported, give it a value in the stack',
      "services.job: environment MOTD: the value holds a line break or another control character, which podmesh's Quadlet units cannot carry: not imported (use a mounted file)",
      'services.job: environment bad-name: not a variable name podmesh accepts (letters, digits, "_"): not imported',
      expect.stringMatching(/^services\.job: command \["sh","-c","echo one\\necho two"\] holds a line break/),
      expect.stringMatching(/^services\.job: healthcheck test \["CMD-SHELL","a\\nb"\] holds a line break/),
    ]);
  });

  it('GIVEN top-level secrets and configs, networks no service keeps and a bad alias WHEN imported THEN each is reported', () => {
    const r = importCompose(
      {
        name: 'demo',
        networks: {
          a: { name: 'demo_a', ipam: { config: [{ subnet: '10.89.0.0/24' }] } },
          b: { name: 'demo_b', driver: 'macvlan', ipam: {} },
        },
        services: { web: { image: 'nginx:1', networks: { a: { aliases: ['Not_DNS', 'www.demo.test'] }, b: null } } },
        secrets: { key: { file: '/run/key' } },
        configs: { site: { file: '/etc/site.conf' } },
      },
      OPTIONS,
    );
    expect(notesOf(r)).toEqual([
      '(project): top-level configs {"site":{"file":"/etc/site.conf"}} is not expressible in podmesh: not imported',
      '(project): top-level secrets {"key":{"file":"/run/key"}} is not expressible in podmesh: not imported',
      'networks.b: subnet 10.89.1.0/24 chosen: compose leaves it to the engine, podmesh needs one (change it in the stack if it clashes)',
      'networks.b: driver "macvlan": podmesh networks are bridges: not imported',
      'services.web: networks b: a podmesh workload joins one network; joins a only',
      'services.web: networks.a.aliases "Not_DNS" is not a DNS name: not imported',
      'networks.b: no service joins it in podmesh (each service joins one network): podmesh leaves it out of the output',
    ]);
    expect(r.source).toContain("aliases: ['www.demo.test']");
  });

  it('GIVEN a network name longer than an interface name WHEN imported THEN the bridge gets a shortened, unique name', () => {
    const r = importCompose(
      { name: 'longproject', networks: { frontend: { name: 'longproject_frontend' }, frontend2: { name: 'longproject_frontend2' } }, services: { web: { image: 'nginx:1', networks: { frontend: null } }, api: { image: 'nginx:1', networks: { frontend2: null } } } },
      OPTIONS,
    );
    expect(r.source).toContain("bridgeName: 'longproject_fro'");
    expect(r.source).toContain("bridgeName: 'longproject_fr2'");
  });

  it('GIVEN --mtls and a service already on 8443 WHEN imported THEN its listener moves to a free port and it calls its dependencies', () => {
    const r = importCompose(project({ web: { image: 'nginx:1', ports: [{ target: 8443, published: '443', protocol: 'tcp' }], depends_on: { api: { condition: 'service_started' } } }, api: { image: 'nginx:1' } }), { ...OPTIONS, mtls: true });
    expect(r.source).toContain('mtls: { port: 9443 }');
    expect(r.source).toContain('calls: [api]');
    expect(r.source).toContain('hyperf: false');
    expect(r.source).not.toContain('dependsOn');
  });

  it('GIVEN tmpfs with options, a restart limit and a completed-successfully dependency WHEN imported THEN the nearest podmesh form is written and the change reported', () => {
    const r = importCompose(
      project({
        job: { image: 'alpine:3', restart: 'on-failure:3', tmpfs: ['/run:size=64m', '/cache'], depends_on: { init: { condition: 'service_completed_successfully', required: false } } },
        init: { image: 'alpine:3' },
      }),
      OPTIONS,
    );
    expect(r.source).toContain("tmpfs: ['/run', '/cache']");
    expect(r.source).toContain("restart: 'on-failure'");
    expect(r.source).toContain("dependsOn: [{ service: init, condition: 'started' }]");
    expect(notesOf(r)).toEqual(expect.arrayContaining([
      'services.job: depends_on init: condition service_completed_successfully is not expressible in podmesh: waits for init to start instead',
      'services.job: depends_on init: required: false is not expressible in podmesh: the dependency is required',
      'services.job: tmpfs /run:size=64m: options size=64m are not expressible as given: mounted without them',
      'services.job: restart on-failure:3: a retry limit is not expressible in podmesh: on-failure without a limit',
    ]));
  });

  it('GIVEN a literal $ (compose config writes $$) WHEN imported THEN the stack holds the value the container sees', () => {
    const r = importCompose(project({ job: { image: 'alpine:3', command: ['echo', '$$HOME'], environment: { PRICE: '$$5' } } }), OPTIONS);
    expect(r.source).toContain("command: ['echo', '$HOME']");
    expect(r.source).toContain("PRICE: '$5'");
  });

  it('GIVEN services without a usable image WHEN imported THEN one error names each with the fix, and no source is produced', () => {
    let error: unknown;
    try {
      importCompose(project({ built: { build: { context: '.' } }, upper: { image: 'Docker.io/Library/NGINX' } }), OPTIONS);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PodmeshError);
    expect((error as PodmeshError).issues).toEqual([
      { path: 'compose.yaml services.built', message: 'has no image (only build). podmesh runs images: build and push it, then set image: in the compose file.' },
      { path: 'compose.yaml services.upper', message: expect.stringMatching(/^image "Docker\.io\/Library\/NGINX" is not an image reference podmesh accepts .* Fix it in the compose file\.$/) },
    ]);
  });

  it('GIVEN JSON that is not compose config output WHEN imported THEN the error says what was expected', () => {
    expect(() => importCompose({ services: [] }, OPTIONS)).toThrow(/\[compose\.yaml\] is not what `docker compose config --format json` prints: name: .*Docker Compose v2\?/);
  });
});

describe('podmesh import: finding docker compose and reading the command line', () => {
  const answers = (table: Record<string, string>): ComposeQuery => async (argv) => {
    const out = table[argv.slice(0, -2).join(' ')];
    return out === undefined ? { exitCode: 127, stdout: '', stderr: 'not found', missing: true } : { exitCode: 0, stdout: out, stderr: '' };
  };

  it.each([
    [{ PODMESH_DOCKER_COMPOSE: '/opt/dc' }, { '/opt/dc': '2.26.1\n', 'docker compose': '2.29.0\n' }, ['/opt/dc']],
    [{}, { 'docker compose': '2.29.0\n', 'docker-compose': '2.26.1\n' }, ['docker', 'compose']],
    [{}, { 'docker-compose': 'v2.26.1\n' }, ['docker-compose']],
    [{}, { 'docker-compose': '1.29.2\n' }, undefined],
    [{}, {}, undefined],
  ])('env %j and answers %j find %j', async (env, table, found) => {
    expect(await findCompose(env, '/', answers(table))).toEqual(found);
  });

  it.each([
    [['--stack', 'web'], /one compose file/],
    [['a.yaml', 'b.yaml', '--stack', 'web'], /one compose file/],
    [['compose.yaml'], /one --stack NAME/],
    [['compose.yaml', '--stack', 'Web_1'], /--stack "Web_1" must be a lower-case DNS label/],
    [['compose.yaml', '--stack', 'web', '--domain', 'not a domain'], /--domain "not a domain" must be a DNS name/],
    [['compose.yaml', '--stack', 'web', '--bogus'], /Unknown option '--bogus'/],
  ])('%j is a usage error', (argv, message) => {
    expect(() => importComposeCommand.parse(argv)).toThrow(UsageError);
    expect(() => importComposeCommand.parse(argv)).toThrow(message);
  });

  it('reads the file, the stack and the options', () => {
    expect(importComposeCommand.parse(['compose.yaml', '--stack', 'web', '--project', 'shop', '--domain', 'shop.test', '--mtls', '--force'])).toEqual({
      file: 'compose.yaml', stack: 'web', stacksDir: 'stacks', project: 'shop', domain: 'shop.test', mtls: true, force: true,
    });
  });
});

describe('podmesh import on the command line, with a stand-in for docker compose', () => {
  /** Answers like Docker Compose 2.26 with the given projects (active, then with every profile), recording each call. */
  function standIn(active: unknown, all: unknown = active) {
    const calls: (readonly string[])[] = [];
    const query: ComposeQuery = async (argv) => {
      calls.push(argv);
      if (argv.includes('version')) return { exitCode: 0, stdout: '2.26.1\n', stderr: '' };
      return { exitCode: 0, stdout: JSON.stringify(argv.includes('--profile') ? all : active), stderr: '' };
    };
    return { query, calls };
  }

  async function run(argv: string[], query: ComposeQuery, cwd: string) {
    const { importCommand } = await import('../src/cli/commands/import.ts');
    const { COMMANDS, GROUPS } = await import('../src/cli/commands/index.ts');
    const { runCli } = await import('../src/cli/run.ts');
    const table = { commands: COMMANDS.map((c) => (c.name === 'import' ? importCommand(query) : c)), groups: GROUPS };
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: {}, cwd, tty: false }, table);
    return { code, out: out.join(''), err: err.join('') };
  }

  it('GIVEN --project WHEN importing THEN compose runs with -p, with and without every profile, and the stack file is written', async () => {
    const { mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'podmesh-import-cli-'));
    try {
      writeFileSync(join(dir, 'compose.yaml'), 'services: {}\n');
      const active = { name: 'shop', networks: { default: { name: 'shop_default', ipam: {} } }, services: { web: { image: 'nginx:1' } } };
      const all = { ...active, services: { ...active.services, debug: { image: 'busybox:1', profiles: ['debug'] } } };
      const { query, calls } = standIn(active, all);
      const r = await run(['import', 'compose.yaml', '--stack', 'shop', '--project', 'shop'], query, dir);
      expect(r.code).toBe(0);
      expect(calls.filter((c) => c.includes('config')).map((c) => c.slice(1))).toEqual([
        ['compose', '-f', join(dir, 'compose.yaml'), '-p', 'shop', 'config', '--format', 'json'],
        ['compose', '-f', join(dir, 'compose.yaml'), '-p', 'shop', '--profile', '*', 'config', '--format', 'json'],
      ]);
      expect(r.out).toBe('wrote stacks/shop.ts: 1 service, 1 network, 0 volumes; 2 things not imported as they were (listed above and at the top of the file).\nNext: podmesh synth --stack shop\n');
      expect(r.err).toContain('podmesh import: services.debug: not imported: none of its profiles (debug) is active. Run with COMPOSE_PROFILES=debug to import it\n');
      expect(readFileSync(join(dir, 'stacks/shop.ts'), 'utf8')).toContain("new InfraService(stack, 'web', { image: 'nginx:1', restart: 'no' });");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GIVEN a project podmesh cannot build WHEN importing THEN every problem is reported and nothing is written', async () => {
    const { existsSync, mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'podmesh-import-cli-'));
    try {
      writeFileSync(join(dir, 'compose.yaml'), 'services: {}\n');
      const { query } = standIn({ name: 'Shop Name', services: { app: { build: { context: '.' } } } });
      const r = await run(['import', 'compose.yaml', '--stack', 'shop'], query, dir);
      expect(r.code).toBe(1);
      expect(r.err).toContain('[compose.yaml] project name "Shop Name" is not a lower-case DNS label. Give one with --project, e.g. --project shop-name.');
      expect(r.err).toContain('[compose.yaml services.app] has no image (only build).');
      expect(existsSync(join(dir, 'stacks'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
