// `podmesh state export` and `podmesh state import`: a stack's state as an age-encrypted bundle,
// per host (what apply installs there) or whole (a backup), and a backup restored.
import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { writeAtomic } from '../../io/atomic.ts';
import { compare } from '../../io/sort.ts';
import { HELP, type Command } from '../command.ts';
import { parseOptions, stateDir, UsageError } from '../options.ts';

/** What `podmesh state export` was asked to write. */
export interface ExportArgs {
  readonly stacksDir: string;
  readonly stack: string;
  /** Absent: a full backup of the stack's state folder. */
  readonly host: string | undefined;
  readonly out: string;
  readonly state: string | undefined;
  readonly recipients: readonly string[];
  readonly recipientsFiles: readonly string[];
  readonly output: string;
}

const exportOptions = {
  host: { type: 'string' },
  recipient: { type: 'string', multiple: true },
  'recipients-file': { type: 'string', multiple: true },
  output: { type: 'string', short: 'o' },
} as const;

/** Whether `inner` is `outer` or below it (both resolved). */
function within(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === '' || (r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r));
}

export const stateExportCommand: Command<ExportArgs> = {
  name: 'state export',
  usage: `  state export --stack S [--host H] --recipient age1… [--recipients-file F] --output FILE
                                 write host H's state (its certificates and keys, secrets, WireGuard
                                 keys; never a CA key) encrypted with age to FILE (mode 0600);
                                 without --host a full backup of the stack's state folder, CA keys
                                 included
`,
  options: exportOptions,
  writes: true,
  guarded: true,
  parse(argv) {
    const { values: v } = parseOptions(argv, exportOptions);
    if (v.help) return HELP;
    const recipients = v.recipient ?? [];
    const files = v['recipients-file'] ?? [];
    if (!v.stack || v.stack.length !== 1 || !v.output || recipients.length + files.length === 0) {
      throw new UsageError('state export needs one --stack, --output FILE and at least one --recipient age1… (or --recipients-file FILE), e.g. podmesh state export --stack ashchan-prod --host app --recipient age1… --output app.age');
    }
    return { stacksDir: v.stacks, stack: v.stack[0]!, host: v.host, out: v.out, state: v.state, recipients, recipientsFiles: files, output: v.output };
  },
  async run(a, io) {
    const [{ MODE, stackDir }, { hostOf }, { checkRecipient, encryptBundle, fullBundle, hostBundle, parseRecipients }, { resolveStacks, selectStacks }, { loadStacks }] = await Promise.all([
      import('../../layout.ts'),
      import('../../ops/apply.ts'),
      import('../../ops/state-bundle.ts'),
      import('../../synth.ts'),
      import('../load.ts'),
    ]);
    const state = stateDir(a.state, io.env);
    if (within(resolve(io.cwd, a.output), resolve(io.cwd, state))) {
      throw PodmeshError.at(a.output, `is inside the state folder ${state}: a bundle there would become part of the state (and of every full backup). Write it elsewhere, e.g. --output ${a.host ?? a.stack}.age.`);
    }
    const recipients = [
      ...a.recipients.map((r) => checkRecipient(r, '--recipient')),
      ...a.recipientsFiles.flatMap((f) => parseRecipients(readFileSync(f, 'utf8'), f)),
    ];
    const app = await loadStacks(a.stacksDir);
    const [stack] = await resolveStacks(selectStacks(app, [a.stack]), a.out);
    const dir = join(state, stackDir(stack!.name));
    const bundle = a.host === undefined ? fullBundle(stack!.name, dir) : hostBundle(stack!, hostOf(stack!, a.host), dir);
    await writeAtomic(a.output, await encryptBundle(bundle, [...new Set(recipients)]), MODE.secret);
    const n = Object.keys(bundle.files).length;
    const what = a.host === undefined ? `full backup of ${dir} (CA keys included)` : `host ${a.host}'s state`;
    io.out(`${stack!.name}: wrote ${a.output}: ${what}, ${n} file${n === 1 ? '' : 's'}, encrypted to ${new Set(recipients).size} recipient${new Set(recipients).size === 1 ? '' : 's'}\n`);
    for (const p of Object.keys(bundle.files).sort(compare)) io.out(`  ${p}\n`);
    return 0;
  },
};

/** What `podmesh state import` was asked to restore. */
export interface ImportArgs {
  readonly stack: string | undefined;
  readonly state: string | undefined;
  readonly input: string;
  readonly identity: string;
  readonly force: boolean;
}

const importOptions = {
  input: { type: 'string', short: 'i' },
  identity: { type: 'string' },
  force: { type: 'boolean', default: false },
} as const;

export const stateImportCommand: Command<ImportArgs> = {
  name: 'state import',
  usage: `  state import --input FILE --identity KEYFILE [--force]
                                 restore a full backup (state export without --host) into the
                                 state folder; refuses to replace a different one without --force
`,
  options: importOptions,
  writes: true,
  guarded: true,
  parse(argv) {
    const { values: v } = parseOptions(argv, importOptions);
    if (v.help) return HELP;
    if (!v.input || !v.identity || (v.stack && v.stack.length !== 1)) {
      throw new UsageError('state import needs --input FILE and --identity KEYFILE (an age identity file, as age-keygen writes it), and at most one --stack, e.g. podmesh state import --input backup.age --identity ~/.config/podmesh/backup.key');
    }
    return { stack: v.stack?.[0], state: v.state, input: v.input, identity: v.identity, force: v.force };
  },
  async run(a, io) {
    const [{ stackDir }, { importBundle, readBundleFile }] = await Promise.all([import('../../layout.ts'), import('../../ops/state-bundle.ts')]);
    const state = stateDir(a.state, io.env);
    // Decrypted and checked in full before anything is written.
    const bundle = await readBundleFile(a.input, a.identity);
    if (a.stack !== undefined && bundle.stack !== a.stack) {
      throw PodmeshError.at(a.input, `is a backup of stack ${bundle.stack}, not of ${a.stack}. Pass the backup of ${a.stack}, or --stack ${bundle.stack}.`);
    }
    const outcome = await importBundle(bundle, state, a.input, a.force);
    const dir = join(state, stackDir(bundle.stack));
    const n = Object.keys(bundle.files).length;
    io.out(
      outcome === 'unchanged'
        ? `${bundle.stack}: ${dir} already holds exactly this backup; nothing written\n`
        : `${bundle.stack}: ${outcome === 'replaced' ? 'replaced' : 'restored'} ${dir} from ${a.input} (${n} file${n === 1 ? '' : 's'})\n`,
    );
    return 0;
  },
};

export const stateCommands = [stateExportCommand, stateImportCommand];
