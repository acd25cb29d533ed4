// The Ashchan construct: its services are readonly members, it only groups them (every generated
// name is the one they would have directly in the stack), and both committed stacks still synth
// to the committed out/ byte for byte.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { App, Host, Minio, Network, Postgres, Redis, Service, Stack, synth, Workload } from '../src/index.ts';
import { loadStacks } from '../src/cli/load.ts';
import { resolveStack } from '../src/resolve/resolve.ts';
import { Ashchan } from '../stacks/lib/ashchan.ts';
import { repoRoot } from './helpers/tools.ts';

function devStack() {
  const stack = new Stack(new App(), 'dev', { project: 'ashchan' });
  new Host(stack, 'local');
  new Network(stack, 'ashchan-mesh', { subnet: '10.90.0.0/24', domain: 'ashchan.local' });
  const ashchan = new Ashchan(stack, 'ashchan', { plainHttp: true, publicHostnames: ['localhost'] });
  return { stack, ashchan };
}

describe('Ashchan', () => {
  it('GIVEN new Ashchan(stack, id, props) THEN its members are its services, each a construct inside it', () => {
    const { stack, ashchan } = devStack();
    const members = [ashchan.postgres, ashchan.redis, ashchan.minio, ashchan.auth, ashchan.media, ashchan.moderation, ashchan.search, ashchan.boards, ashchan.gateway];
    expect(members.map((m) => [m.node.id, m.node.scope])).toEqual(['postgres', 'redis', 'minio', 'auth', 'media', 'moderation', 'search', 'boards', 'gateway'].map((id) => [id, ashchan]));
    // MinIO's preset adds its setup beside it, in the same grouping construct.
    expect(ashchan.minio.setup.node.scope).toBe(ashchan);
    expect(stack.node.findAll().filter(Workload.isWorkload)).toEqual([ashchan.postgres, ashchan.redis, ashchan.minio, ashchan.minio.setup, ...members.slice(3)]);
    expect([ashchan.postgres, ashchan.redis, ashchan.minio].map((m) => m.constructor)).toEqual([Postgres, Redis, Minio]);
    expect([ashchan.gateway, ashchan.auth, ashchan.boards, ashchan.media, ashchan.search, ashchan.moderation].every((s) => s instanceof Service)).toBe(true);
  });

  it('GIVEN the grouping construct WHEN resolved THEN names, DNS names, containers, volumes, certificates and IPs carry no trace of it', () => {
    const r = resolveStack(devStack().stack);
    const byName = Object.fromEntries(r.services.map((s) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual(['auth', 'boards', 'gateway', 'media', 'minio', 'minio-setup', 'moderation', 'postgres', 'redis', 'search']);
    expect([byName.auth!.dnsName, byName.auth!.containerName, byName.auth!.hostname, byName.auth!.ip]).toEqual(['auth.ashchan.local', 'ashchan-auth-1', 'auth', '10.90.0.21']);
    expect([byName.gateway!.ip, byName.boards!.ip]).toEqual(['10.90.0.10', '10.90.0.22']);
    expect(r.volumes.map((v) => v.name)).toEqual(['ashchan-postgres-data', 'ashchan-redis-data', 'ashchan-minio-data']);
    expect(r.pki.bindings.filter((b) => b.kind === 'server').map((b) => b.commonName)).toEqual(
      ['minio', 'auth', 'media', 'moderation', 'search', 'boards', 'gateway'].map((n) => `${n}.ashchan.local`),
    );
    expect(byName.boards!.dependsOn.map((d) => d.service)).toEqual(['postgres', 'redis', 'media', 'moderation']);
    expect(byName.gateway!.dependsOn.map((d) => d.service)).toEqual(['auth', 'boards', 'media', 'search', 'moderation']);
    // The construct path does show where it is: errors point at the construct in the tree.
    expect(byName.auth!.path).toBe('dev/ashchan/auth');
  });

  it('GIVEN the committed stacks WHEN synthesized in check mode against the committed out/ THEN nothing differs', async () => {
    // The default state folder beside out/, as `npm run synth` uses: compose files name it
    // relatively. Check mode reads nothing from it and writes nothing anywhere.
    const app = await loadStacks(join(repoRoot, 'stacks'));
    const result = await synth(app, { outDir: join(repoRoot, 'out'), stateDir: join(repoRoot, '.podmesh'), check: true });
    expect(result.reports.map((r) => r.stack).sort()).toEqual(['ashchan-dev', 'ashchan-prod']);
    expect(result.changed, JSON.stringify(result.reports, null, 1)).toBe(false);
  });
});
