// `podmesh certs status|issue|rotate|revoke|csr|import|bundle`: the certificates of the state folder.
import { join } from 'node:path';
import type { App } from '../../../constructs/core/app.ts';
import type { Stack } from '../../../constructs/core/stack.ts';
import { REVOCATION_REASONS, type CertKind, type RevocationReason } from '../../state/pki/types.ts';
import { HELP, type Command, type Help, type Io } from '../command.ts';
import { oneOf, parseDays, parseNow, parseOptions, stateDir, UsageError } from '../options.ts';

/**
 * Every certs sub-command takes the same options: the seed's scripts/mtls/*.sh pass one argument
 * list to several of them (`certs issue "$@"; certs status "$@"`).
 */
const options = {
  now: { type: 'string' },
  format: { type: 'string' },
  'warn-days': { type: 'string', default: '30' },
  service: { type: 'string', multiple: true },
  kind: { type: 'string', default: 'server' },
  reason: { type: 'string', default: 'unspecified' },
  output: { type: 'string' },
  'out-dir': { type: 'string' },
} as const;

/** What every certs sub-command was given. */
export interface CertsBase {
  readonly stacksDir: string;
  readonly stacks: readonly string[] | undefined;
  readonly out: string;
  readonly state: string | undefined;
  readonly now: Date | undefined;
}

type Values = ReturnType<typeof parseCertsArgs>['values'];

function parseCertsArgs(argv: readonly string[]) {
  return parseOptions(argv, options, true);
}

/** A certs row: the shared options, then `more` picks what this sub-command needs from them. */
function certs<D>(
  sub: string,
  usage: string,
  more: (v: Values, positionals: readonly string[]) => D,
  run: (base: CertsBase, data: D, io: Io) => Promise<number>,
): Command<{ base: CertsBase; data: D }> {
  return {
    name: `certs ${sub}`,
    usage,
    options,
    writes: true,
    // status and bundle only read the state folder.
    guarded: sub !== 'status' && sub !== 'bundle',
    parse(argv): { base: CertsBase; data: D } | Help {
      const { values: v, positionals } = parseCertsArgs(argv);
      if (v.help) return HELP;
      const base = { stacksDir: v.stacks, stacks: v.stack, out: v.out, state: v.state, now: parseNow(v.now) };
      return { base, data: more(v, positionals) };
    },
    run: ({ base, data }, io) => run(base, data, io),
  };
}

/** The modules the rows run on, loaded when a row runs: --help and usage errors stay light. */
async function engine() {
  const [pki, synth, ops, describe, load, workload] = await Promise.all([
    import('../../state/pki/index.ts'),
    import('../../synth.ts'),
    import('../certs-ops.ts'),
    import('../describe.ts'),
    import('../load.ts'),
    import('../../../constructs/model/workload.ts'),
  ]);
  return { ...pki, ...synth, ...ops, ...describe, ...load, ...workload };
}

/** The loaded stacks, selected, with the state folder and the clock. */
async function open(base: CertsBase, io: Io): Promise<{ app: App; stacks: Stack[]; state: string; now: Date }> {
  const { loadStacks, selectStacks } = await engine();
  const app = await loadStacks(base.stacksDir);
  return { app, stacks: selectStacks(app, base.stacks), state: stateDir(base.state, io.env), now: base.now ?? new Date() };
}

const FORMATS = ['table', 'json', 'prom', 'html'] as const;

const status = certs(
  'status',
  `  certs status [--format table|json|prom|html] [--warn-days N] [--output FILE]
                                 every certificate with its days to expiry; exit 2 if any is under N (30);
                                 html: a self-contained dashboard page (to FILE, or stdout)
`,
  (v) => ({ warnDays: parseDays(v['warn-days'], '--warn-days'), format: oneOf(v.format ?? 'table', FORMATS, '--format'), output: v.output }),
  async (base, a, io) => {
    const { certsHtml, formatStatusJson, formatStatusProm, formatStatusTable, readPkiStatus } = await engine();
    const { stacks, state, now } = await open(base, io);
    if (a.format === 'html') return certsHtml({ stacks, state, out: base.out, now, warnDays: a.warnDays, output: a.output }, io);
    let low = false;
    for (const stack of stacks) {
      const name = stack.node.id;
      const rows = await readPkiStatus(join(state, name), now);
      low ||= rows.some((r) => r.daysToExpiry < a.warnDays || r.status === 'revoked' || r.status === 'expired');
      if (a.format === 'json') io.out(formatStatusJson(rows));
      else if (a.format === 'prom') io.out(formatStatusProm(rows, name));
      else io.out(`${name}\n${formatStatusTable(rows)}\n`);
    }
    return low ? 2 : 0;
  },
);

