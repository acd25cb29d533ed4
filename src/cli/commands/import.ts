// `podmesh import FILE --stack NAME`: a compose project, normalised by `docker compose config`, as a stack file.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { DNS_LABEL, isDnsName } from '../../../constructs/core/names.ts';
import { HELP, type Command, type Io } from '../command.ts';
import { UsageError, parseOptions } from '../options.ts';

/** What `podmesh import` was asked to do. */
export interface ImportArgs {
  readonly file: string;
  readonly stack: string;
  readonly stacksDir: string;
  readonly project: string | undefined;
  readonly domain: string | undefined;
  readonly mtls: boolean;
  readonly force: boolean;
}

/** Runs a program and returns what it printed; never throws for a non-zero exit. */
export type ComposeQuery = (argv: readonly string[], cwd: string) => Promise<{ readonly exitCode: number; readonly stdout: string; readonly stderr: string; readonly missing?: boolean }>;

const execaQuery: ComposeQuery = async (argv, cwd) => {
  const { execa } = await import('execa');
  const r = await execa(argv[0]!, argv.slice(1), { cwd, reject: false, stdin: 'ignore', timeout: 60_000 });
  const missing = (r as { code?: string }).code === 'ENOENT';
  return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr), missing };
};

const options = {
  project: { type: 'string' },
  domain: { type: 'string' },
  mtls: { type: 'boolean', default: false },
  force: { type: 'boolean', default: false },
} as const;

const INSTALL = 'Install Docker Compose v2 (the `docker compose` plugin, Debian\'s docker-compose 2.x package, or the standalone docker-compose v2 binary), or point PODMESH_DOCKER_COMPOSE at one. podman-compose cannot stand in: its `config` prints no JSON and does not normalise the project.';

/**
 * The Docker Compose v2 command line: `$PODMESH_DOCKER_COMPOSE`, else `docker compose`, else a
 * `docker-compose` that says it is v2. Undefined when none is found.
 */
export async function findCompose(env: Io['env'], cwd: string, query: ComposeQuery): Promise<readonly string[] | undefined> {
  // Asked once per process and runner: the answer does not change while podmesh runs.
  const memo = found.get(query) ?? new Map<string, Promise<readonly string[] | undefined>>();
  found.set(query, memo);
  const key = env.PODMESH_DOCKER_COMPOSE ?? '';
  const known = memo.get(key);
  if (known) return known;
  const answer = probeCompose(env, cwd, query);
  memo.set(key, answer);
  return answer;
}

const found = new WeakMap<ComposeQuery, Map<string, Promise<readonly string[] | undefined>>>();

async function probeCompose(env: Io['env'], cwd: string, query: ComposeQuery): Promise<readonly string[] | undefined> {
  const candidates: (readonly string[])[] = [];
  if (env.PODMESH_DOCKER_COMPOSE) candidates.push([env.PODMESH_DOCKER_COMPOSE]);
  candidates.push(['docker', 'compose'], ['docker-compose']);
  for (const c of candidates) {
    const r = await query([...c, 'version', '--short'], cwd);
    if (r.exitCode === 0 && /^v?2\./.test(r.stdout.trim())) return c;
  }
  return undefined;
}

