// Loads the stack files of a folder into one App: each `stacks/*.ts` default-exports `(app) => void`.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App } from '../../constructs/core/app.ts';
import { IssueCollector, PodmeshError } from '../../constructs/core/errors.ts';
import { whileLoadingStackFile } from '../../constructs/core/stack-file.ts';
import { Stack } from '../../constructs/core/stack.ts';
import { compare } from '../io/sort.ts';
import { buildStacks, removeOneOffBuilds, type BuildProblem, type BuiltStacks } from './stack-build.ts';

/** A stack file's default export; it may be async (an awaited promise, reported like a throw). */
export type StackDefinition = (app: App) => void | Promise<void>;

/**
 * A stack file that does not compile, cannot import a module, or throws, as `[path] problem`:
 * where (file:line:column when known) and what, without the loader's words or a stack trace.
 */
export function loadProblem(e: unknown, where: string, abs: string): [path: string, message: string] {
  const err = e as { name?: string; message?: string; code?: string; stack?: string };
  // eslint-disable-next-line no-control-regex
  const message = String(err?.message ?? e).replace(/\x1b\[[0-9;]*m/g, '');
  // The TypeScript loader's words: esbuild (tsx) "Transform failed with 1 error:\n/abs/file.ts:1:36:
  // ERROR: Unexpected \";\"", oxc (vite) "[PARSE_ERROR] Expected `}` …" with a `file.ts:1:26` frame.
  if (/^Transform failed/.test(message)) {
    const text = /: ERROR: (.*)$/m.exec(message)?.[1] ?? /\[PARSE_ERROR\] (.*)$/m.exec(message)?.[1] ?? message.split('\n')[1] ?? message;
    const at = /\.[cm]?[jt]s:(\d+):(\d+)/.exec(message);
    return [at ? `${where}:${at[1]}:${at[2]}` : where, `does not compile: ${text.trim()}. Fix the stack file and run again.`];
  }
  if (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND') {
    const name = /Cannot find (?:package|module) '([^']+)'/.exec(message)?.[1] ?? message;
    return [where, `imports ${name}, which cannot be found. Install it (npm install) or fix the import path.`];
  }
  // A throw while the stack function ran: the first frame in the stack file says where.
  const frame = err?.stack?.split('\n').find((l) => l.includes(abs));
  const at = frame ? /:(\d+):(\d+)\)?$/.exec(frame) : null;
  const kind = err?.name && err.name !== 'Error' ? `${err.name}: ` : '';
  return [at ? `${where}:${at[1]}:${at[2]}` : where, `threw ${kind}${message}. Fix the stack file (or the code it calls) and run again.`];
}

/**
 * A command lives for seconds, and V8's defaults are made for processes that live for hours. Set
 * by the commands that load stacks, before the first one loads (`node:v8` costs a few ms to load:
 * `--help` does without); a flag given to node itself (`NODE_OPTIONS`, node's own arguments) is
 * kept. See README, "V8's optimizing compiler" and "V8's heap growth".
 * - `--interrupt-budget`: at V8's default eagerness its optimizing compiler, on background threads,
 *   spends more CPU on the functions run once per service than their optimized code saves: about a
 *   second in a 1,000-service synth, on two cores taken from the rendering and the output writer.
 *   Eight times the default budget (66 KB) optimizes only what stays hot longer.
 * - `--heap-growing-percent`: after a full collection V8 lets the heap grow up to four times what
 *   survived before the next one. A synth's garbage comes in one burst (rendering, then the
 *   record), so its peak memory depended on when that collection happened to run: the 50-host
 *   mesh's first synth peaked at 283 to 338 MB from one change to the next. Twice what survived
 *   keeps it at 270 to 292 MB, for a few more collections (no change in time measured).
 */
async function commandV8Flags(): Promise<void> {
  if (tuned) return;
  tuned = true;
  const todo = v8FlagsToSet(`${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`);
  if (todo.length === 0) return;
  const { setFlagsFromString } = await import('node:v8');
  for (const f of todo) setFlagsFromString(f);
}
let tuned = false;
/** The V8 flags the commands set (bench/run.ts gives them to its in-process synth of the mesh, so that it runs the engine as the command does). */
export const COMMAND_V8_FLAGS: readonly string[] = ['--interrupt-budget=540672', '--heap-growing-percent=100'];

