// Runs the Quadlet and systemd validators and reads what they print.
import { spawnSync } from 'node:child_process';

/** Output of one validator run. */
export interface RunResult {
  /** Exit status (null when killed). */
  readonly status: number | null;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
}

/** Runs a validator synchronously with extra environment variables. */
export function run(path: string, args: readonly string[], env: Record<string, string> = {}): RunResult {
  const r = spawnSync(path, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `quadlet -dryrun` on a folder and splits its output into generated services by name. */
export function quadletDryRun(quadlet: string, dir: string, user = true): RunResult & { services: Map<string, string> } {
  const result = run(quadlet, user ? ['-dryrun', '-user'] : ['-dryrun'], { QUADLET_UNIT_DIRS: dir });
  const services = new Map<string, string>();
  let current: string | undefined;
  for (const line of result.stdout.split('\n')) {
    const header = /^---(.+)---$/.exec(line);
    if (header?.[1]) {
      current = header[1];
      services.set(current, '');
    } else if (current !== undefined) {
      services.set(current, `${services.get(current) ?? ''}${line}\n`);
    }
  }
  return { ...result, services };
}

/** Quadlet's stderr without its dry-run progress lines ("Loading source unit file …"). */
export function quadletComplaints(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/Loading source unit file /.test(l));
}
