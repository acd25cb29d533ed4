// `podmesh init`: the files of a new podmesh project, planned as data from what exists, then written.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Issue } from '../../constructs/core/errors.ts';
import type { PodmeshPackage } from './version.ts';
import { packageFile } from '../package-root.ts';

/** Files copied from `templates/init/` (project path → template file). */
export const INIT_TEMPLATES: Readonly<Record<string, string>> = {
  'tsconfig.json': 'tsconfig.json',
  'stacks/example.ts': 'stacks/example.ts',
  'README.md': 'README.md',
};

/** `.gitignore` lines init makes sure of: the state folder holds private keys. */
export const GITIGNORE_TEMPLATE = 'gitignore';

/** npm scripts init adds to package.json. */
export const INIT_SCRIPTS: Readonly<Record<string, string>> = {
  synth: 'podmesh synth',
  check: 'podmesh synth --check',
  diff: 'podmesh diff',
  typecheck: 'tsc --noEmit',
};

/** One file init writes, or leaves as it is. */
export interface InitFile {
  /** Path relative to the project folder. */
  readonly path: string;
  readonly content: string;
  /** `create`: new; `overwrite`: replaced (--force); `update`: merged into; `keep`: already right. */
  readonly action: 'create' | 'overwrite' | 'update' | 'keep';
}

/** What init would do: the files, and every conflict that stops it (then nothing is written). */
export interface InitPlan {
  readonly files: readonly InitFile[];
  /** Packages added to package.json: `npm install` is the next step. */
  readonly added: readonly string[];
  readonly conflicts: readonly Issue[];
}

/** What planInit needs to know; all plain data, read beforehand. */
export interface InitInput {
  /** Current content of each project path init touches (undefined: absent). */
  readonly existing: Readonly<Record<string, string | undefined>>;
  /** Template contents by template file name. */
  readonly templates: Readonly<Record<string, string>>;
  /** podmesh's own package.json: its version and the TypeScript it is checked with. */
  readonly podmesh: PodmeshPackage;
  /** Name for a package.json init creates (the folder's name). */
  readonly projectName: string;
  /** Overwrite files and package.json entries that differ. */
  readonly force: boolean;
}

/** Every project path init may write, in the order it reports them. */
export const INIT_PATHS = ['package.json', 'tsconfig.json', '.gitignore', 'stacks/example.ts', 'README.md'] as const;

/** Plans `podmesh init` without touching the disk. */
export function planInit(input: InitInput): InitPlan {
  const conflicts: Issue[] = [];
  const added: string[] = [];
  const files: InitFile[] = [planPackageJson(input, conflicts, added), planGitignore(input)];
  for (const [path, template] of Object.entries(INIT_TEMPLATES)) {
    const content = input.templates[template]!;
    const current = input.existing[path];
    if (current === undefined) files.push({ path, content, action: 'create' });
    else if (current === content) files.push({ path, content, action: 'keep' });
    else if (input.force) files.push({ path, content, action: 'overwrite' });
    else conflicts.push({ path, message: 'exists. init never overwrites a file: move it away, or run podmesh init --force to replace it.' });
  }
  const order = (f: InitFile) => (INIT_PATHS as readonly string[]).indexOf(f.path);
  return { files: files.sort((a, b) => order(a) - order(b)), added, conflicts };
}

/** `.gitignore`: created, or the missing lines appended (a merge never loses a line). */
function planGitignore(input: InitInput): InitFile {
  const want = input.templates[GITIGNORE_TEMPLATE]!;
  const current = input.existing['.gitignore'];
  if (current === undefined) return { path: '.gitignore', content: want, action: 'create' };
  const have = new Set(current.split('\n').map((l) => l.trim()));
  const missing = want.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#') && !have.has(l.trim()) && !have.has(l.trim().replace(/\/$/, '')));
  if (missing.length === 0) return { path: '.gitignore', content: current, action: 'keep' };
  const sep = current === '' || current.endsWith('\n') ? '' : '\n';
  return { path: '.gitignore', content: `${current}${sep}${missing.join('\n')}\n`, action: 'update' };
}

