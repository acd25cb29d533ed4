// A call implies start order (compose depends_on, Quadlet Requires=/After=), except where calls
// close a loop: services that call each other get no order and no error, and TOPOLOGY.md says so.
// A cycle of dependsOn entries stays an error.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { App, Host, Network, Postgres, Stack } from '../src/index.ts';
import { contents, renderStack } from '../src/render/stack.ts';
import type { ResolvedStack } from '../src/resolve/model.ts';
import { resolveStack, tryResolveStack } from '../src/resolve/resolve.ts';
import { podmeshError } from './helpers/errors.ts';
import { miniStack, svc } from './helpers/stacks.ts';

/** Every rendered file of a resolved stack, failing on any render problem. */
function rendered(stack: ResolvedStack): Map<string, string> {
  const r = renderStack(stack, { outDir: 'out' });
  expect(r.issues).toEqual([]);
  return contents(r.files);
}

/** `depends_on` of each compose service that has one. */
function composeDependsOn(files: Map<string, string>): Record<string, unknown> {
  const services = parse(files.get('hosts/local/compose.yaml')!).services as Record<string, { depends_on?: unknown }>;
  return Object.fromEntries(Object.entries(services).flatMap(([name, s]) => (s.depends_on ? [[name, s.depends_on]] : [])));
}

/** `Requires=` and `After=` lines of a container unit that name another container. */
function unitOrder(files: Map<string, string>, service: string): string[] {
  const unit = files.get(`hosts/local/quadlet/mini-${service}.container`)!;
  return unit.split('\n').filter((l) => /^(Requires|After)=mini-/.test(l));
}

describe('a call implies start order', () => {
  it('GIVEN web calls api, not listed in dependsOn WHEN rendered THEN web waits for api in compose and Quadlet, as a dependsOn entry would', () => {
    // GIVEN web before api in construct order, api waiting for db
    const { stack } = miniStack();
    svc(stack, 'web', { calls: ['api'] });
    const api = svc(stack, 'api', { dependsOn: ['db'] });
    new Postgres(stack, 'db');
    svc(stack, 'worker', { calls: [api], healthcheck: false });
    // WHEN
    const r = resolveStack(stack);
    const files = rendered(r);
    // THEN dependencies first, and the call is a healthy dependency (api has a health check)
    expect(r.services.map((s) => s.name)).toEqual(['db', 'api', 'web', 'worker']);
    expect(r.services.find((s) => s.name === 'web')!.dependsOn).toEqual([{ service: 'api', condition: 'healthy', implied: true }]);
    expect(r.unorderedCalls).toEqual([]);
    expect(composeDependsOn(files)).toEqual({
      api: { db: { condition: 'service_healthy' } },
      web: { api: { condition: 'service_healthy' } },
      worker: { api: { condition: 'service_healthy' } },
    });
    expect(unitOrder(files, 'web')).toEqual(['Requires=mini-api.service', 'After=mini-api.service']);
    expect(unitOrder(files, 'api')).toEqual(['Requires=mini-db.service', 'After=mini-db.service']);
  });

  it('GIVEN a callee without a health check WHEN resolved THEN the caller waits for it to start', () => {
    const { stack } = miniStack();
    svc(stack, 'api', { healthcheck: false });
    svc(stack, 'web', { calls: ['api'] });
    const files = rendered(resolveStack(stack));
    expect(composeDependsOn(files)).toEqual({ web: { api: { condition: 'service_started' } } });
  });

  it('GIVEN a Podman that cannot report health (4.4) WHEN a call implies a wait THEN the unit waits for the start, with no problem; compose still waits for health', () => {
    // GIVEN
    const stack = new Stack(new App(), 'old', { project: 'mini' });
    new Host(stack, 'local', { podmanVersion: '4.4' });
    new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'mini.local' });
    svc(stack, 'api');
    svc(stack, 'web', { calls: ['api'] });
    // WHEN
    const files = rendered(resolveStack(stack));
    // THEN
    expect(unitOrder(files, 'web')).toEqual(['Requires=mini-api.service', 'After=mini-api.service']);
    expect(files.get('hosts/local/quadlet/mini-api.container')).not.toMatch(/Notify=healthy|sdnotify=healthy/);
    expect(composeDependsOn(files)).toEqual({ web: { api: { condition: 'service_healthy' } } });
  });

  it('GIVEN a call also listed in dependsOn WHEN resolved THEN one dependency, with the condition dependsOn gives', () => {
    const { stack } = miniStack();
    svc(stack, 'api');
    svc(stack, 'web', { calls: ['api'], dependsOn: [{ service: 'api', condition: 'started' }] });
    expect(resolveStack(stack).services.find((s) => s.name === 'web')!.dependsOn).toEqual([{ service: 'api', condition: 'started' }]);
  });
});

