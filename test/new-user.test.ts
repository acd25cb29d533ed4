// Things a new user hit (issue 14, item 7): an explicit ip taking a locked one, a port on 127.0.0.1
// and on all addresses, a bridge name an old Podman cannot set, suggested ranges with the
// gateway, and env files read from the working directory instead of beside the stack file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { App, Host, Network, Stack } from '../src/index.ts';
import { loadingStackFile } from '../constructs/core/stack-file.ts';
import type { Stack as StackType } from '../constructs/core/stack.ts';
import { loadStacks } from '../src/cli/load.ts';
import { renderSystemd } from '../src/render/systemd.ts';
import { topologyMarkdown } from '../src/render/topology.ts';
import { resolveStack, tryResolveStack } from '../src/resolve/resolve.ts';
import { validateConstructs } from '../src/synth/index.ts';
import { podmeshError } from './helpers/errors.ts';
import { miniStack, svc, tempDir } from './helpers/stacks.ts';

const ips = (r: ReturnType<typeof resolveStack>) => Object.fromEntries(r.services.map((s) => [s.name, s.ip]));

describe('an explicit ip equal to another service\'s locked address', () => {
  /** The lock of a first synth in which a got 10.90.0.2 and c 10.90.0.3. */
  function firstLock() {
    const first = miniStack();
    svc(first.stack, 'a');
    svc(first.stack, 'c');
    const r = resolveStack(first.stack);
    expect(ips(r)).toEqual({ a: '10.90.0.2', c: '10.90.0.3' });
    return r.lock;
  }

  it('GIVEN a locked at .2 WHEN b asks for .2 THEN it is refused, naming the holder and both deliberate ways to move it', () => {
    // GIVEN
    const lock = firstLock();
    const second = miniStack();
    svc(second.stack, 'a');
    svc(second.stack, 'b', { ip: '10.90.0.2' });
    svc(second.stack, 'c');
    // WHEN
    const err = podmeshError(() => resolveStack(second.stack, { lock }));
    // THEN
    expect(err.issues).toEqual([
      {
        path: 'mini/b',
        message:
          'ip 10.90.0.2 is locked to mini/a in podmesh.lock.json (network mesh); taking it would move that service and reissue its certificates. ' +
          'To move it deliberately, first give a an explicit other ip (or delete networks.mesh.addresses.a from the lock file) and synthesize; else pick a free address or leave ip unset.',
      },
    ]);
  });

  it('GIVEN the holder moved first by an explicit ip WHEN b asks for its old address THEN both get what they asked for', () => {
    // GIVEN
    const lock = firstLock();
    const second = miniStack();
    svc(second.stack, 'a', { ip: '10.90.0.20' });
    svc(second.stack, 'b', { ip: '10.90.0.2' });
    svc(second.stack, 'c');
    // WHEN
    const r = resolveStack(second.stack, { lock });
    // THEN c stays where the lock put it
    expect(ips(r)).toEqual({ a: '10.90.0.20', b: '10.90.0.2', c: '10.90.0.3' });
  });

  it('GIVEN the holder\'s lock entry deleted WHEN b asks for the address THEN b gets it and a is allocated afresh', () => {
    const lock = firstLock();
    const { a: _, ...rest } = lock.networks.mesh!.addresses;
    const edited = { ...lock, networks: { mesh: { ...lock.networks.mesh!, addresses: rest } } };
    const second = miniStack();
    svc(second.stack, 'a');
    svc(second.stack, 'b', { ip: '10.90.0.2' });
    svc(second.stack, 'c');
    expect(ips(resolveStack(second.stack, { lock: edited }))).toEqual({ a: '10.90.0.4', b: '10.90.0.2', c: '10.90.0.3' });
  });

  it('GIVEN a lock entry of a service that is gone WHEN another takes its address THEN nothing moves and it is accepted', () => {
    const lock = firstLock();
    const second = miniStack();
    svc(second.stack, 'b', { ip: '10.90.0.2' });
    svc(second.stack, 'c');
    expect(ips(resolveStack(second.stack, { lock }))).toEqual({ b: '10.90.0.2', c: '10.90.0.3' });
  });
});

