// The renderers of a stack's output as parts that can run apart: where the compose file finds the
// state folder, and the parts a helper thread renders (src/render/helper.ts) beside the main
// thread. Shared by src/render/stack.ts and the helper's thread (render-worker.ts), which loads only
// this module and the renderers it names, not every renderer.
import { dirname, join, relative, resolve, sep } from 'node:path';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { DATA_DIR, hostOutDir, stackDir } from '../layout.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import { renderCompose, STATE_TOKEN, type ComposeLocations } from './compose.ts';
import type { RenderedFile, Rendering } from './file.ts';
import { renderSystemd } from './systemd.ts';

/** The state folder's name when neither --state nor $PODMESH_STATE_DIR names another. */
export const DEFAULT_STATE_DIR = '.podmesh';

/** Where the compose files of `stack`'s copy in `outDir` find the state folder. */
export function outLocations(stack: ResolvedStack, outDir: string): ComposeLocations {
  // Every host folder is at the same depth, so one relative path serves them all. The files name
  // the state folder by a variable whose default is `.podmesh` beside out/, so that out/ is the
  // same for every --state (README, "Running the compose file").
  const hostDir = join(resolve(outDir), stackDir(stack.name), hostOutDir('_'));
  const stateDefault = relative(hostDir, join(dirname(resolve(outDir)), DEFAULT_STATE_DIR)).split(sep).join('/');
  const stateDir = `${STATE_TOKEN}/${stackDir(stack.name)}`;
  return { stateDir, stateDefault, folders: (host) => `${stateDir}/${DATA_DIR}/${host}` };
}

/** One renderer: its files, or its files and problems. */
export type Part = (stack: ResolvedStack, where: ComposeLocations) => ReadonlyMap<string, RenderedFile> | Rendering;

/**
 * The parts a helper thread renders for a copy in out/: the two that take longest per service and
 * need nothing but the model (about half of the rendering of a large stack).
 */
export const HELPED_PARTS = {
  compose: renderCompose,
  systemd: renderSystemd,
} satisfies Record<string, Part>;

export type HelpedPart = keyof typeof HELPED_PARTS;

/** Runs a renderer; one that cannot go on (a template failing) gives its problems, so the others still report. */
export function settle(render: () => ReadonlyMap<string, RenderedFile> | Rendering): Rendering {
  try {
    const r = render();
    return r instanceof Map ? { files: r, problems: [] } : (r as Rendering);
  } catch (e) {
    if (!(e instanceof PodmeshError)) throw e;
    return { files: new Map(), problems: e.issues };
  }
}