export function importCommand(query: ComposeQuery = execaQuery): Command<ImportArgs> {
  return {
    name: 'import',
    usage: `  import FILE --stack NAME [--project P] [--domain D] [--mtls] [--force]
                                 write stacks/NAME.ts from a compose file (normalised by docker compose
                                 config); lists on stderr and in the file what podmesh cannot express
`,
    options,
    optionsHelp: [
      ['--project P', 'compose project name (default: compose\'s: the name: key or the folder)'],
      ['--domain D', 'DNS domain of the imported networks (default: <project>.local)'],
      ['--mtls', 'services that depend on each other become mTLS services that call each other'],
      ['--force', 'replace an existing stacks/NAME.ts'],
    ],
    writes: true,
    parse(argv) {
      const { values: v, positionals } = parseOptions(argv, options, true);
      if (v.help) return HELP;
      if (positionals.length !== 1) throw new UsageError('import takes one compose file: podmesh import compose.yaml --stack NAME. See podmesh --help.');
      const stacks = v.stack ?? [];
      if (stacks.length !== 1) throw new UsageError('import needs one --stack NAME: the stack file it writes is stacks/NAME.ts. See podmesh --help.');
      const stack = stacks[0]!;
      if (!DNS_LABEL.test(stack)) throw new UsageError(`--stack ${JSON.stringify(stack)} must be a lower-case DNS label (it names the stack, its folder and units), e.g. "myapp".`);
      if (v.project !== undefined && !DNS_LABEL.test(v.project)) throw new UsageError(`--project ${JSON.stringify(v.project)} must be a lower-case DNS label, e.g. "myapp".`);
      if (v.domain !== undefined && !isDnsName(v.domain)) throw new UsageError(`--domain ${JSON.stringify(v.domain)} must be a DNS name, e.g. "myapp.local".`);
      return { file: positionals[0]!, stack, stacksDir: v.stacks, project: v.project, domain: v.domain, mtls: v.mtls, force: v.force };
    },
    async run(a, io) {
      const { importCompose } = await import('../../import/convert.ts');
      const file = resolve(io.cwd, a.file);
      const target = resolve(io.cwd, a.stacksDir, `${a.stack}.ts`);
      const shown = relative(io.cwd, target) || target;
      if (!existsSync(file)) throw PodmeshError.at(a.file, 'cannot be read (no such file). Give the path of a compose file, e.g. podmesh import compose.yaml --stack NAME.');
      if (existsSync(target) && !a.force) throw PodmeshError.at(shown, `exists already. Pass --force to replace it, or choose another --stack.`);
      const compose = await findCompose(io.env, io.cwd, query);
      if (!compose) throw PodmeshError.at(a.file, `needs Docker Compose v2 to read it as compose does (extends, profiles, interpolation, env files), and none was found. ${INSTALL}`);
      const base = [...compose, '-f', file, ...(a.project ? ['-p', a.project] : [])];
      const [active, all] = await Promise.all([
        configJson(query, [...base, 'config', '--format', 'json'], dirname(file), a.file),
        configJson(query, [...base, '--profile', '*', 'config', '--format', 'json'], dirname(file), a.file),
      ]);
      const activeNames = new Set(Object.keys(servicesOf(active)));
      const inactive: Record<string, readonly string[]> = {};
      for (const [name, s] of Object.entries(servicesOf(all))) {
        if (!activeNames.has(name)) inactive[name] = Array.isArray((s as { profiles?: unknown }).profiles) ? ((s as { profiles: string[] }).profiles) : [];
      }
      const result = importCompose(active, { stack: a.stack, file: a.file, project: a.project, domain: a.domain, mtls: a.mtls, inactive });
      mkdirSync(dirname(target), { recursive: true });
      const temporary = join(dirname(target), `.${a.stack}.ts.${process.pid}.tmp`);
      try {
        writeFileSync(temporary, result.source);
        renameSync(temporary, target);
      } finally {
        rmSync(temporary, { force: true });
      }
      for (const n of result.notes) io.err(`podmesh import: ${n.where}: ${n.message}\n`);
      for (const n of result.hints) io.err(`podmesh import: hint: ${n.where}: ${n.message}\n`);
      const count = (word: string) => (result.source.match(new RegExp(`new ${word}\\(`, 'g')) ?? []).length;
      io.out(
        `wrote ${shown}: ${plural(Object.keys(servicesOf(active)).length, 'service')}, ${plural(count('Network'), 'network')}, ${plural(count('Volume'), 'volume')}` +
          `${result.notes.length > 0 ? `; ${result.notes.length === 1 ? '1 thing not imported as it was' : `${result.notes.length} things not imported as they were`} (listed above and at the top of the file)` : ''}.\n` +
          `Next: podmesh synth --stack ${a.stack}\n`,
      );
      return 0;
    },
  };
}

/** `docker compose … config --format json`, parsed; compose's own complaint becomes the error. */
async function configJson(query: ComposeQuery, argv: readonly string[], cwd: string, file: string): Promise<unknown> {
  const r = await query(argv, cwd);
  if (r.exitCode !== 0) {
    const why = r.stderr.trim().split('\n').slice(-3).join(' ') || `exit code ${r.exitCode}`;
    throw PodmeshError.at(file, `docker compose config refused it: ${why}. Fix the compose file (\`${argv.slice(0, -3).join(' ')} config\` shows the same).`);
  }
  try {
    return JSON.parse(r.stdout) as unknown;
  } catch {
    throw PodmeshError.at(file, `\`${argv.join(' ')}\` printed no JSON. Is it Docker Compose v2? ${INSTALL}`);
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function servicesOf(project: unknown): Record<string, unknown> {
  const s = (project as { services?: unknown } | null)?.services;
  return s && typeof s === 'object' ? (s as Record<string, unknown>) : {};
}

export const importComposeCommand = importCommand();
