// `podmesh audit`: the posture of every container of a stack, control by control.
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { HELP, type Command } from '../command.ts';
import { oneOf, parseOptions } from '../options.ts';

/** What `podmesh audit` was asked to report. */
export interface AuditArgs {
  readonly stacksDir: string;
  readonly stacks: readonly string[] | undefined;
  readonly out: string;
  readonly format: 'table' | 'json';
}

const options = { format: { type: 'string', default: 'table' } } as const;

export const auditCommand: Command<AuditArgs> = {
  name: 'audit',
  usage: `  audit [--format table|json]     judge every container against the Pod Security Standard "restricted"
                                 and the CIS Docker Benchmark's runtime items: pass, waived (with the
                                 reason) or fail, per control and service; exit 1 on any fail
`,
  options,
  writes: false,
  parse(argv) {
    const { values: v } = parseOptions(argv, options);
    if (v.help) return HELP;
    return { stacksDir: v.stacks, stacks: v.stack, out: v.out, format: oneOf(v.format, ['table', 'json'] as const, '--format') };
  },
  async run(a, io) {
    const [{ auditStack, formatAuditJson, formatAuditTable, postureProblems }, { resolveWithLock, selectStacks }, { loadStacks }] = await Promise.all([
      import('../../posture/index.ts'),
      import('../../synth.ts'),
      import('../load.ts'),
    ]);
    const app = await loadStacks(a.stacksDir);
    const reports = [];
    for (const stack of selectStacks(app, a.stacks)) {
      const r = await resolveWithLock(stack, a.out);
      if (!r.resolved) throw new PodmeshError(r.issues);
      // Posture failures are what the audit reports; any other problem stops it.
      const posture = new Set(postureProblems(r.resolved).map((i) => `${i.path}\n${i.message}`));
      const other = r.issues.filter((i) => !posture.has(`${i.path}\n${i.message}`));
      if (other.length > 0) throw new PodmeshError(other);
      reports.push(auditStack(r.resolved));
    }
    io.out(a.format === 'json' ? formatAuditJson(reports) : formatAuditTable(reports));
    return reports.some((r) => r.counts.fail > 0) ? 1 : 0;
  },
};
