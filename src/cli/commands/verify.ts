// `podmesh verify`: probe a running mesh as every caller the policy allows and refuses.
import { join } from 'node:path';
import { HELP, type Command } from '../command.ts';
import { oneOf, parseDays, parseOptions, stateDir, UsageError } from '../options.ts';

/** What `podmesh verify` was asked to probe. */
export interface VerifyArgs {
  readonly stacksDir: string;
  readonly stacks: readonly string[] | undefined;
  readonly out: string;
  readonly state: string | undefined;
  readonly host: string | undefined;
  readonly format: 'table' | 'json' | 'prom';
  readonly warnDays: number;
  readonly resolveFromLock: boolean;
  readonly dns: readonly string[] | undefined;
  readonly timeoutMs: number;
}

const options = {
  host: { type: 'string' },
  format: { type: 'string', default: 'table' },
  json: { type: 'boolean', default: false },
  'warn-days': { type: 'string', default: '30' },
  'resolve-from-lock': { type: 'boolean', default: false },
  dns: { type: 'string', multiple: true },
  timeout: { type: 'string', default: '5000' },
} as const;

export const verifyCommand: Command<VerifyArgs> = {
  name: 'verify',
  usage: `  verify [--host H] [--format table|json|prom | --json] [--warn-days N]
         [--resolve-from-lock] [--dns IP] [--timeout MS]
                                 probe every mTLS service of the stack as its allowed callers, without a
                                 client certificate, as callers the policy refuses and with revoked
                                 certificates; exit 1 on any unexpected result
`,
  options,
  writes: false,
  parse(argv) {
    const { values: v } = parseOptions(argv, options);
    if (v.help) return HELP;
    const format = oneOf(v.json ? 'json' : v.format, ['table', 'json', 'prom'] as const, '--format');
    const warnDays = parseDays(v['warn-days'], '--warn-days');
    const timeoutMs = Number(v.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 120_000) throw new UsageError(`--timeout "${v.timeout}" must be 100-120000 milliseconds.`);
    return {
      stacksDir: v.stacks, stacks: v.stack, out: v.out, state: v.state, host: v.host, format, warnDays,
      resolveFromLock: v['resolve-from-lock'], dns: v.dns, timeoutMs,
    };
  },
  async run(a, io) {
    const [{ resolveStacks, selectStacks }, { formatVerifyJson, formatVerifyProm, formatVerifyTable, meshOf, verifyMesh }, { loadStacks }] = await Promise.all([
      import('../../synth.ts'),
      import('../../verify/index.ts'),
      import('../load.ts'),
    ]);
    const app = await loadStacks(a.stacksDir);
    const stacks = selectStacks(app, a.stacks);
    if (stacks.length !== 1) {
      throw new UsageError(`verify checks one stack: pick it with --stack (stacks: ${stacks.map((s) => s.node.id).join(', ')}).`);
    }
    const [stack] = await resolveStacks(stacks, a.out);
    const { targets, clients } = meshOf(stack!, a.host);
    const report = await verifyMesh({
      stack: stack!.name,
      stateDir: join(stateDir(a.state, io.env), stack!.name),
      targets,
      clients,
      ...(a.dns ? { dnsServers: a.dns } : {}),
      resolveFromLock: a.resolveFromLock,
      warnDays: a.warnDays,
      timeoutMs: a.timeoutMs,
    });
    io.out(a.format === 'json' ? formatVerifyJson(report) : a.format === 'prom' ? formatVerifyProm(report) : formatVerifyTable(report));
    return report.failures > 0 ? 1 : 0;
  },
};