/** Which of {@link COMMAND_V8_FLAGS} to set, given node's own options (`NODE_OPTIONS` and its arguments): those not given there in either spelling. */
export function v8FlagsToSet(nodeOptions: string): string[] {
  const given = new Set(nodeOptions.split(/\s+/).map((o) => o.split('=')[0]!.replaceAll('_', '-')));
  return COMMAND_V8_FLAGS.filter((f) => !given.has(f.split('=')[0]!));
}

/**
 * Imports every `*.ts` file directly in `dir` (sorted by name; sub-folders hold shared code) and
 * lets each add its stacks to a new App. Problems of all files are reported together.
 */
export async function loadStacks(dir: string): Promise<App> {
  await commandV8Flags();
  const abs = resolve(dir);
  if (!existsSync(abs)) {
    throw PodmeshError.at(dir, 'no such folder. Stacks live in stacks/*.ts, each default-exporting (app: App) => void; pass --stacks DIR for another folder.');
  }
  const files = (await readdir(abs, { withFileTypes: true }))
    .filter((e) => e.isFile() && /\.(ts|mts|js|mjs)$/.test(e.name) && !/\.(test|spec|d)\./.test(e.name))
    .map((e) => e.name)
    .sort(compare);
  const built = await builtStacks(abs, files);
  const app = new App();
  const issues = new IssueCollector();
  for (const file of files) {
    const where = join(dir, file);
    const js = built?.get(join(abs, file));
    if (js && 'problems' in js) {
      for (const p of js.problems) issues.add(...buildProblem(p, where, join(abs, file)));
      continue;
    }
    try {
      const mod = (await import(js ? js.url : pathToFileURL(join(abs, file)).href)) as { default?: unknown };
      if (typeof mod.default !== 'function') {
        issues.add(where, 'has no default export. A stack file default-exports a function (app: App) => void that creates its Stack.');
        continue;
      }
      const before = app.node.children.length;
      // Paths a stack gives (envFiles) resolve against the stack file's folder, not the cwd.
      await whileLoadingStackFile(join(abs, file), () => (mod.default as StackDefinition)(app));
      // A Stack of another copy of podmesh (a stack file importing podmesh by a path, or a second
      // install) is a construct this one cannot see: say so rather than synthesizing nothing.
      const foreign = app.node.children.slice(before).filter((c) => !Stack.isStack(c));
      if (foreign.length > 0) {
        issues.add(where, `created ${foreign.map((c) => `"${c.node.id}"`).join(', ')}, but not as a Stack of this podmesh: the file imports another copy of podmesh. Import the constructs from 'podmesh' (import { Stack } from 'podmesh'), with podmesh installed once in the project.`);
        continue;
      }
      if (app.node.children.length === before) {
        issues.add(where, 'created no stack. Its default export should create one, e.g. new Stack(app, \'dev\'); shared code goes in a sub-folder (stacks/lib/).');
      }
    } catch (e) {
      if (e instanceof PodmeshError) issues.addAll(e.issues);
      else issues.add(...loadProblem(e, where, join(abs, file)));
    }
  }
  if (built) removeOneOffBuilds(built);
  issues.throwIfAny();
  return app;
}

/** A build problem as `[path] problem`, in loadProblem's words. */
function buildProblem(p: BuildProblem, where: string, abs: string): [path: string, message: string] {
  if (p.missing) return [where, `imports ${p.missing}, which cannot be found. Install it (npm install) or fix the import path.`];
  const [file, line, column] = p.at ? [p.at.replace(/:\d+:\d+$/, ''), ...p.at.split(':').slice(-2)] : [];
  if (file !== undefined && resolve(file) === abs) return [`${where}:${line}:${column}`, `does not compile: ${p.message}. Fix the stack file and run again.`];
  return [where, `does not compile: ${p.at ? `${p.at}: ` : ''}${p.message}. Fix the stack file (or the file it imports) and run again.`];
}

declare const __PODMESH_BUNDLED__: boolean | undefined;

/**
 * The stack files as JavaScript (src/cli/stack-build.ts) when the command runs built (dist/, where
 * the build defines `__PODMESH_BUNDLED__`) and a stack file is TypeScript; undefined when they are
 * imported as they are: plain JavaScript, or from the sources (the tests run them through vite,
 * which loads TypeScript itself).
 */
async function builtStacks(abs: string, files: readonly string[]): Promise<BuiltStacks | undefined> {
  if (typeof __PODMESH_BUNDLED__ === 'undefined' || !files.some((f) => /\.m?ts$/.test(f))) return undefined;
  // Stack traces of a throwing stack file point at its own lines (the build carries source maps).
  process.setSourceMapsEnabled(true);
  return buildStacks(abs, files.map((f) => join(abs, f)));
}
