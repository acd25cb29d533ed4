// Every file of one stack's output, from every renderer, with the problems rendering found.
import { join, relative, sep } from 'node:path';
import { PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import { LOCK_FILE, renderLock } from '../resolve/lock.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import { renderCertExpiry } from './cert-expiry.ts';
import { renderCompose } from './compose.ts';
import type { RenderedFile } from './file.ts';
import { renderHyperf } from './hyperf.ts';
import { MANIFEST, renderManifest } from './manifest.ts';
import { renderOpenssl } from './openssl.ts';
import { renderSystemd } from './systemd.ts';
import { renderTopology } from './topology.ts';
import { renderWireguard } from './wireguard.ts';

/** Where the output and the state of a synth live; renderers get paths between them. */
export interface Locations {
  readonly outDir: string;
  readonly stateDir: string;
}

/** A stack's rendered output: every file (manifest included) when there were no problems. */
export interface RenderOutcome {
  readonly files: ReadonlyMap<string, RenderedFile>;
  readonly issues: readonly Issue[];
}

/** Every file of a stack's output, manifest included. Pure. */
export function renderStack(stack: ResolvedStack, where: Locations): RenderOutcome {
  const text = new Map<string, string>();
  const add = (m: Map<string, string>) => m.forEach((v, k) => text.set(k, v));
  // Every host folder is at the same depth, so one relative path serves them all.
  const hostDir = join(where.outDir, stack.name, 'hosts', '_');
  const stateDir = relative(hostDir, join(where.stateDir, stack.name)).split(sep).join('/');
  try {
    add(renderCompose(stack, { stateDir }));
    add(renderSystemd(stack));
    add(renderHyperf(stack));
    add(renderOpenssl(stack));
    add(renderTopology(stack));
    add(renderWireguard(stack));
    add(renderCertExpiry(stack));
  } catch (e) {
    if (!(e instanceof PodmeshError)) throw e;
    return { files: new Map(), issues: e.issues };
  }
  text.set(LOCK_FILE, renderLock(stack.lock));
  text.set(MANIFEST, renderManifest(stack.name, text));
  const files = new Map<string, RenderedFile>();
  for (const [path, content] of text) files.set(path, { content });
  return { files, issues: [] };
}

/** The text of each file, for writers and comparisons that need nothing else. */
export function contents(files: ReadonlyMap<string, RenderedFile>): Map<string, string> {
  return new Map([...files].map(([path, f]) => [path, f.content]));
}
