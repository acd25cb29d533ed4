// The podmesh command line: the only module that reads argv, prints, and sets the exit code.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PodmeshError, formatIssues } from '../core/errors.ts';
import { changed, type WriteReport } from '../io/writer.ts';
import { synth } from '../synth.ts';
import { loadStacks } from './load.ts';

/** Options every command takes. */
const COMMON = {
  stack: { type: 'string', multiple: true },
  out: { type: 'string', default: 'out' },
  state: { type: 'string' },
  stacks: { type: 'string', default: 'stacks' },
  help: { type: 'boolean', short: 'h', default: false },
  debug: { type: 'boolean', default: false },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `podmesh: Podman service meshes from TypeScript stacks

Usage: podmesh <command> [options]

Commands:
  synth        render every stack (or --stack NAME) into out/<stack>/

Options for every command:
  --stack NAME   only this stack (repeatable)
  --out DIR      output folder (default: out)
  --state DIR    state folder for keys and certificates (default: .podmesh, or $PODMESH_STATE_DIR)
  --stacks DIR   folder of stack files (default: stacks)
  --debug        print stack traces of unexpected errors
  -h, --help     this help

synth options:
  --check        write nothing; exit 1 and list the files that differ when out/ is stale
  --now ISO      the clock used for certificate decisions (default: now)
`;

/** A usage error: wrong command line, exit code 2. */
class UsageError extends Error {}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  switch (command) {
    case 'synth':
      return synthCommand(rest);
    default:
      throw new UsageError(`unknown command "${command}". Commands: synth. See podmesh --help.`);
  }
}

async function synthCommand(args: readonly string[]): Promise<number> {
  const { values } = parse(args, {
    ...COMMON,
    check: { type: 'boolean', default: false },
    now: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const now = parseNow(values.now);
  const app = await loadStacks(values.stacks);
  const result = await synth(app, {
    outDir: values.out,
    stateDir: stateDir(values.state),
    stacks: values.stack,
    check: values.check,
    now,
  });
  for (const r of result.reports) process.stdout.write(describe(r, values.out, values.check));
  for (const s of result.prunedStacks) {
    process.stdout.write(`${s}: stack no longer exists, ${values.check ? 'out/' + s + ' would be removed' : `removed ${values.out}/${s}`}\n`);
  }
  if (values.check && result.changed) {
    process.stderr.write(`${values.out}/ is stale: run \`npm run synth\` and commit the result.\n`);
    return 1;
  }
  return 0;
}

function describe(r: WriteReport, out: string, check: boolean): string {
  if (!changed(r)) return `${r.stack}: up to date (${r.unchanged} files in ${out}/${r.stack})\n`;
  const verb = check ? 'differs' : 'written';
  const lines = [
    ...r.added.map((p) => `  + ${out}/${r.stack}/${p}`),
    ...r.modified.map((p) => `  ~ ${out}/${r.stack}/${p}`),
    ...r.removed.map((p) => `  - ${out}/${r.stack}/${p}`),
  ];
  const summary = `${r.added.length} added, ${r.modified.length} modified, ${r.removed.length} removed, ${r.unchanged} unchanged`;
  return `${r.stack}: ${verb}: ${summary}\n${lines.join('\n')}\n`;
}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: false, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}. See podmesh --help.`);
  }
}

function parseNow(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const d = new Date(text);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(text)) {
    throw new UsageError(`--now "${text}" is not an ISO-8601 time, e.g. 2027-01-31T12:00:00Z.`);
  }
  return d;
}

function stateDir(flag: string | undefined): string {
  return flag ?? process.env.PODMESH_STATE_DIR ?? '.podmesh';
}

const debug = process.argv.includes('--debug');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof PodmeshError) {
      process.stderr.write(`podmesh: ${e.issues.length} problem${e.issues.length === 1 ? '' : 's'}; nothing was written.\n${formatIssues(e.issues)}\n`);
      process.exitCode = 1;
    } else if (e instanceof UsageError) {
      process.stderr.write(`podmesh: ${e.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`podmesh: unexpected error: ${debug ? (e as Error).stack : (e as Error).message}\n${debug ? '' : 'Run again with --debug for the stack trace, and report it.\n'}`);
      process.exitCode = 70;
    }
  },
);
