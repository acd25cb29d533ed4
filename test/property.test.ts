// Property-based round trips (fast-check) through the real consumers: environment values, command
// arguments, mount paths and free-text names go into a stack; each value podmesh accepts must come
// back exactly from `docker compose config`, from the `podman run` that `quadlet -dryrun` generates
// (read with systemd's word splitting) and from `php`; each value it refuses must be refused with
// the construct's path, and nothing is written.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { App, PodmeshError, synth, type Stack } from '../src/index.ts';
import { miniStack, svc } from './helpers/stacks.ts';
import { treeState } from './helpers/tree.ts';
import { dryRun, podmanRun, type RunSpec } from './helpers/units.ts';
import { tool } from './helpers/tools.ts';

const compose = tool('docker-compose');
const quadlet = tool('quadlet');
const php = tool('php');
const SEED = Number(process.env.PODMESH_FUZZ_SEED ?? 0x0c0ffee);
const RUNS = Number(process.env.PODMESH_PROPERTY_RUNS ?? 8);

/** Strings made to hurt: separators, quotes, escapes, specifiers, interpolation, unicode, control characters. */
const nasty = fc
  .array(
    fc.oneof(
      fc.constantFrom('$', '${HOME}', '$$', '%', '%h', '%%', '"', "'", '\\', '\\n', ' ', '  ', '\t', '\n', ',', ':', '=', '#', ';', ' ; ', '*', '{{', '}}', '<?php', '?>', 'é', '日本', '💥', '\u0000', '\u0007', '\u007f', '\u00a0', '\u2028', '~', '../', '/'),
      fc.string({ maxLength: 4 }),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((parts) => parts.join(''));

/** What one kind of value needs: how to put it in a stack, and how each consumer gives it back. */
interface Kind {
  readonly name: string;
  readonly values: fc.Arbitrary<string>;
  readonly place: (stack: Stack, value: string) => void;
  readonly fromCompose: (service: Record<string, unknown>) => unknown;
  readonly fromPodman: (run: RunSpec) => unknown;
  readonly expected: (value: string) => unknown;
  readonly fromPhp?: (hostDir: string, value: string) => unknown;
}

const KINDS: Kind[] = [
  {
    name: 'environment values',
    values: nasty,
    place: (stack, v) => void svc(stack, 'api', { environment: { PROP_VALUE: v } }),
    fromCompose: (s) => (s.environment as Record<string, string>).PROP_VALUE,
    fromPodman: (r) => r.env.PROP_VALUE,
    expected: (v) => v,
  },
  {
    name: 'command arguments',
    values: fc.tuple(nasty, nasty).map(([a, b]) => `${a}\u0001${b}`),
    place: (stack, v) => void svc(stack, 'api', { command: v.split('\u0001') }),
    fromCompose: (s) => s.command,
    fromPodman: (r) => r.command,
    expected: (v) => v.split('\u0001'),
  },
  {
    name: 'mount paths',
    values: fc.tuple(nasty, nasty).map(([a, b]) => `${a}\u0001${b}`),
    place: (stack, v) => {
      const [a, b] = v.split('\u0001') as [string, string];
      svc(stack, 'api', { mounts: [{ hostPath: `/srv/${a}`, target: `/data/${b}` }] });
    },
    fromCompose: (s) => {
      const [m] = s.volumes as { source: string; target: string }[];
      return m && [m.source, m.target];
    },
    fromPodman: (r) => r.volumes.find((x) => !x.includes('/etc/mtls'))?.split(':').slice(0, 2),
    expected: (v) => {
      const [a, b] = v.split('\u0001') as [string, string];
      return [`/srv/${a}`, `/data/${b}`];
    },
  },
  {
    name: 'service names in PHP',
    values: nasty,
    place: (stack, v) => void svc(stack, 'api', { serviceName: v }),
    fromCompose: () => undefined,
    fromPodman: () => undefined,
    expected: () => undefined,
    fromPhp: (hostDir) => {
      // The shared mtls_policy.php, reading api's own Policy.php (loaded first, as Composer would).
      const file = join(hostDir, 'config/_shared/autoload/mtls_policy.php');
      const policy = join(hostDir, 'config/api/Policy.php');
      const r = spawnSync(php!, ['-r', 'require $argv[2]; echo json_encode((require $argv[1])["mtls_policy"]["service"]);', file, policy], { encoding: 'utf8', timeout: 20_000 });
      if (r.status !== 0) throw new Error(`php could not load ${file}: ${r.stderr}${r.stdout}`);
      return JSON.parse(r.stdout);
    },
  },
];

/**
 * `docker compose config` of one compose file, as JSON, after interpolation. Its output is itself a
 * compose file, so compose writes a literal `$` as `$$` again; a string's value is that text with
 * each `$$` read as `$`.
 */
function composeConfig(file: string): { services: Record<string, Record<string, unknown>> } {
  const r = spawnSync(compose!, ['-f', file, 'config', '--format', 'json'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`docker compose config refused ${file}:\n${r.stderr}`);
  return JSON.parse(r.stdout, (_key, value) => (typeof value === 'string' ? value.replaceAll('$$', '$') : value));
}

/** The app of one batch: one stack per value, so one synth judges them all. */
function batchApp(kind: Kind, values: readonly string[]): App {
  const app = new App();
  values.forEach((v, i) => kind.place(miniStack(`p${i}`, app).stack, v));
  return app;
}

describe.skipIf(!compose || !quadlet || !php)('property: values through the real consumers', () => {
  const root = mkdtempSync(join(tmpdir(), 'podmesh-prop-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let batch = 0;

  it.each(KINDS)('$name come back exactly, or are refused with nothing written', async (kind) => {
    await fc.assert(
      fc.asyncProperty(fc.array(kind.values, { minLength: 1, maxLength: 5 }), async (values) => {
        const dir = join(root, `b${batch++}`);
        const out = join(dir, 'out');
        const state = join(dir, 'state');
        // GIVEN one stack per value; WHEN synth judges them together
        let refused = new Set<number>();
        try {
          await synth(batchApp(kind, values), { outDir: out, stateDir: state });
        } catch (e) {
          if (!(e instanceof PodmeshError)) throw e;
          // THEN a refusal names the stack's construct, and nothing at all was written
          refused = new Set(e.issues.map((i) => Number(/^p(\d+)\//.exec(i.path)?.[1] ?? NaN)));
          expect([...refused].every((i) => Number.isInteger(i) && i < values.length), e.message).toBe(true);
          expect(treeState(out)).toEqual({});
          expect(treeState(state)).toEqual({});
          const accepted = values.filter((_, i) => !refused.has(i));
          if (accepted.length === 0) return;
          const app = new App();
          values.forEach((v, i) => refused.has(i) || kind.place(miniStack(`p${i}`, app).stack, v));
          await synth(app, { outDir: out, stateDir: state });
        }
        // AND every accepted value comes back exactly from each consumer
        for (const [i, v] of values.entries()) {
          if (refused.has(i)) continue;
          const hostDir = join(out, `p${i}`, 'hosts', 'local');
          const want = kind.expected(v);
          expect(kind.fromCompose(composeConfig(join(hostDir, 'compose.yaml')).services.api!), `compose: ${JSON.stringify(v)}`).toEqual(want);
          const units = dryRun(quadlet!, join(hostDir, 'quadlet'), true);
          expect(units.status, units.complaints.join('\n')).toBe(0);
          const service = [...units.services].find(([n]) => n.endsWith('-api.service'))?.[1];
          expect(kind.fromPodman(podmanRun(service!)), `quadlet: ${JSON.stringify(v)}`).toEqual(want);
          if (kind.fromPhp) expect(kind.fromPhp(hostDir, v), `php: ${JSON.stringify(v)}`).toEqual(v);
        }
        rmSync(dir, { recursive: true, force: true });
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 600_000);
});
