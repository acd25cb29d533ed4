// Every file of one stack's output, from every renderer, with the problems rendering found.
import type { Issue } from '../../constructs/core/errors.ts';
import { DATA_DIR } from '../layout.ts';
import { LOCK_FILE, renderLock } from '../resolve/lock.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import { withPublicKeys } from '../resolve/public-keys.ts';
import { renderCertExpiry } from './cert-expiry.ts';
import { renderOcsp } from './ocsp.ts';
import type { ComposeLocations } from './compose.ts';
import type { RenderedFile, Rendering } from './file.ts';
import type { RenderHelper } from './helper.ts';
import { renderHyperf } from './hyperf.ts';
import { MANIFEST, renderManifest } from './manifest.ts';
import { renderOpenssl } from './openssl.ts';
import { renderMinioUsers } from './minio-users.ts';
import { outLocations, HELPED_PARTS, settle, type HelpedPart, type Part } from './parts.ts';
import { renderPostgresRoles } from './postgres-roles.ts';
import { renderTopology } from './topology.ts';
import { renderWireguard } from './wireguard.ts';
import { renderBridgeFirewall } from './bridge-firewall.ts';
import { renderSecretsUnits } from './secrets-unit.ts';
import { renderKubernetes } from './kubernetes/index.ts';
import { renderSidecars } from './sidecar/index.ts';

export { DEFAULT_STATE_DIR } from './parts.ts';

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

/**
 * Takes each file as soon as it is rendered (src/io/staged.ts writes them meanwhile); a path may
 * come again, the last text being the file's. What a rendering with problems sent is not its output.
 */
export type FileSink = (path: string, content: string) => void;

/**
 * Every renderer but Kubernetes', in the order their files and problems are listed. `many`: several
 * small files per service, cheap to render and dear to write; with a sink they render first, so its
 * writer works on them while the rest renders.
 */
const PARTS: readonly { readonly part: Part; readonly helped?: HelpedPart; readonly many?: true }[] = [
  { part: HELPED_PARTS.compose, helped: 'compose' },
  { part: HELPED_PARTS.systemd, helped: 'systemd', many: true },
  { part: renderHyperf, many: true },
  { part: renderOpenssl, many: true },
  { part: renderSidecars, many: true },
  { part: renderPostgresRoles },
  { part: renderMinioUsers },
  { part: renderTopology },
  { part: renderWireguard },
  { part: renderBridgeFirewall },
  { part: renderSecretsUnits },
  { part: renderCertExpiry },
  { part: renderOcsp },
];

/** Every file of a stack's output, manifest included, or every problem of every renderer. Pure. */
export function renderStack(stack: ResolvedStack, where: Pick<Locations, 'outDir'>, sink?: FileSink): RenderOutcome {
  const at = outLocations(stack, where.outDir);
  const renderings = renderParts(stack, at, sink, PARTS.map((_, i) => i));
  return completed(stack, renderings, sink);
}

/**
 * {@link renderStack} of `withPublicKeys(model, publicKeys)`, with a helper thread rendering the
 * compose files and systemd units meanwhile (the same files: it renders a structured clone of the
 * model). Should the helper fail, its parts render here.
 */
export async function renderStackHelped(
  model: ResolvedStack,
  publicKeys: Readonly<Record<string, string>>,
  where: Pick<Locations, 'outDir'>,
  helper: RenderHelper,
  sink?: FileSink,
): Promise<RenderOutcome> {
  const stack = withPublicKeys(model, publicKeys);
  const at = outLocations(stack, where.outDir);
  const helped = PARTS.flatMap((p, i) => (p.helped ? [i] : []));
  const away = helper.render(model, publicKeys, where.outDir, helped.map((i) => PARTS[i]!.helped!));
  const renderings = renderParts(stack, at, sink, PARTS.flatMap((p, i) => (p.helped ? [] : [i])));
  const came = await away;
  if (came) {
    helped.forEach((i, k) => (renderings[i] = came[k]!));
    if (sink && renderings.every((r) => r.problems.length === 0)) for (const i of helped) renderings[i]!.files.forEach((f, path) => sink(path, f.content));
  } else renderParts(stack, at, sink, helped, renderings);
  return completed(stack, renderings, sink);
}

/**
 * The files as hosts install them: the same as {@link renderStack} except that compose.yaml finds
 * `pki/` and `secrets/` beside it, in the host root, where `podmesh apply` puts them.
 */
export function renderInstalled(stack: ResolvedStack): RenderOutcome {
  return completed(stack, renderParts(stack, { stateDir: '.', folders: () => `./${DATA_DIR}`, installed: true }, undefined, PARTS.map((_, i) => i)));
}

/**
 * Renders the parts at `indexes` of {@link PARTS} into their places of `renderings`; with a sink, the
 * parts with many files first, each part's files sent once it rendered, until one has problems.
 */
function renderParts(stack: ResolvedStack, where: ComposeLocations, sink: FileSink | undefined, indexes: readonly number[], renderings: Rendering[] = []): Rendering[] {
  const order = sink ? [...indexes.filter((i) => PARTS[i]!.many), ...indexes.filter((i) => !PARTS[i]!.many)] : indexes;
  let failed = renderings.some((r) => r.problems.length > 0);
  for (const i of order) {
    const rendering = settle(() => PARTS[i]!.part(stack, where));
    renderings[i] = rendering;
    failed ||= rendering.problems.length > 0;
    if (sink && !failed) rendering.files.forEach((f, path) => sink(path, f.content));
  }
  return renderings;
}

/** The outcome of every part's rendering (in PARTS' order), with Kubernetes' manifests, the lock and the manifest. */
function completed(stack: ResolvedStack, renderings: readonly Rendering[], sink?: FileSink): RenderOutcome {
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
