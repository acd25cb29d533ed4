// IP allocation: explicit addresses, lowest-free allocation, and the lock that keeps them put.
import { describe, expect, it } from 'vitest';
import { App, Host, Network, Stack } from '../src/index.ts';
import { resolveStack } from '../src/resolve/resolve.ts';
import { podmeshError } from './helpers/errors.ts';
import { miniStack, svc } from './helpers/stacks.ts';

const ips = (r: ReturnType<typeof resolveStack>) => Object.fromEntries(r.services.map((s) => [s.name, s.ip]));

describe('IP allocation', () => {
  it('keeps explicit addresses and allocates the rest lowest first, skipping network and gateway', () => {
    // GIVEN
    const { stack } = miniStack();
    svc(stack, 'a');
    svc(stack, 'b', { ip: '10.90.0.2' });
    svc(stack, 'c');
    // WHEN
    const r = resolveStack(stack);
    // THEN
    expect(ips(r)).toEqual({ a: '10.90.0.3', b: '10.90.0.2', c: '10.90.0.4' });
    expect(r.services.find((s) => s.name === 'b')!.staticIp).toBe(true);
    expect(r.lock.networks.mesh).toEqual({ subnet: '10.90.0.0/24', addresses: { a: '10.90.0.3', b: '10.90.0.2', c: '10.90.0.4' } });
  });

  it('never gives out the gateway even when it is not the first address', () => {
    // GIVEN a network whose gateway is .2
    const app = new App();
    const stack = new Stack(app, 'gw');
    new Host(stack, 'local');
    new Network(stack, 'mesh', { subnet: '10.90.0.0/29', gateway: '10.90.0.2', domain: 'gw.local' });
    ['a', 'b', 'c'].forEach((n) => svc(stack, n));
    // WHEN / THEN: .0 network, .2 gateway and .7 broadcast are skipped
    expect(ips(resolveStack(stack))).toEqual({ a: '10.90.0.1', b: '10.90.0.3', c: '10.90.0.4' });
  });

  it('does not move existing services when one is added in the middle', () => {
    // GIVEN a first synth with three services
    const first = miniStack();
    svc(first.stack, 'a');
    svc(first.stack, 'c');
    svc(first.stack, 'd');
    const lock = resolveStack(first.stack).lock;
    expect(ips(resolveStack(first.stack))).toEqual({ a: '10.90.0.2', c: '10.90.0.3', d: '10.90.0.4' });

    // WHEN b is added between a and c, with the lock of the first synth
    const second = miniStack();
    svc(second.stack, 'a');
    svc(second.stack, 'b');
    svc(second.stack, 'c');
    svc(second.stack, 'd');
    const r = resolveStack(second.stack, { lock });

    // THEN a, c, d keep their addresses and b gets the next free one
    expect(ips(r)).toEqual({ a: '10.90.0.2', b: '10.90.0.5', c: '10.90.0.3', d: '10.90.0.4' });
  });

  it('without the lock, adding in the middle would move addresses (why the lock exists)', () => {
    const s = miniStack();
    svc(s.stack, 'a');
    svc(s.stack, 'b');
    svc(s.stack, 'c');
    expect(ips(resolveStack(s.stack)).c).toBe('10.90.0.4');
  });

  it('does not move the others when a service is removed, and reuses nothing that is still taken', () => {
    const first = miniStack();
    ['a', 'b', 'c'].forEach((n) => svc(first.stack, n));
    const lock = resolveStack(first.stack).lock;

    const second = miniStack();
    svc(second.stack, 'a');
    svc(second.stack, 'c');
    const r = resolveStack(second.stack, { lock });
    expect(ips(r)).toEqual({ a: '10.90.0.2', c: '10.90.0.4' });
    expect(r.lock.networks.mesh!.addresses).toEqual({ a: '10.90.0.2', c: '10.90.0.4' });
  });

  it('an explicit address never takes a locked one: the holder is moved deliberately first (test/new-user.test.ts)', () => {
    const first = miniStack();
    svc(first.stack, 'a');
    const lock = resolveStack(first.stack).lock;

    const second = miniStack();
    svc(second.stack, 'a');
    svc(second.stack, 'b', { ip: '10.90.0.2' });
    expect(podmeshError(() => resolveStack(second.stack, { lock })).issues.map((i) => i.path)).toEqual(['mini/b']);

    const third = miniStack();
    svc(third.stack, 'a', { ip: '10.90.0.3' });
    svc(third.stack, 'b', { ip: '10.90.0.2' });
    expect(ips(resolveStack(third.stack, { lock }))).toEqual({ a: '10.90.0.3', b: '10.90.0.2' });
  });

  it('drops locked addresses when the subnet changes', () => {
    const first = miniStack();
    svc(first.stack, 'a');
    const lock = { version: 1 as const, networks: { mesh: { subnet: '10.80.0.0/24', addresses: { a: '10.80.0.9' } } } };
    expect(ips(resolveStack(first.stack, { lock }))).toEqual({ a: '10.90.0.2' });
  });
});