type Json = Record<string, unknown>;

/**
 * package.json: created, or merged: the scripts, `"type": "module"` (stack files are ES modules),
 * podmesh and the TypeScript to check stacks with, and esbuild's install script approved (podmesh
 * builds stack files with it). Existing entries are kept; one that differs is a conflict unless `force`.
 */
function planPackageJson(input: InitInput, conflicts: Issue[], added: string[]): InitFile {
  const current = input.existing['package.json'];
  let pkg: Json;
  try {
    pkg = current === undefined ? { name: input.projectName, private: true } : (JSON.parse(current) as Json);
    if (typeof pkg !== 'object' || pkg === null || Array.isArray(pkg)) throw new Error('not an object');
  } catch (e) {
    conflicts.push({ path: 'package.json', message: `is not valid JSON (${(e as Error).message}). Fix it, then run podmesh init again.` });
    return { path: 'package.json', content: current ?? '', action: 'keep' };
  }
  const set = (where: string, obj: Json, key: string, value: unknown) => {
    if (obj[key] === undefined || obj[key] === value || input.force) obj[key] = value;
    else conflicts.push({ path: 'package.json', message: `${where}${key} is ${JSON.stringify(obj[key])}, init would set ${JSON.stringify(value)}. Change it yourself, or run podmesh init --force to replace it.` });
  };
  set('', pkg, 'type', 'module');
  const scripts = section(pkg, 'scripts');
  for (const [name, command] of Object.entries(INIT_SCRIPTS)) set('scripts.', scripts, name, command);
  added.push(...addDependencies(pkg, input.podmesh));
  const allow = section(pkg, 'allowScripts');
  if (allow.esbuild === undefined) allow.esbuild = true;
  const content = `${JSON.stringify(pkg, null, 2)}\n`;
  const action = current === undefined ? 'create' : content === current ? 'keep' : 'update';
  return { path: 'package.json', content, action };
}

/** `pkg[key]` as an object, created when absent. */
function section(pkg: Json, key: string): Json {
  const value = pkg[key];
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Json;
  const created: Json = {};
  pkg[key] = created;
  return created;
}

/** podmesh, typescript and @types/node, each unless the project already depends on it; returns those added. */
function addDependencies(pkg: Json, podmesh: PodmeshPackage): string[] {
  const has = (name: string) => ['dependencies', 'devDependencies'].some((k) => (pkg[k] as Json | undefined)?.[name] !== undefined);
  const added: string[] = [];
  if (!has(podmesh.name)) {
    section(pkg, 'dependencies')[podmesh.name] = `^${podmesh.version}`;
    added.push(podmesh.name);
  }
  for (const name of ['typescript', '@types/node']) {
    const range = podmesh.devDependencies?.[name];
    if (range && !has(name)) {
      section(pkg, 'devDependencies')[name] = range;
      added.push(name);
    }
  }
  return added;
}

/** Reads what planInit needs from the project folder and from podmesh's `templates/init/`. */
export function readInitInput(cwd: string, podmesh: PodmeshPackage, force: boolean): InitInput {
  const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);
  const existing = Object.fromEntries(INIT_PATHS.map((p) => [p, read(join(cwd, p))]));
  const names = [...Object.values(INIT_TEMPLATES), GITIGNORE_TEMPLATE];
  const templates = Object.fromEntries(names.map((n) => [n, readFileSync(packageFile(`templates/init/${n}`), 'utf8')]));
  const projectName = basename(cwd).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+/, '') || 'podmesh-project';
  return { existing, templates, podmesh, projectName, force };
}

/** Writes the files of a plan that has no conflicts. */
export function applyInit(cwd: string, plan: InitPlan): void {
  for (const f of plan.files) {
    if (f.action === 'keep') continue;
    const path = join(cwd, f.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.content);
  }
}
