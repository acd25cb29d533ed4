// TOPOLOGY.md: the diagram and tables a person reads first.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadStacks } from '../src/cli/load.ts';
import { resolveStacks } from '../src/synth.ts';
import { renderTopology, topologyDiagram } from '../src/render/topology.ts';
import { Stack } from '../src/index.ts';
import { repoRoot } from './helpers/tools.ts';
import { tempDir } from './helpers/stacks.ts';

describe('TOPOLOGY.md of ashchan-dev', async () => {
  const app = await loadStacks(join(repoRoot, 'stacks'));
  const out = tempDir();
  const [stack] = await resolveStacks(app.node.children.filter(Stack.isStack).filter((s) => s.node.id === 'ashchan-dev'), out.path);
  out.cleanup();
  const md = renderTopology(stack!).get('TOPOLOGY.md')!.content;

  it('has the seed service identity table', () => {
    expect(md).toContain('| Service | DNS Name | Certificate CN | Internal URL | IP | Host |');
    expect(md).toContain('| api-gateway | `gateway.ashchan.local` | `gateway.ashchan.local` | `https://gateway.ashchan.local:8443` | 10.90.0.10 | local |');
    expect(md).toContain('| auth-accounts | `auth.ashchan.local` | `auth.ashchan.local` | `https://auth.ashchan.local:8443` | 10.90.0.21 | local |');
    expect(md).toContain('| postgresql | `postgres.ashchan.local` | `postgres.ashchan.local:5432` |');
  });

  it('GIVEN the diagram function THEN TOPOLOGY.md holds exactly its Mermaid source (the dashboard shows the same)', () => {
    const diagram = topologyDiagram(stack!);
    expect(diagram.startsWith('flowchart TB\n')).toBe(true);
    expect(md).toContain(`\`\`\`mermaid\n${diagram}\`\`\`\n`);
  });

  it('draws hosts, the network, services, published ports and dependencies in Mermaid', () => {
    expect(md).toContain('```mermaid\nflowchart TB');
    expect(md).toContain('subgraph host_local["host local · Podman 5.4 · rootless"]');
    expect(md).toContain('subgraph net_local_ashchan_mesh["ashchan-mesh 10.90.0.0/24 · ashchan.local"]');
    expect(md).toContain('internet -->|"9501"| svc_gateway');
    expect(md).toContain('svc_boards ==>|"mTLS"| svc_media');
    expect(md).toContain('svc_boards -.->|"depends on"| svc_postgres');
    expect(md).toContain('| boards | `media.ashchan.local`, `moderation.ashchan.local` | `gateway.ashchan.local` |');
    expect(md).toContain('svc_postgres[("postgres<br/>postgres.ashchan.local<br/>10.90.0.2<br/>5432 postgres")]');
  });

  it('matches the committed snapshot', async () => {
    await expect(md).toMatchFileSnapshot('__snapshots__/ashchan-dev.TOPOLOGY.md');
  });
});
