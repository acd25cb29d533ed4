// `podmesh wireguard rotate`: new WireGuard keys for some hosts of a multi-host stack, then a synth.
import { join } from 'node:path';
import { hostKeyFile } from '../../state/wireguard/reconcile.ts';
import type { ResolvedStack } from '../../resolve/model.ts';
import { HELP, type Command } from '../command.ts';
import { parseNow, parseOptions, stateDir, UsageError } from '../options.ts';

/** What `podmesh wireguard rotate` was asked to do. */
export interface RotateArgs {
  readonly stacksDir: string;
  readonly stacks: readonly string[] | undefined;
  readonly out: string;
  readonly state: string | undefined;
  readonly now: Date | undefined;
  /** The hosts named with --host, or 'all'. */
  readonly hosts: readonly string[] | 'all';
}

const options = {
  now: { type: 'string' },
  host: { type: 'string', multiple: true },
  all: { type: 'boolean', default: false },
} as const;

export const wireguardRotateCommand: Command<RotateArgs> = {
  name: 'wireguard rotate',
  usage: `  wireguard rotate --host H [--host H2] | --all
                                 replace hosts' WireGuard keys (and their preshared keys), keep the
                                 old key as <host>.key.old, and re-synth the stack
`,
  options,
  writes: true,
  guarded: true,
  parse(argv) {
    const { values: v } = parseOptions(argv, options);
    if (v.help) return HELP;
    if (v.all === (v.host !== undefined)) {
      throw new UsageError('wireguard rotate needs --host H (repeatable) or --all, e.g. podmesh wireguard rotate --host edge --stack ashchan-prod');
    }
    return { stacksDir: v.stacks, stacks: v.stack, out: v.out, state: v.state, now: parseNow(v.now), hosts: v.all ? 'all' : [...new Set(v.host)] };
  },
  async run(a, io) {
    const [{ resolveStacks, selectStacks, synth }, { describePki, describeWireguardReports, describeWrite }, { loadStacks }] = await Promise.all([
      import('../../synth.ts'),
      import('../describe.ts'),
      import('../load.ts'),
    ]);
    const state = stateDir(a.state, io.env);
    const app = await loadStacks(a.stacksDir);
    const stack = tunnelStack(await resolveStacks(selectStacks(app, a.stacks), a.out), a.stacks !== undefined);
    const hosts = hostsToRotate(stack, a.hosts);
    const result = await synth(app, { outDir: a.out, stateDir: state, stacks: [stack.name], now: a.now, rotateWireguard: { [stack.name]: hosts } });
    for (const r of result.state) {
      const line = describePki(r.pki);
      if (line) io.out(`${r.stack}: ${line}\n`);
    }
    io.out(describeWireguardReports(result.state, state));
    for (const r of result.reports) io.out(describeWrite(r, a.out, false));
    io.out(deployNote(stack, hosts, state));
    return 0;
  },
};

/** The one selected stack with a WireGuard tunnel. */
function tunnelStack(resolved: readonly ResolvedStack[], picked: boolean): ResolvedStack {
  const tunnels = resolved.filter((s) => s.wireguard);
  if (tunnels.length !== 1) {
    throw new UsageError(tunnels.length === 0
      ? `no selected stack has more than one host, so none has WireGuard keys${picked ? '' : '. Pick a multi-host stack with --stack'}.`
      : `stacks ${tunnels.map((s) => s.name).join(', ')} all have WireGuard keys: pick one with --stack.`);
  }
  return tunnels[0]!;
}

function hostsToRotate(stack: ResolvedStack, asked: RotateArgs['hosts']): string[] {
  const hostNames = stack.wireguard!.peers.map((p) => p.host);
  const hosts = asked === 'all' ? hostNames : [...asked];
  const unknown = hosts.filter((h) => !hostNames.includes(h));
  if (unknown.length > 0) throw new UsageError(`stack ${stack.name} has no tunnel host ${unknown.map((h) => `"${h}"`).join(', ')}. Its hosts: ${hostNames.join(', ')}.`);
  return hosts;
}

/** What to deploy now, and why it is urgent. */
function deployNote(stack: ResolvedStack, hosts: readonly string[], state: string): string {
  const many = hosts.length > 1;
  return (
    `${stack.name}: deploy now: the new private key${many ? 's' : ''} to ${hosts.join(', ')} (${hosts.map((h) => join(state, stack.name, hostKeyFile(h))).join(', ')} → ` +
    `/etc/podmesh/${stack.name}/wireguard/private.key)${stack.wireguard!.presharedKeys ? ', the changed preshared keys' : ''}, and every host's new config; ` +
    `until then the rotated host${many ? 's' : ''} and ${many ? 'their' : 'its'} peers cannot talk. The old key${many ? 's are' : ' is'} kept as <host>.key.old.\n`
  );
}

