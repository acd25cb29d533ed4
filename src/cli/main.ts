// The podmesh command line: the only module that reads argv, prints, and sets the exit code.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PodmeshError, formatIssues } from '../../constructs/core/errors.ts';
import { Workload } from '../../constructs/model/workload.ts';
import { changed, type WriteReport } from '../io/writer.ts';
import { join } from 'node:path';
import { resolveStacks, selectStacks, synth, type StateReport } from '../synth.ts';
import { hostKeyFile, type WireguardResult } from '../state/wireguard/index.ts';
import {
  REVOCATION_REASONS,
  formatStatusJson,
  formatStatusProm,
  formatStatusTable,
  readPkiStatus,
  revoke,
  rotate,
  type CertKind,
  type PkiResult,
  type RevocationReason,
} from '../state/pki/index.ts';
import { loadStacks } from './load.ts';
import { COMMON, UsageError } from './options.ts';
import { VERIFY_USAGE, verifyCommand } from './verify.ts';
import { applyCommand, diffCommand } from './ops.ts';
import { certsHtml, certsCsr, certsImport } from './certs-ops.ts';



const USAGE = `podmesh: Podman service meshes from TypeScript stacks

Usage: podmesh <command> [options]

Commands:
  synth                          render every stack (or --stack NAME) into out/<stack>/
  certs status [--format table|json|prom|html] [--warn-days N] [--output FILE]
                                 every certificate with its days to expiry; exit 2 if any is under N (30);
                                 html: a self-contained dashboard page (to FILE, or stdout)
  certs issue                    create the CAs and any missing certificates (what synth does to state)
  certs rotate [--service NAME]  renew certificates now (all, or the named services)
  certs revoke SERVICE [--kind server|client|public] [--reason R]
                                 revoke the current certificate, reissue it, re-sign the CRL
  certs csr [--out-dir DIR]      a PEM CSR per certificate for an external CA (Vault); keys stay in the state
                                 folder (default DIR: <state>/<stack>/csr)
  certs import DIR               install certificates an external CA signed (DIR/ca.crt and
                                 DIR/<service>-<kind>.crt); refuses any that do not match key or binding
${VERIFY_USAGE}  wireguard rotate --host H [--host H2] | --all
                                 replace hosts' WireGuard keys (and their preshared keys), keep the
                                 old key as <host>.key.old, and re-synth the stack
  diff [--now ISO]               what synth would change in out/ (unified diffs) and in the state
                                 folder (certificates, keys); exit 1 when anything would change
  apply --stack S --host H [--root DIR] [--home DIR] [--dry-run] [--no-systemctl]
                                 install host H's units, configs, certificates, secrets and
                                 WireGuard keys under --root (default /), prune what left the
                                 stack, restart only what changed; --dry-run prints the plan

Options for every command:
  --stack NAME   only this stack (repeatable)
  --out DIR      output folder (default: out)
  --state DIR    state folder for keys and certificates (default: .podmesh, or $PODMESH_STATE_DIR)
  --stacks DIR   folder of stack files (default: stacks)
  --debug        print stack traces of unexpected errors
  -h, --help     this help

synth options:
  --check        write nothing; exit 1 and list the files that differ when out/ is stale
  --now ISO      the clock used for certificate decisions (default: now)
`;

/** --help was printed; the command ends with exit 0. */
class HelpShown extends Error {}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  switch (command) {
    case 'synth':
      return synthCommand(rest);
    case 'certs':
      return certsCommand(rest);
    case 'verify':
      return verifyCommand(rest, { stateDir, usage: USAGE, usageError: (m) => new UsageError(m) });
    case 'wireguard':
      return wireguardCommand(rest);
    case 'diff':
    case 'apply': {
      const sub = (a: readonly string[], o: NonNullable<ParseArgsConfig['options']>) => {
        const r = parse(a, { ...COMMON, ...o });
        if (r.values.help) {
          process.stdout.write(USAGE);
          throw new HelpShown();
        }
        return r as never;
      };
      try {
        return command === 'diff' ? await diffCommand(rest, sub, stateDir, parseNow) : await applyCommand(rest, sub, stateDir);
      } catch (e) {
        if (e instanceof HelpShown) return 0;
        throw e;
      }
    }
    default:
      throw new UsageError(`unknown command "${command}". Commands: synth, diff, apply, certs, verify, wireguard. See podmesh --help.`);
  }
}

