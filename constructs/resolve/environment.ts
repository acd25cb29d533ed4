// The environment podmesh generates for a workload; user variables must not clash with it.

/** What the generator knows about a workload when it builds its environment. */
export interface EnvironmentContext {
  readonly serviceName: string;
  readonly dnsName: string;
}

/** Generated variables of one workload, in the seed's order. */
export function generatedEnvironment(kind: 'app' | 'infra', ctx: EnvironmentContext): [string, string][] {
  if (kind === 'infra') return [];
  return [
    ['SERVICE_NAME', ctx.serviceName],
    ['SERVICE_DNS_NAME', ctx.dnsName],
  ];
}