describe('a host port on 127.0.0.1 and on all addresses', () => {
  const build = (first: { hostIp?: string }, second: { hostIp?: string }, protocol: 'tcp' | 'udp' = 'tcp') => {
    const { stack } = miniStack();
    svc(stack, 'a', { ports: { http: { port: 8080, publish: 8080, protocol, ...first } } });
    svc(stack, 'b', { ports: { http: { port: 9000, publish: 8080, protocol, ...second } } });
    return stack;
  };

  it.each([
    ['127.0.0.1 then all (no hostIp)', { hostIp: '127.0.0.1' }, {}, '0.0.0.0', 'all addresses (0.0.0.0)', '127.0.0.1'],
    ['127.0.0.1 then 0.0.0.0', { hostIp: '127.0.0.1' }, { hostIp: '0.0.0.0' }, '0.0.0.0', 'all addresses (0.0.0.0)', '127.0.0.1'],
    ['all then 127.0.0.1', {}, { hostIp: '127.0.0.1' }, '127.0.0.1', '127.0.0.1', 'all addresses (0.0.0.0)'],
  ])('GIVEN %s on one host WHEN resolved THEN a clash naming both binds', (_label, first, second, _b, here, there) => {
    const err = podmeshError(() => resolveStack(build(first, second)));
    expect(err.issues).toEqual([
      {
        path: 'mini/b',
        message: `host port 8080/tcp on host local is published on ${here} here and on ${there} by mini/a; Linux refuses the second bind. Publish another host port, e.g. publish: 8081, or give both a specific hostIp.`,
      },
    ]);
  });

  it('GIVEN 0.0.0.0 and no hostIp WHEN resolved THEN it is the same-address clash', () => {
    const err = podmeshError(() => resolveStack(build({ hostIp: '0.0.0.0' }, {})));
    expect(err.issues).toEqual([
      { path: 'mini/b', message: 'host port 8080/tcp on host local is already published by mini/a. Publish another host port, e.g. publish: 8081.' },
    ]);
  });

  it.each([
    ['two distinct specific addresses', { hostIp: '127.0.0.1' }, { hostIp: '127.0.0.2' }, 'tcp'],
    ['127.0.0.1/udp and all/tcp are different sockets', { hostIp: '127.0.0.1' }, {}, 'mixed'],
  ] as const)('GIVEN %s WHEN resolved THEN accepted', (_label, first, second, protocol) => {
    const { stack } = miniStack();
    svc(stack, 'a', { ports: { http: { port: 8080, publish: 8080, protocol: protocol === 'mixed' ? 'udp' : 'tcp', ...first } } });
    svc(stack, 'b', { ports: { http: { port: 9000, publish: 8080, ...second } } });
    const r = resolveStack(stack);
    expect(r.services.map((s) => s.ports.find((p) => p.name === 'http')!.publish)).toEqual([
      { hostPort: 8080, ...first },
      { hostPort: 8080, ...second },
    ]);
  });
});

