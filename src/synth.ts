// The pipeline: validate every construct, resolve, render, then write (or check) `out/`.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { App } from '../constructs/core/app.ts';
import { IssueCollector, PodmeshError, type Issue } from '../constructs/core/errors.ts';
import { propIssues } from '../constructs/core/props.ts';
import { Stack } from '../constructs/core/stack.ts';
import { changed, pruneStacks, writeStackOutput, type WriteReport } from './io/writer.ts';
import { LOCK_FILE, parseLock } from './resolve/lock.ts';
import type { ResolvedStack } from './resolve/model.ts';
import { resolveStack } from './resolve/resolve.ts';
import { renderSystemd } from './render/systemd.ts';
import { contents, renderStack } from './render/stack.ts';
import { reconcileSecrets, type SecretsResult } from './state/secrets/reconcile.ts';
import { reconcilePki, type PkiResult } from './state/pki/index.ts';
import { MANIFEST } from './render/manifest.ts';
import { applyWireguardKeys, planWireguardKeys, tunnelHosts, withPublicKeys, type WireguardPlan, type WireguardResult } from './state/wireguard/index.ts';

/** Options of a synth run. */
export interface SynthOptions {
  /** Output folder. @default 'out' */
  readonly outDir?: string;
  /** State folder (keys, certificates). @default '.podmesh' */
  readonly stateDir?: string;
  /** Names of the stacks to synthesize. @default - every stack of the app */
  readonly stacks?: readonly string[];
  /** Compare only: write nothing and report what differs. @default false */
  readonly check?: boolean;
  /** Clock for certificate decisions. @default - the current time */
  readonly now?: Date;
  /** Reconcile the state folder only; leave `out/` alone (`podmesh certs issue`). @default false */
  readonly stateOnly?: boolean;
  /**
   * WireGuard keys to replace now, as host names by stack name (`podmesh wireguard rotate`).
   * @default - none: existing keys are reused
   */
  readonly rotateWireguard?: Readonly<Record<string, readonly string[]>>;
}

/** What reconcile did to one stack's state folder. */
export interface StateReport {
  readonly stack: string;
  /** WireGuard keys, for stacks with more than one host. */
  readonly wireguard?: WireguardResult;
  readonly pki: PkiResult;
  readonly secrets: SecretsResult;
}

/** What a synth run did (or, with `check`, would do). */
export interface SynthResult {
  readonly reports: readonly WriteReport[];
  /** Certificates and keys reconciled in the state folder (empty with `check`). */
  readonly state: readonly StateReport[];
  /** Stacks whose whole output folder is (or would be) removed. */
  readonly prunedStacks: readonly string[];
  /** True when `out/` differs from what synth produces. */
  readonly changed: boolean;
}

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

/** Validates and resolves stacks, reporting every problem of every stack together. */
export async function resolveStacks(stacks: readonly Stack[], outDir: string): Promise<ResolvedStack[]> {
  const issues = new IssueCollector();
  issues.addAll(validateConstructs(stacks));
  issues.throwIfAny();
  const resolved: ResolvedStack[] = [];
  for (const stack of stacks) {
    try {
      const lockPath = join(outDir, stack.node.id, LOCK_FILE);
      const lock = existsSync(lockPath) ? parseLock(await readFile(lockPath, 'utf8'), lockPath) : undefined;
      const r = resolveStack(stack, { lock });
      // Renderers refuse what a host cannot run (a Quadlet key its Podman lacks, a value no unit
      // file can carry); asking them now keeps a bad stack from touching state or out/.
      const { problems } = renderSystemd(r);
      if (problems.length > 0) throw new PodmeshError(problems);
      resolved.push(r);
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      issues.addAll(e.issues);
    }
  }
  issues.throwIfAny();
  return resolved;
}

export { renderStack, type Locations } from './render/stack.ts';
import type { Locations } from './render/stack.ts';

/**
 * Synthesizes stacks into `outDir`. Throws a PodmeshError (and writes nothing) when any stack
 * is invalid.
 */