describe('calls that close a loop', () => {
  it('GIVEN two services that call each other WHEN synthesized THEN no order between them, no error, and TOPOLOGY.md says so', () => {
    // GIVEN
    const { stack } = miniStack();
    const a = svc(stack, 'a');
    const b = svc(stack, 'b', { calls: [a] });
    a.allowCallsTo(b);
    // WHEN
    const r = resolveStack(stack);
    const files = rendered(r);
    // THEN
    expect(r.services.map((s) => [s.name, s.dependsOn])).toEqual([['a', []], ['b', []]]);
    expect(r.unorderedCalls).toEqual([['a', 'b'], ['b', 'a']]);
    expect(composeDependsOn(files)).toEqual({});
    expect(unitOrder(files, 'a')).toEqual([]);
    expect(unitOrder(files, 'b')).toEqual([]);
    const topology = files.get('TOPOLOGY.md')!;
    expect(topology).toContain('A service starts after the services it calls, except:\n\n- a and b call each other: no start order between them.\n');
    // The policy still holds both ways.
    expect(r.services.map((s) => [s.name, s.calls, s.callers])).toEqual([['a', ['b'], ['b']], ['b', ['a'], ['a']]]);
  });

  it('GIVEN a longer loop of calls WHEN resolved THEN none of its calls orders, and services outside it still wait', () => {
    const { stack } = miniStack();
    svc(stack, 'a', { calls: ['b'] });
    svc(stack, 'b', { calls: ['c'] });
    svc(stack, 'c', { calls: ['a'] });
    svc(stack, 'front', { calls: ['a'] });
    const r = resolveStack(stack);
    expect(r.unorderedCalls).toEqual([['a', 'b'], ['b', 'c'], ['c', 'a']]);
    expect(r.services.map((s) => [s.name, s.dependsOn.map((d) => d.service)])).toEqual([['a', []], ['b', []], ['c', []], ['front', ['a']]]);
  });

  it('GIVEN a call against the direction of a dependsOn WHEN resolved THEN the dependsOn orders and the call gives none', () => {
    const { stack } = miniStack();
    svc(stack, 'x', { calls: ['y'] });
    svc(stack, 'y', { calls: ['x'], dependsOn: ['x'] });
    const r = resolveStack(stack);
    expect(r.unorderedCalls).toEqual([['x', 'y']]);
    expect(r.services.map((s) => [s.name, s.dependsOn.map((d) => d.service)])).toEqual([['x', []], ['y', ['x']]]);
    expect(rendered(r).get('TOPOLOGY.md')).toContain('- x calls y, and y reaches x through other calls and dependencies (a loop): this call gives no start order.');
  });
});

describe('a cycle of dependsOn entries', () => {
  it('GIVEN services that list each other in dependsOn WHEN resolved THEN a cycle error naming the loop', () => {
    const { stack } = miniStack();
    svc(stack, 'a', { calls: ['b'], dependsOn: ['b'] });
    svc(stack, 'b', { calls: ['a'], dependsOn: ['a'] });
    const e = podmeshError(() => resolveStack(stack));
    expect(e.issues).toEqual([
      { path: 'mini/a', message: 'dependency cycle: a → b → a. Services cannot wait for each other; remove one of these dependsOn entries.' },
    ]);
  });

  it('GIVEN two separate cycles WHEN resolved THEN each is named, and the model keeps construct order where the order is undefined', () => {
    const { stack } = miniStack();
    svc(stack, 'p', { dependsOn: ['q'], calls: ['q'] });
    svc(stack, 'q', { dependsOn: ['p'], calls: ['p'] });
    new Postgres(stack, 'db');
    svc(stack, 'r', { dependsOn: ['s', 'db'], calls: ['s'] });
    svc(stack, 's', { dependsOn: ['r'], calls: ['r'] });
    const { resolved, issues } = tryResolveStack(stack);
    expect(issues.map((i) => `[${i.path}] ${i.message.split('.')[0]}`)).toEqual(['[mini/p] dependency cycle: p → q → p', '[mini/r] dependency cycle: r → s → r']);
    expect(resolved!.services.map((s) => s.name)).toEqual(['db', 'p', 'q', 'r', 's']);
  });

  it('GIVEN a service waiting for a service of a cycle, earlier in construct order WHEN resolved THEN it still starts after that service', () => {
    const { stack } = miniStack();
    svc(stack, 'x', { dependsOn: ['p'], calls: ['p'] });
    svc(stack, 'p', { dependsOn: ['q'], calls: ['q'] });
    svc(stack, 'q', { dependsOn: ['p'], calls: ['p'] });
    const { resolved, issues } = tryResolveStack(stack);
    expect(issues.map((i) => i.path)).toEqual(['mini/p']);
    // x waits for p only: it follows p, though it comes first in construct order.
    expect(resolved!.services.map((s) => s.name)).toEqual(['p', 'x', 'q']);
  });
});
