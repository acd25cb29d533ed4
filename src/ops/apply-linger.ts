// Rootless first install: the user's units run under the user's systemd manager, which only runs
// while the user is logged in unless lingering is enabled. apply checks it, enables it, or says
// exactly what root has to run.
import type { CommandRunner } from './apply-run.ts';
import type { ApplyPlan } from './apply-types.ts';

/** Runs a command and returns what it printed; injected so tests answer instead of running. */
export type { CommandQuery } from './apply-health.ts';
import type { CommandQuery } from './apply-health.ts';

/** What {@link ensureLinger} found and did. */
export interface LingerResult {
  /** `on` already, `enabled` now, or `failed` (the message says what root runs). */
  readonly state: 'on' | 'enabled' | 'failed';
  /** Commands run, as text. */
  readonly ran: readonly string[];
  /** What to tell the operator (nothing when it was on). */
  readonly message?: string;
}

const WHY = 'without lingering the user\'s systemd manager, and with it the stack\'s units, stops at logout and does not start at boot';

/** Whether an apply plan needs lingering checked: a rootless host's first install on the running system. */
export function needsLinger(plan: Pick<ApplyPlan, 'rootless' | 'live' | 'firstInstall'>): boolean {
  return plan.rootless && plan.live && plan.firstInstall;
}

/**
 * Checks `loginctl show-user USER --property=Linger` and runs `loginctl enable-linger USER` when
 * it is off (or the user has no session yet, which loginctl reports as an error).
 */
export async function ensureLinger(user: string, query: CommandQuery, runner: CommandRunner): Promise<LingerResult> {
  const show = ['loginctl', 'show-user', user, '--property=Linger'];
  const ran = [show.join(' ')];
  const answer = await query(show).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
  if (answer.exitCode === 0 && /^Linger=yes$/m.test(answer.stdout)) return { state: 'on', ran };
  const enable = ['loginctl', 'enable-linger', user];
  ran.push(enable.join(' '));
  try {
    await runner(enable);
  } catch (e) {
    const error = (e as { shortMessage?: string }).shortMessage ?? (e as Error).message;
    return {
      state: 'failed',
      ran,
      message: `lingering is off for user ${user} and \`${enable.join(' ')}\` failed (${error}): ${WHY}. Run as root: loginctl enable-linger ${user}\n`,
    };
  }
  return { state: 'enabled', ran, message: `enabled lingering for user ${user} (loginctl enable-linger ${user}): ${WHY}.\n` };
}