describe('a bridge name Podman 4.4 cannot set', () => {
  const oneHost = (version: string, bridgeName?: string) => {
    const app = new App();
    const stack = new Stack(app, 'br', { project: 'br' });
    new Host(stack, 'h', { podmanVersion: version });
    new Network(stack, 'mesh', { subnet: '10.92.0.0/24', domain: 'br.local', ...(bridgeName ? { bridgeName } : {}) });
    svc(stack, 'api');
    return resolveStack(stack);
  };

  it('GIVEN bridgeName on a host with Podman 4.4 WHEN the units are planned THEN a problem names the versions and both fixes', () => {
    // WHEN
    const { problems } = renderSystemd(oneHost('4.4', 'br-mesh'));
    // THEN
    expect(problems).toEqual([
      {
        path: 'br/mesh',
        message:
          'bridgeName "br-mesh" cannot be set: Podman 4.4 on host h names the bridge itself (podmanN): Quadlet InterfaceName= needs v5.6, ' +
          "a .network's PodmanArgs=--interface-name v4.6. Raise host h's podmanVersion to 4.6 or later, or remove bridgeName.",
      },
    ]);
  });

  it('GIVEN bridgeName on Podman 4.6 WHEN planned THEN no problem and the unit sets it', () => {
    const { problems, files } = renderSystemd(oneHost('4.6', 'br-mesh'));
    expect(problems).toEqual([]);
    const unit = [...files].find(([p]) => p.endsWith('/mesh.network'))![1];
    expect(String(unit.content)).toContain('PodmanArgs=--interface-name=br-mesh\n');
  });

  it('GIVEN the default name on a single 4.4 host WHEN rendered THEN no problem, no name in the unit, and TOPOLOGY.md says Podman names it', () => {
    // GIVEN / WHEN
    const r = oneHost('4.4');
    const { problems, files } = renderSystemd(r);
    // THEN
    expect(problems).toEqual([]);
    const unit = [...files].find(([p]) => p.endsWith('/mesh.network'))![1];
    expect(String(unit.content)).not.toContain('interface-name');
    expect(topologyMarkdown(r)).toContain('| mesh | `br.local` | 10.92.0.0/24 | h | 10.92.0.0/24 | 10.92.0.1 | `mesh` (compose); podmanN, named by Podman 4.4 (Quadlet) |');
    expect(topologyMarkdown(oneHost('4.6'))).toContain('| 10.92.0.1 | `mesh` |');
  });

  it('GIVEN a tunnel whose host b runs Podman 4.5 WHEN planned THEN the forwarding rules\' bridge is a problem on b only', () => {
    // GIVEN
    const app = new App();
    const stack = new Stack(app, 'wg', { project: 'wg', wireguard: {} });
    const a = new Host(stack, 'a', { endpoint: '198.51.100.1:51820' });
    const b = new Host(stack, 'b', { endpoint: '198.51.100.2:51820', podmanVersion: '4.5' });
    new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'wg.local' });
    svc(stack, 'api', { host: a });
    svc(stack, 'auth', { host: b });
    // WHEN
    const { problems } = renderSystemd(resolveStack(stack));
    // THEN
    expect(problems).toEqual([
      {
        path: 'wg/mesh',
        message:
          'the WireGuard forwarding rules of host b match bridge "mesh" by name, but Podman 4.5 on host b names the bridge itself (podmanN): ' +
          "Quadlet InterfaceName= needs v5.6, a .network's PodmanArgs=--interface-name v4.6. Raise host b's podmanVersion to 4.6 or later.",
      },
    ]);
  });
});

describe('suggested address ranges', () => {
  it('GIVEN the gateway .1 WHEN a service asks for it THEN the range suggested starts after it', () => {
    const { stack } = miniStack();
    svc(stack, 'a', { ip: '10.90.0.1' });
    expect(podmeshError(() => resolveStack(stack)).issues).toEqual([
      { path: 'mini/a', message: 'ip 10.90.0.1 is the gateway address of network mesh (10.90.0.0/24). Pick an address in 10.90.0.2-10.90.0.254 or leave ip unset.' },
    ]);
  });

  it('GIVEN a gateway inside the range WHEN an address outside the network is asked THEN the range names the gateway as excluded', () => {
    const app = new App();
    const stack = new Stack(app, 'gw', { project: 'gw' });
    new Host(stack, 'local');
    new Network(stack, 'mesh', { subnet: '10.90.0.0/29', gateway: '10.90.0.2', domain: 'gw.local' });
    svc(stack, 'a', { ip: '10.90.1.5' });
    expect(podmeshError(() => resolveStack(stack)).issues).toEqual([
      { path: 'gw/a', message: 'ip 10.90.1.5 is outside network mesh (10.90.0.0/29). Pick an address in 10.90.0.1-10.90.0.6 except 10.90.0.2 or leave ip unset.' },
    ]);
  });

  it('GIVEN a gateway at the top WHEN refused THEN the range ends before it', () => {
    const app = new App();
    const stack = new Stack(app, 'top', { project: 'top' });
    new Host(stack, 'local');
    new Network(stack, 'mesh', { subnet: '10.90.0.0/29', gateway: '10.90.0.6', domain: 'top.local' });
    svc(stack, 'a', { ip: '10.90.0.7' });
    expect(podmeshError(() => resolveStack(stack)).issues).toEqual([
      { path: 'top/a', message: 'ip 10.90.0.7 is the broadcast address of network mesh (10.90.0.0/29). Pick an address in 10.90.0.1-10.90.0.5 or leave ip unset.' },
    ]);
  });
});

