// `podmesh verify`: argv to a verify run and its output. Kept out of main.ts so that file only registers it.
import { COMMON } from './options.ts';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveStacks, selectStacks } from '../synth.ts';
import { formatVerifyJson, formatVerifyProm, formatVerifyTable, meshOf, verifyMesh } from '../verify/index.ts';
import { loadStacks } from './load.ts';

/** Help text of the command. */
export const VERIFY_USAGE = `  verify [--host H] [--format table|json|prom | --json] [--warn-days N]
         [--resolve-from-lock] [--dns IP] [--timeout MS]
                                 probe every mTLS service of the stack as its allowed callers, without a
                                 client certificate, as callers the policy refuses and with revoked
                                 certificates; exit 1 on any unexpected result
`;

/** Thrown for a wrong command line (exit 2). */
export type UsageErrorFactory = (message: string) => Error;

/** Runs `podmesh verify ARGS`; returns the exit code. */
export async function verifyCommand(
  args: readonly string[],
  common: { readonly stateDir: (flag: string | undefined) => string; readonly usage: string; readonly usageError: UsageErrorFactory },
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      strict: true,
      options: {
        ...COMMON,
        host: { type: 'string' },
        format: { type: 'string', default: 'table' },
        json: { type: 'boolean', default: false },
        'warn-days': { type: 'string', default: '30' },
        'resolve-from-lock': { type: 'boolean', default: false },
        dns: { type: 'string', multiple: true },
        timeout: { type: 'string', default: '5000' },
      },
    });
  } catch (e) {
    throw common.usageError(`${(e as Error).message}. See podmesh --help.`);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(common.usage);
    return 0;
  }
  const format = v.json ? 'json' : v.format;
  if (!['table', 'json', 'prom'].includes(format)) throw common.usageError(`--format "${format}" is not one of table, json, prom.`);
  const warnDays = Number(v['warn-days']);
  if (!Number.isInteger(warnDays) || warnDays < 0) throw common.usageError(`--warn-days "${v['warn-days']}" is not a whole number of days.`);
  const timeoutMs = Number(v.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 120_000) throw common.usageError(`--timeout "${v.timeout}" must be 100-120000 milliseconds.`);
  const app = await loadStacks(v.stacks);
  const stacks = selectStacks(app, v.stack);
  if (stacks.length !== 1) {
    throw common.usageError(`verify checks one stack: pick it with --stack (stacks: ${stacks.map((s) => s.node.id).join(', ')}).`);
  }
  const [resolved] = await resolveStacks(stacks, v.out);
  const stack = resolved!;
  const { targets, clients } = meshOf(stack, v.host);
  const state = common.stateDir(v.state);
  const report = await verifyMesh({
    stack: stack.name,
    stateDir: join(state, stack.name),
    targets,
    clients,
    ...(v.dns ? { dnsServers: v.dns } : {}),
    resolveFromLock: v['resolve-from-lock'],
    warnDays,
    timeoutMs,
  });
  if (format === 'json') process.stdout.write(formatVerifyJson(report));
  else if (format === 'prom') process.stdout.write(formatVerifyProm(report));
  else process.stdout.write(formatVerifyTable(report));
  return report.failures > 0 ? 1 : 0;
}
