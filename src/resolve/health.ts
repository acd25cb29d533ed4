// Health checks: the workload's own or its kind's default, with the runtime defaults applied.
import type { HealthcheckProps, Workload } from '../../constructs/model/workload.ts';
import type { ResolvedHealthcheck } from './model.ts';

const HEALTH_DEFAULTS = { interval: '10s', timeout: '5s', retries: 5, startPeriod: '10s' } as const;

/** The check a workload runs (`healthcheck: false` for none), before defaults. */
export function healthOf(w: Workload, dnsName: string | undefined): HealthcheckProps | undefined {
  return w.props.healthcheck === false ? undefined : (w.props.healthcheck ?? w.defaultHealthcheck(dnsName ?? w.name));
}

/** A check with every default applied, the command as exec form or shell. */
export function resolveHealthcheck(h: HealthcheckProps): ResolvedHealthcheck {
  return {
    command: typeof h.command === 'string' ? { shell: h.command } : { exec: [...h.command] },
    interval: h.interval ?? HEALTH_DEFAULTS.interval,
    timeout: h.timeout ?? HEALTH_DEFAULTS.timeout,
    retries: h.retries ?? HEALTH_DEFAULTS.retries,
    startPeriod: h.startPeriod ?? HEALTH_DEFAULTS.startPeriod,
  };
}
