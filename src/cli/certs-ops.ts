// `podmesh certs status --format html`, `certs csr`, `certs import` and `certs bundle`: the CLI side (reads stacks, prints, writes files).
import { mkdir, writeFile } from 'node:fs/promises';
import { spiffeBundle } from '../state/pki/bundle.ts';
import { writeAtomic } from '../io/atomic.ts';
import { dirname, join, resolve } from 'node:path';
import type { Stack } from '../../constructs/core/stack.ts';
import { readRevocations, renderDashboard, type DashboardStack } from '../state/pki/dashboard.ts';
import { externalFileName, importSigned, writeCsrs } from '../state/pki/external.ts';
import { readPkiStatus } from '../state/pki/index.ts';
import { resolveStacks } from '../synth.ts';
import type { Io } from './command.ts';

interface Common {
  readonly stacks: readonly Stack[];
  /** State folder (all stacks). */
  readonly state: string;
  /** Output folder (for the lock files resolution reads). */
  readonly out: string;
}

/** The dashboard of the selected stacks, to `output` or stdout; exit 2 when a certificate is under `warnDays` (as the table). */
export async function certsHtml(o: Common & { readonly now: Date; readonly warnDays: number; readonly output: string | undefined }, io: Io): Promise<number> {
  const resolved = await resolveStacks(o.stacks, o.out);
  const pages: DashboardStack[] = [];
  let low = false;
  for (const r of resolved) {
    const dir = join(o.state, r.name);
    const rows = await readPkiStatus(dir, o.now);
    low ||= rows.some((x) => x.daysToExpiry < o.warnDays || x.status === 'revoked' || x.status === 'expired');
    pages.push({ name: r.name, rows, revocations: await readRevocations(dir), resolved: r });
  }
  const html = renderDashboard(pages, o.now);
  if (o.output) {
    await mkdir(dirname(o.output), { recursive: true });
    await writeFile(o.output, html);
    io.out(`wrote ${o.output} (${pages.reduce((n, p) => n + p.rows.length, 0)} certificates)\n`);
  } else io.out(html);
  return low ? 2 : 0;
}

/** One CSR per binding of each selected stack, and the Vault command to sign each. */
export async function certsCsr(o: Common & { readonly outDir: string | undefined }, io: Io): Promise<number> {
  const resolved = await resolveStacks(o.stacks, o.out);
  for (const r of resolved) {
    const outDir = o.outDir ?? join(o.state, r.name, 'csr');
    const written = await writeCsrs({
      stateDir: join(o.state, r.name),
      bindings: r.pki.bindings,
      outDir,
      ...(r.pki.authority.organization === undefined ? {} : { organization: r.pki.authority.organization }),
    });
    const created = written.filter((w) => w.keyCreated).length;
    io.out(`${r.name}: wrote ${written.length} CSRs to ${outDir}${created > 0 ? ` (${created} new keys in ${join(o.state, r.name, 'pki/services')})` : ''}\n`);
    io.out(`${r.name}: sign each (Vault role ROLE), save as <service>-<kind>.crt beside ca.crt, then: podmesh certs import DIR --stack ${r.name}\n`);
    for (const w of written) {
      const b = w.binding;
      const alt = b.dnsNames.filter((d) => d !== b.commonName);
      const crt = externalFileName(b, 'crt');
      io.out(
        `  vault write -field=certificate pki/sign/ROLE csr=@${w.path} common_name=${b.commonName}` +
          `${alt.length ? ` alt_names=${alt.join(',')}` : ''}${b.ipAddresses.length ? ` ip_sans=${b.ipAddresses.join(',')}` : ''}${b.spiffeId ? ` uri_sans=${b.spiffeId}` : ''} ttl=${b.lifetimeDays * 24}h > DIR/${crt}\n`,
      );
    }
  }
  return 0;
}

/** Installs the externally signed certificates of one stack. */
export async function certsImport(o: Common & { readonly dir: string; readonly now: Date }, io: Io): Promise<number> {
  const resolved = await resolveStacks(o.stacks, o.out);
  if (resolved.length !== 1) {
    io.err(`podmesh: certs import installs one stack's certificates: pick it with --stack (${resolved.map((r) => r.name).join(', ')}).\n`);
    return 2;
  }
  const r = resolved[0]!;
  const result = await importSigned({ stateDir: join(o.state, r.name), bindings: r.pki.bindings, dir: o.dir, now: o.now });
  io.out(`${r.name}: imported ${result.installed.length} certificates signed by the external CA (root: ${result.root}); every service's ca.crt is now the external CA.\n`);
  for (const i of result.installed) io.out(`  ${i.service}/${i.kind}: serial ${i.serial}, valid until ${i.notAfter.toISOString()}\n`);
  io.out(`${r.name}: deploy with podmesh apply; synth keeps these certificates until 70% of their lifetime, then warns to sign new CSRs.\n`);
  return 0;
}

/** The trust bundle of one stack in the SPIFFE bundle format, to `output` (0644: public) or stdout. */
export async function certsBundle(o: Common & { readonly output: string | undefined }, io: Io): Promise<number> {
  if (o.stacks.length !== 1) {
    io.err(`podmesh: certs bundle writes one stack's trust bundle: pick it with --stack (${o.stacks.map((s) => s.node.id).join(', ')}).\n`);
    return 2;
  }
  const [r] = await resolveStacks(o.stacks, o.out);
  const bundle = await spiffeBundle(join(o.state, r!.name));
  if (o.output) {
    const abs = resolve(io.cwd, o.output);
    await mkdir(dirname(abs), { recursive: true });
    await writeAtomic(abs, bundle.text, 0o644);
    io.out(`${r!.name}: wrote ${o.output}: SPIFFE bundle of trust domain ${r!.pki.trustDomain} (${bundle.keys} x509-svid ${bundle.keys === 1 ? 'key' : 'keys'} from ${bundle.source})\n`);
  } else io.out(bundle.text);
  return 0;
}