describe('envFiles resolve against the stack file', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  const index = JSON.stringify(join(import.meta.dirname, '../src/index.ts'));
  const stackFile = (id: string, envFile: string, asyncExport = false) =>
    [
      `import { type App, Host, Network, Service, Stack } from ${index};`,
      `export default ${asyncExport ? 'async ' : ''}(app: App)${asyncExport ? ': Promise<void>' : ': void'} => {`,
      asyncExport ? '  await new Promise((r) => setTimeout(r, 5));' : '',
      `  const stack = new Stack(app, '${id}', { project: '${id}' });`,
      "  new Host(stack, 'local');",
      "  new Network(stack, 'mesh', { subnet: '10.93.0.0/24', domain: 'env.local' });",
      `  new Service(stack, 'api', { image: 'localhost/api:1', envFiles: [${JSON.stringify(envFile)}] });`,
      '};',
    ].join('\n');
  const envOf = (app: App, id: string) => {
    const stack = app.node.findChild(id) as StackType;
    return Object.fromEntries(resolveStack(stack).services[0]!.environment);
  };

  it('GIVEN stacks/app.ts naming "app.env" and "conf/more.env" WHEN loaded from another working directory THEN both are read beside the stack file', async () => {
    // GIVEN a project folder the test's working directory is not
    const stacks = join(tmp.path, 'project', 'stacks');
    mkdirSync(join(stacks, 'conf'), { recursive: true });
    writeFileSync(join(stacks, 'app.env'), 'LOG_LEVEL=info\n');
    writeFileSync(join(stacks, 'conf', 'more.env'), 'FEATURE=on\n');
    writeFileSync(join(stacks, 'a.ts'), stackFile('one', 'app.env'));
    writeFileSync(join(stacks, 'b.ts'), stackFile('two', 'conf/more.env', true));
    expect(process.cwd()).not.toBe(stacks);
    // WHEN
    const app = await loadStacks(stacks);
    // THEN the sync and the async export each read their own file, and nothing stays recorded
    expect(envOf(app, 'one')).toMatchObject({ LOG_LEVEL: 'info' });
    expect(envOf(app, 'two')).toMatchObject({ FEATURE: 'on' });
    expect(loadingStackFile()).toBeUndefined();
  });

  it('GIVEN a relative env file that is missing WHEN loaded THEN the problem shows where the path led', async () => {
    const stacks = join(tmp.path, 'missing', 'stacks');
    mkdirSync(stacks, { recursive: true });
    writeFileSync(join(stacks, 'a.ts'), stackFile('gone', 'nope.env'));
    const app = await loadStacks(stacks);
    const issues = validateConstructs([app.node.findChild('gone') as StackType]);
    expect(issues).toEqual([
      { path: 'gone/api', message: `env file nope.env (${join(stacks, 'nope.env')}) cannot be read (ENOENT). A relative path is relative to the folder of the stack file.` },
    ]);
  });

  it('GIVEN a stack built in code without the loader WHEN it names a relative env file THEN it resolves against the working directory', () => {
    const { stack } = miniStack();
    svc(stack, 'api', { envFiles: ['no-such-podmesh-test.env'] });
    expect(tryResolveStack(stack).issues).toEqual([]);
    expect(validateConstructs([stack])).toEqual([
      {
        path: 'mini/api',
        message: `env file no-such-podmesh-test.env (${join(process.cwd(), 'no-such-podmesh-test.env')}) cannot be read (ENOENT). A relative path is relative to the folder of the stack file.`,
      },
    ]);
  });
});