async function synthCommand(args: readonly string[]): Promise<number> {
  const { values } = parse(args, {
    ...COMMON,
    check: { type: 'boolean', default: false },
    now: { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const now = parseNow(values.now);
  const app = await loadStacks(values.stacks);
  const result = await synth(app, {
    outDir: values.out,
    stateDir: stateDir(values.state),
    stacks: values.stack,
    check: values.check,
    now,
  });
  for (const r of result.state) {
    const line = describePki(r.pki);
    if (line) process.stdout.write(`${r.stack}: ${line}\n`);
    for (const w of r.pki.warnings) process.stdout.write(`${r.stack}: warning: ${w}\n`);
    if (r.secrets.created.length > 0) process.stdout.write(`${r.stack}: secrets: generated ${r.secrets.created.join(', ')} (in ${stateDir(values.state)}/${r.stack}/secrets/)\n`);
  }
  printWireguard(result.state, stateDir(values.state));
  for (const r of result.reports) process.stdout.write(describe(r, values.out, values.check));
  for (const s of result.prunedStacks) {
    process.stdout.write(`${s}: stack no longer exists, ${values.check ? 'out/' + s + ' would be removed' : `removed ${values.out}/${s}`}\n`);
  }
  if (values.check && result.changed) {
    process.stderr.write(`${values.out}/ is stale: run \`npm run synth\` and commit the result.\n`);
    return 1;
  }
  return 0;
}

async function certsCommand(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(
    rest,
    {
      ...COMMON,
      now: { type: 'string' },
      format: { type: 'string', default: 'table' },
      'warn-days': { type: 'string', default: '30' },
      service: { type: 'string', multiple: true },
      kind: { type: 'string', default: 'server' },
      reason: { type: 'string', default: 'unspecified' },
      output: { type: 'string' },
      'out-dir': { type: 'string' },
    },
    true,
  );
  if (values.help || sub === undefined) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const now = parseNow(values.now) ?? new Date();
  const state = stateDir(values.state);
  const app = await loadStacks(values.stacks);
  const stacks = selectStacks(app, values.stack);
  switch (sub) {
    case 'status': {
      const warnDays = Number(values['warn-days']);
      if (!Number.isInteger(warnDays) || warnDays < 0) throw new UsageError(`--warn-days "${values['warn-days']}" is not a whole number of days.`);
      if (!['table', 'json', 'prom', 'html'].includes(values.format)) throw new UsageError(`--format "${values.format}" is not one of table, json, prom, html.`);
      if (values.format === 'html') return certsHtml({ stacks, state, out: values.out, now, warnDays, output: values.output });
      let low = false;
      for (const stack of stacks) {
        const name = stack.node.id;
        const rows = await readPkiStatus(join(state, name), now);
        low ||= rows.some((r) => r.daysToExpiry < warnDays || r.status === 'revoked' || r.status === 'expired');
        if (values.format === 'json') process.stdout.write(formatStatusJson(rows));
        else if (values.format === 'prom') process.stdout.write(formatStatusProm(rows, name));
        else process.stdout.write(`${name}\n${formatStatusTable(rows)}\n`);
      }
      return low ? 2 : 0;
    }
    case 'issue': {
      const result = await synth(app, { outDir: values.out, stateDir: state, stacks: stacks.map((s) => s.node.id), now, stateOnly: true });
      for (const r of result.state) {
        process.stdout.write(`${r.stack}: ${describePki(r.pki) || 'certificates up to date'}\n`);
        const wg = r.wireguard ? describeWireguard(r.wireguard) : '';
        if (wg) process.stdout.write(`${r.stack}: ${wg}\n`);
      }
      return 0;
    }
    case 'rotate': {
      for (const stack of stacks) {
        const r = await rotate({ stateDir: join(state, stack.node.id), now, ...(values.service ? { services: values.service } : {}) });
        process.stdout.write(`${stack.node.id}: ${describePki(r) || 'nothing to rotate'}\n`);
      }
      return 0;
    }
    case 'revoke': {
      const [service] = positionals;
      if (!service || positionals.length > 1) throw new UsageError('certs revoke takes one SERVICE, e.g. podmesh certs revoke auth --kind client');
      if (!['server', 'client', 'public'].includes(values.kind)) throw new UsageError(`--kind "${values.kind}" is not one of server, client, public.`);
      if (!(REVOCATION_REASONS as readonly string[]).includes(values.reason)) throw new UsageError(`--reason "${values.reason}" is not one of ${REVOCATION_REASONS.join(', ')}.`);
      // Services may sit in constructs that group them (Ashchan): look through the whole stack.
      const owners = stacks.filter((s) => s.node.findAll().some((c) => Workload.isWorkload(c) && c.name === service));
      if (owners.length !== 1) {
        throw new UsageError(owners.length === 0 ? `no selected stack has a service "${service}".` : `service "${service}" is in stacks ${owners.map((s) => s.node.id).join(', ')}: pick one with --stack.`);
      }
      const r = await revoke({ stateDir: join(state, owners[0]!.node.id), service, kind: values.kind as CertKind, now, reason: values.reason as RevocationReason });
      process.stdout.write(`${owners[0]!.node.id}: ${service} ${values.kind} certificate revoked; ${describePki(r)}\n`);
      return 0;
    }
    case 'csr':
      return certsCsr({ stacks, state, out: values.out, outDir: values['out-dir'] });
    case 'import': {
      const [dir] = positionals;
      if (!dir || positionals.length > 1) throw new UsageError('certs import takes one DIR with ca.crt and <service>-<kind>.crt files, e.g. podmesh certs import signed/ --stack ashchan-prod');
      return certsImport({ stacks, state, out: values.out, dir, now });
    }
    default:
      throw new UsageError(`unknown certs command "${sub}". Use status, issue, rotate, revoke, csr or import.`);
  }
}

async function wireguardCommand(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parse(rest, { ...COMMON, now: { type: 'string' }, host: { type: 'string', multiple: true }, all: { type: 'boolean', default: false } });
  if (values.help || sub === undefined) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (sub !== 'rotate') throw new UsageError(`unknown wireguard command "${sub}". Use rotate.`);
  if (values.all === (values.host !== undefined)) {
    throw new UsageError('wireguard rotate needs --host H (repeatable) or --all, e.g. podmesh wireguard rotate --host edge --stack ashchan-prod');
  }
  const now = parseNow(values.now);
  const state = stateDir(values.state);
  const app = await loadStacks(values.stacks);
  const resolved = (await resolveStacks(selectStacks(app, values.stack), values.out)).filter((s) => s.wireguard);
  if (resolved.length !== 1) {
    throw new UsageError(resolved.length === 0
      ? `no selected stack has more than one host, so none has WireGuard keys${values.stack ? '' : '. Pick a multi-host stack with --stack'}.`
      : `stacks ${resolved.map((s) => s.name).join(', ')} all have WireGuard keys: pick one with --stack.`);
  }
  const stack = resolved[0]!;
  const hostNames = stack.wireguard!.peers.map((p) => p.host);
  const hosts = values.all ? hostNames : [...new Set(values.host)];
  const unknown = hosts.filter((h) => !hostNames.includes(h));
  if (unknown.length > 0) throw new UsageError(`stack ${stack.name} has no tunnel host ${unknown.map((h) => `"${h}"`).join(', ')}. Its hosts: ${hostNames.join(', ')}.`);
  const result = await synth(app, { outDir: values.out, stateDir: state, stacks: [stack.name], now, rotateWireguard: { [stack.name]: hosts } });
  for (const r of result.state) {
    const line = describePki(r.pki);
    if (line) process.stdout.write(`${r.stack}: ${line}\n`);
  }
  printWireguard(result.state, state);
  for (const r of result.reports) process.stdout.write(describe(r, values.out, false));
  process.stdout.write(
    `${stack.name}: deploy now: the new private key${hosts.length > 1 ? 's' : ''} to ${hosts.join(', ')} (${hosts.map((h) => join(state, stack.name, hostKeyFile(h))).join(', ')} → ` +
      `/etc/podmesh/${stack.name}/wireguard/private.key)${stack.wireguard!.presharedKeys ? ', the changed preshared keys' : ''}, and every host's new config; ` +
      `until then the rotated host${hosts.length > 1 ? 's' : ''} and ${hosts.length > 1 ? 'their' : 'its'} peers cannot talk. The old key${hosts.length > 1 ? 's are' : ' is'} kept as <host>.key.old.\n`,
  );
  return 0;
}

/** What reconcile did to each stack's WireGuard keys, and key files it kept although unused. */
function printWireguard(reports: readonly StateReport[], state: string): void {
  for (const r of reports) {
    if (!r.wireguard) continue;
    const wg = describeWireguard(r.wireguard);
    if (wg) process.stdout.write(`${r.stack}: ${wg}\n`);
    if (r.wireguard.unused.length > 0) {
      process.stdout.write(`${r.stack}: warning: WireGuard key files of hosts no longer in the stack were kept: ${r.wireguard.unused.map((f) => join(state, r.stack, f)).join(', ')}. Delete them once those hosts are retired.\n`);
    }
  }
}

/** One line on what reconcile did to WireGuard keys, or '' when it kept them all. */
export function describeWireguard(r: WireguardResult): string {
  const parts: string[] = [];
  for (const action of ['create', 'rotate'] as const) {
    const hosts = r.hosts.filter((h) => h.action === action).map((h) => h.host);
    if (hosts.length > 0) parts.push(`${action === 'create' ? 'created' : 'rotated'} for ${hosts.join(', ')}`);
    const pairs = r.presharedKeys.filter((p) => p.action === action).map((p) => p.pair);
    if (pairs.length > 0) parts.push(`preshared keys ${action === 'create' ? 'created' : 'rotated'} for ${pairs.join(', ')}`);
  }
  if (r.absent) parts.push('none in this state folder: configs rendered from the public keys in the lock; restore the keys (or rotate) before deploying');
  return parts.length === 0 ? '' : `WireGuard keys: ${parts.join('; ')}`;
}

function describe(r: WriteReport, out: string, check: boolean): string {
  if (!changed(r)) return `${r.stack}: up to date (${r.unchanged} files in ${out}/${r.stack})\n`;
  const verb = check ? 'differs' : 'written';
  const lines = [
    ...r.added.map((p) => `  + ${out}/${r.stack}/${p}`),
    ...r.modified.map((p) => `  ~ ${out}/${r.stack}/${p}`),
    ...r.removed.map((p) => `  - ${out}/${r.stack}/${p}`),
  ];
  const summary = `${r.added.length} added, ${r.modified.length} modified, ${r.removed.length} removed, ${r.unchanged} unchanged`;
  return `${r.stack}: ${verb}: ${summary}\n${lines.join('\n')}\n`;
}

/** One line on what reconcile did to certificates, or '' when it kept everything. */
export function describePki(r: PkiResult): string {
  const count = (a: string) => r.certificates.filter((c) => c.action === a).length;
  const parts = [
    ...r.cas.filter((c) => c.action === 'create').map((c) => `${c.ca === 'root' ? 'root CA' : 'client CA'} created`),
    ...(['create', 'renew', 'reissue'] as const).filter((a) => count(a) > 0).map((a) => `${count(a)} ${a === 'create' ? 'issued' : a === 'renew' ? 'renewed' : 'reissued'}`),
    ...(r.removedServices.length > 0 ? [`${r.removedServices.length} service folders removed`] : []),
    ...(r.crl.action !== 'keep' ? [`CRL ${r.crl.action === 'create' ? 'created' : 're-signed'}`] : []),
  ];
  if (parts.length === 0) return '';
  const details = r.certificates.filter((c) => c.action === 'renew' || c.action === 'reissue').map((c) => `\n  ${c.service}/${c.kind}: ${c.reason}`);
  const kept = count('keep') > 0 ? ` (${count('keep')} kept)` : '';
  return `certificates: ${parts.join(', ')}${kept}${details.join('')}`;
}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: readonly string[], options: O, positionals = false) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: positionals, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}. See podmesh --help.`);
  }
}

function parseNow(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const d = new Date(text);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(text)) {
    throw new UsageError(`--now "${text}" is not an ISO-8601 time, e.g. 2027-01-31T12:00:00Z.`);
  }
  return d;
}

function stateDir(flag: string | undefined): string {
  return flag ?? process.env.PODMESH_STATE_DIR ?? '.podmesh';
}

const debug = process.argv.includes('--debug');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof PodmeshError) {
      // Commands that only read (verify, diff) or report their own progress (apply) write nothing here to deny.
      const quiet = ['verify', 'diff', 'apply'].includes(process.argv[2] ?? '');
      process.stderr.write(`podmesh: ${e.issues.length} problem${e.issues.length === 1 ? '' : 's'}${quiet ? '.' : '; nothing was written.'}\n${formatIssues(e.issues)}\n`);
      process.exitCode = 1;
    } else if (e instanceof UsageError) {
      process.stderr.write(`podmesh: ${e.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`podmesh: unexpected error: ${debug ? (e as Error).stack : (e as Error).message}\n${debug ? '' : 'Run again with --debug for the stack trace, and report it.\n'}`);
      process.exitCode = 70;
    }
  },
);
