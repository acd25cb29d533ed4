// Every file of one stack's output, from every renderer, with the problems rendering found.
import { dirname, join, relative, resolve, sep } from 'node:path';
import { PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import { DATA_DIR, hostOutDir, stackDir } from '../layout.ts';
import { LOCK_FILE, renderLock } from '../resolve/lock.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import { renderCertExpiry } from './cert-expiry.ts';
import { renderOcsp } from './ocsp.ts';
import { renderCompose, STATE_TOKEN, type ComposeLocations } from './compose.ts';
import type { RenderedFile, Rendering } from './file.ts';
import { renderHyperf } from './hyperf.ts';
import { MANIFEST, renderManifest } from './manifest.ts';
import { renderOpenssl } from './openssl.ts';
import { renderMinioUsers } from './minio-users.ts';
import { renderPostgresRoles } from './postgres-roles.ts';
import { renderSystemd } from './systemd.ts';
import { renderTopology } from './topology.ts';
import { renderWireguard } from './wireguard.ts';
import { renderBridgeFirewall } from './bridge-firewall.ts';
import { renderSecretsUnits } from './secrets-unit.ts';
import { renderKubernetes } from './kubernetes/index.ts';
import { withProgress } from './progress.ts';
import { renderSidecars } from './sidecar/index.ts';

/** The state folder's name when neither --state nor $PODMESH_STATE_DIR names another. */
export const DEFAULT_STATE_DIR = '.podmesh';

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

/** Every file of a stack's output, manifest included, or every problem of every renderer. Pure. */
export function renderStack(stack: ResolvedStack, where: Pick<Locations, 'outDir'>, sink?: FileSink): RenderOutcome {
  // Every host folder is at the same depth, so one relative path serves them all. The files name
  // the state folder by a variable whose default is `.podmesh` beside out/, so that out/ is the
  // same for every --state (README, "Running the compose file").
  const hostDir = join(resolve(where.outDir), stackDir(stack.name), hostOutDir('_'));
  const stateDefault = relative(hostDir, join(dirname(resolve(where.outDir)), DEFAULT_STATE_DIR)).split(sep).join('/');
  const stateDir = `${STATE_TOKEN}/${stackDir(stack.name)}`;
  return renderWith(stack, { stateDir, stateDefault, folders: (host) => `${stateDir}/${DATA_DIR}/${host}` }, sink);
}

/**
 * The files as hosts install them: the same as {@link renderStack} except that compose.yaml finds
 * `pki/` and `secrets/` beside it, in the host root, where `podmesh apply` puts them.
 */
export function renderInstalled(stack: ResolvedStack): RenderOutcome {
  return renderWith(stack, { stateDir: '.', folders: () => `./${DATA_DIR}`, installed: true });
}

/** One renderer, as renderWith calls it. */
type Part = (stack: ResolvedStack, where: ComposeLocations) => ReadonlyMap<string, RenderedFile> | Rendering;

/**
 * Takes each file as soon as it is rendered (src/io/staged.ts writes them meanwhile); a path may
 * come again, the last text being the file's. What a rendering with problems sent is not its output.
 * Its `progress`, if any, is called between the items of the renderers' long loops (src/render/progress.ts).
 */
export type FileSink = ((path: string, content: string) => void) & { readonly progress?: () => void };

/** Every renderer but Kubernetes', in the order their files and problems are listed. */
const PARTS: readonly Part[] = [
  renderCompose,
  renderSystemd,
  renderHyperf,
  renderOpenssl,
  renderSidecars,
  renderPostgresRoles,
  renderMinioUsers,
  renderTopology,
  renderWireguard,
  renderBridgeFirewall,
  renderSecretsUnits,
  renderCertExpiry,
  renderOcsp,
];

/**
 * With a sink, these render first, most files first: several small files per service, cheap to
 * render and dear to write, so the sink's writer works on them while the rest renders.
 */
const MANY_FILES: readonly Part[] = [renderHyperf, renderOpenssl, renderSidecars, renderSystemd];

/** Runs a renderer; one that cannot go on (a template failing) gives its problems, so the others still report. */
function settle(render: () => ReadonlyMap<string, RenderedFile> | Rendering): Rendering {
  try {
    const r = render();
    return r instanceof Map ? { files: r, problems: [] } : (r as Rendering);
  } catch (e) {
    if (!(e instanceof PodmeshError)) throw e;
    return { files: new Map(), problems: e.issues };
  }
}

function renderWith(stack: ResolvedStack, where: ComposeLocations, sink?: FileSink): RenderOutcome {
  return withProgress(sink?.progress, () => renderParts(stack, where, sink));
}

function renderParts(stack: ResolvedStack, where: ComposeLocations, sink?: FileSink): RenderOutcome {
  // With a sink, the parts with many files first; each part's files are sent once it rendered,
  // until one has problems.
  const first = sink ? MANY_FILES.map((p) => PARTS.indexOf(p)) : [];
  const order = [...first, ...[...PARTS.keys()].filter((i) => !first.includes(i))];
  const renderings: Rendering[] = [];
  let failed = false;
  for (const i of order) {
    const rendering = settle(() => PARTS[i]!(stack, where));
    renderings[i] = rendering;
    failed ||= rendering.problems.length > 0;
    if (sink && !failed) rendering.files.forEach((f, path) => sink(path, f.content));
  }
  const files = new Map<string, RenderedFile>();
  const problems: Issue[] = [];
  for (const rendering of renderings) {
    problems.push(...rendering.problems);
    rendering.files.forEach((f, path) => files.set(path, f));
  }
  if (problems.length > 0) return { files: new Map(), issues: problems };
  // Its ConfigMaps carry the files rendered above, so it runs last, and only when they rendered.
  const kubernetes = settle(() => renderKubernetes(stack, files));
  if (kubernetes.problems.length > 0) return { files: new Map(), issues: [...kubernetes.problems] };
  kubernetes.files.forEach((f, path) => files.set(path, f));
  if (sink) kubernetes.files.forEach((f, path) => sink(path, f.content));
  files.set(LOCK_FILE, { content: renderLock(stack.lock) });
  files.set(MANIFEST, { content: renderManifest(stack.name, files) });
  if (sink) for (const path of [LOCK_FILE, MANIFEST]) sink(path, files.get(path)!.content);
  return { files, issues: [] };
}

/** The text of each file, for writers and comparisons that need nothing else. */
export function contents(files: ReadonlyMap<string, RenderedFile>): Map<string, string> {
  return new Map([...files].map(([path, f]) => [path, f.content]));
}