export async function synth(app: App, options: SynthOptions = {}): Promise<SynthResult> {
  const outDir = options.outDir ?? 'out';
  const stateDir = options.stateDir ?? '.podmesh';
  const stacks = selectStacks(app, options.stacks);
  const resolved = await resolveStacks(stacks, outDir);
  // State before output: out/ never depends on key or certificate contents, but a stack whose
  // state cannot be reconciled (a corrupt CA, say) must not get new output either.
  const state = options.check
    ? []
    : await reconcileState(resolved, { stateDir, outDir, now: options.now ?? new Date(), rotateWireguard: options.rotateWireguard ?? {} });
  if (options.stateOnly) return { reports: [], state, prunedStacks: [], changed: false };
  // Public keys: from the state folder after a reconcile; with --check, as the lock file has them.
  const keyed = resolved.map((s) => withPublicKeys(s, state.find((r) => r.stack === s.name)?.wireguard?.publicKeys ?? {}));
  const rendered = keyed.map((s) => [s.name, renderStack(s, { outDir, stateDir })] as const);
  const issues = rendered.flatMap(([, r]) => r.issues);
  if (issues.length > 0) throw new PodmeshError(issues);
  const reports: WriteReport[] = [];
  for (const [name, r] of rendered) {
    reports.push(await writeStackOutput(outDir, name, contents(r.files), { check: options.check }));
  }
  const prunedStacks =
    options.stacks && options.stacks.length > 0
      ? []
      : await pruneStacks(outDir, new Set(stacksOf(app).map((s) => s.node.id)), MANIFEST, { check: options.check });
  return { reports, state, prunedStacks, changed: reports.some(changed) || prunedStacks.length > 0 };
}

/** The state folder of one stack, created private (0700) when missing. */
export async function stackStateDir(stateDir: string, stack: string): Promise<string> {
  const dir = join(stateDir, stack);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Where and how {@link reconcileState} works. */
interface StateOptions extends Locations {
  readonly now: Date;
  readonly rotateWireguard: Readonly<Record<string, readonly string[]>>;
}

/**
 * Certificates and WireGuard keys of every stack; problems of all stacks reported together, before
 * any output. WireGuard keys are checked before anything is written (a missing private key of a
 * locked public key stops synth with the state untouched) and written after the PKI.
 */
async function reconcileState(stacks: readonly ResolvedStack[], where: StateOptions): Promise<StateReport[]> {
  const { stateDir, now } = where;
  const issues = new IssueCollector();
  const reports: StateReport[] = [];
  const wireguard = new Map<string, WireguardPlan>();
  for (const s of stacks) {
    if (!s.wireguard) continue;
    try {
      wireguard.set(s.name, planWireguardKeys({
        stateDir: join(stateDir, s.name),
        stackPath: s.name,
        lockFile: join(where.outDir, s.name, LOCK_FILE),
        hosts: tunnelHosts(s),
        presharedKeys: s.wireguard.presharedKeys,
        rotate: where.rotateWireguard[s.name] ?? [],
      }));
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      issues.addAll(e.issues);
    }
  }
  issues.throwIfAny();
  for (const s of stacks) {
    try {
      const dir = await stackStateDir(stateDir, s.name);
      const pki = await reconcilePki({ stateDir: dir, authority: s.pki.authority, bindings: s.pki.bindings, now });
      const secrets = await reconcileSecrets({ stateDir: dir, stack: s.name, services: s.services });
      reports.push({ stack: s.name, pki, secrets });
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      issues.addAll(e.issues);
    }
  }
  issues.throwIfAny();
  // WireGuard keys after the PKI of every stack; their plans were checked before anything was written.
  const withKeys: StateReport[] = [];
  for (const r of reports) {
    const plan = wireguard.get(r.stack);
    withKeys.push(plan ? { ...r, wireguard: await applyWireguardKeys(plan) } : r);
  }
  return withKeys;
}