const issue = certs(
  'issue',
  '  certs issue                    create the CAs and any missing certificates (what synth does to state)\n',
  () => ({}),
  async (base, _a, io) => {
    const { describePki, describeWireguard, synth } = await engine();
    const { app, stacks, state, now } = await open(base, io);
    const result = await synth(app, { outDir: base.out, stateDir: state, stacks: stacks.map((s) => s.node.id), now, stateOnly: true });
    for (const r of result.state) {
      io.out(`${r.stack}: ${describePki(r.pki) || 'certificates up to date'}\n`);
      const wg = r.wireguard ? describeWireguard(r.wireguard) : '';
      if (wg) io.out(`${r.stack}: ${wg}\n`);
    }
    return 0;
  },
);

const rotateRow = certs(
  'rotate',
  '  certs rotate [--service NAME]  renew certificates now (all, or the named services)\n',
  (v) => ({ services: v.service }),
  async (base, a, io) => {
    const { describePki, rotate } = await engine();
    const { stacks, state, now } = await open(base, io);
    for (const stack of stacks) {
      const r = await rotate({ stateDir: join(state, stack.node.id), now, ...(a.services ? { services: a.services } : {}) });
      io.out(`${stack.node.id}: ${describePki(r) || 'nothing to rotate'}\n`);
    }
    return 0;
  },
);

const revokeRow = certs(
  'revoke',
  `  certs revoke SERVICE [--kind server|client|public] [--reason R]
                                 revoke the current certificate, reissue it, re-sign the CRL
`,
  (v, positionals) => {
    const [service] = positionals;
    if (!service || positionals.length > 1) throw new UsageError('certs revoke takes one SERVICE, e.g. podmesh certs revoke auth --kind client');
    const kind = oneOf(v.kind, ['server', 'client', 'public'] as const satisfies readonly CertKind[], '--kind');
    return { service, kind, reason: oneOf(v.reason, REVOCATION_REASONS, '--reason') as RevocationReason };
  },
  async (base, a, io) => {
    const { describePki, revoke, Workload } = await engine();
    const { stacks, state, now } = await open(base, io);
    // Services may sit in constructs that group them (Ashchan): look through the whole stack.
    const owners = stacks.filter((s) => s.node.findAll().some((c) => Workload.isWorkload(c) && c.name === a.service));
    if (owners.length !== 1) {
      throw new UsageError(owners.length === 0 ? `no selected stack has a service "${a.service}".` : `service "${a.service}" is in stacks ${owners.map((s) => s.node.id).join(', ')}: pick one with --stack.`);
    }
    const name = owners[0]!.node.id;
    const r = await revoke({ stateDir: join(state, name), service: a.service, kind: a.kind, now, reason: a.reason });
    io.out(`${name}: ${a.service} ${a.kind} certificate revoked; ${describePki(r)}\n`);
    return 0;
  },
);

const csr = certs(
  'csr',
  `  certs csr [--out-dir DIR]      a PEM CSR per certificate for an external CA (Vault); keys stay in the state
                                 folder (default DIR: <state>/<stack>/csr)
`,
  (v) => ({ outDir: v['out-dir'] }),
  async (base, a, io) => {
    const { certsCsr } = await engine();
    const { stacks, state } = await open(base, io);
    return certsCsr({ stacks, state, out: base.out, outDir: a.outDir }, io);
  },
);

const importRow = certs(
  'import',
  `  certs import DIR               install certificates an external CA signed (DIR/ca.crt and
                                 DIR/<service>-<kind>.crt); refuses any that do not match key or binding
`,
  (_v, positionals) => {
    const [dir] = positionals;
    if (!dir || positionals.length > 1) throw new UsageError('certs import takes one DIR with ca.crt and <service>-<kind>.crt files, e.g. podmesh certs import signed/ --stack ashchan-prod');
    return { dir };
  },
  async (base, a, io) => {
    const { certsImport } = await engine();
    const { stacks, state, now } = await open(base, io);
    return certsImport({ stacks, state, out: base.out, dir: a.dir, now }, io);
  },
);

const bundleRow = certs(
  'bundle',
  `  certs bundle --format spiffe [--output FILE]
                                 the stack's trust bundle as a SPIFFE bundle (JWKS, x509-svid keys) for
                                 SPIRE federation (to FILE, or stdout); one stack (--stack)
`,
  (v, positionals) => {
    if (positionals.length > 0) throw new UsageError('certs bundle takes no arguments, e.g. podmesh certs bundle --format spiffe --stack ashchan-dev --output bundle.json');
    if (v.format === undefined) throw new UsageError('certs bundle needs --format spiffe (the one bundle format), e.g. podmesh certs bundle --format spiffe --stack ashchan-dev');
    return { format: oneOf(v.format, ['spiffe'] as const, '--format'), output: v.output };
  },
  async (base, a, io) => {
    const { certsBundle } = await engine();
    const { stacks, state } = await open(base, io);
    return certsBundle({ stacks, state, out: base.out, output: a.output }, io);
  },
);

/** The certs rows of the command table, in --help order. */
export const certsCommands = [status, issue, rotateRow, revokeRow, csr, importRow, bundleRow] as const;

/** The message for `podmesh certs <unknown>`. */
export const unknownCerts = (sub: string): string => `unknown certs command "${sub}". Use status, issue, rotate, revoke, csr, import or bundle.`;
