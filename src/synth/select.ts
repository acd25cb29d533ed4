// Which stacks a run covers, their construct-level problems, and resolution for commands that need only the model.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { App } from '../../constructs/core/app.ts';
import { IssueCollector, PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import { propIssues } from '../../constructs/core/props.ts';
import { Stack } from '../../constructs/core/stack.ts';
import { LOCK_FILE, parseLock } from '../resolve/lock.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import { tryResolveStack, type ResolveOutcome } from '../resolve/resolve.ts';

/** Stacks of an app, in construct order. */
export function stacksOf(app: App): Stack[] {
  return app.node.children.filter(Stack.isStack);
}

/** Picks stacks by name; an unknown name is an error listing the known ones. */
export function selectStacks(app: App, names?: readonly string[]): Stack[] {
  const all = stacksOf(app);
  if (!names || names.length === 0) return all;
  const issues = new IssueCollector();
  const picked: Stack[] = [];
  for (const name of names) {
    const s = all.find((x) => x.node.id === name);
    if (s) picked.push(s);
    else issues.add('', `unknown stack "${name}". Known stacks: ${all.map((x) => x.node.id).join(', ') || '(none)'}.`);
  }
  issues.throwIfAny();
  return picked;
}

/** Every problem recorded on constructs at creation or by `node.addValidation`, pre-order. */
export function validateConstructs(stacks: readonly Stack[]): Issue[] {
  const issues: Issue[] = [];
  for (const stack of stacks) {
    for (const c of stack.node.findAll()) {
      issues.push(...propIssues(c));
      for (const message of c.node.validate()) issues.push({ path: c.node.path, message });
    }
  }
  return issues;
}

/**
 * Validates and resolves one stack with the lock file of `out/<stack>/`: the model (when
 * resolution got that far) and every problem. A stack whose constructs are invalid is not resolved.
 */
export async function resolveWithLock(stack: Stack, outDir: string): Promise<ResolveOutcome> {
  const invalid = validateConstructs([stack]);
  if (invalid.length > 0) return { issues: invalid };
  const lockPath = join(outDir, stack.node.id, LOCK_FILE);
  try {
    const lock = existsSync(lockPath) ? parseLock(await readFile(lockPath, 'utf8'), lockPath) : undefined;
    return tryResolveStack(stack, { lock });
  } catch (e) {
    if (!(e instanceof PodmeshError)) throw e;
    return { issues: e.issues };
  }
}

/**
 * Validates and resolves stacks, reporting every problem of every stack together: for commands
 * that need the resolved models only (certs, verify, apply, wireguard). Render-time problems are
 * the plan's business ({@link planSynth}).
 */
export async function resolveStacks(stacks: readonly Stack[], outDir: string): Promise<ResolvedStack[]> {
  const issues = new IssueCollector();
  const resolved: ResolvedStack[] = [];
  for (const stack of stacks) {
    const r = await resolveWithLock(stack, outDir);
    issues.addAll(r.issues);
    if (r.resolved) resolved.push(r.resolved);
  }
  issues.throwIfAny();
  return resolved;
}
