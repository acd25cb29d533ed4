// An application service of the mesh: reachable over mTLS at https://<name>.<domain>:<port>.
import type { Construct } from 'constructs';
import { z } from 'zod';
import { Workload, workloadSchema, type HealthcheckProps, type WorkloadProps } from './workload.ts';

/** mTLS listener of a service. */
export interface MtlsProps {
  /**
   * Port of the mTLS listener inside the container.
   * @default 8443
   */
  readonly port?: number;
}

/** Options of an application Service. */
export interface ServiceProps extends WorkloadProps {
  /**
   * The mTLS listener.
   * @default { port: 8443 }
   */
  readonly mtls?: MtlsProps;
}

const schema = workloadSchema.extend({
  mtls: z
    .object({ port: z.number().int().min(1).max(65535, { error: 'ports are 1-65535' }).optional() })
    .optional(),
});

/** Certificate paths inside every mTLS container (the seed's `/etc/mtls`). */
export const MTLS_DIR = '/etc/mtls';

/**
 * An application service behind mTLS (gateway, auth, boards, …): it gets a server and a client
 * certificate, the seed's environment, and is called at `https://<name>.<domain>:8443`.
 */
export class Service extends Workload {
  public readonly kind = 'app' as const;
  /** mTLS port inside the container. */
  public readonly mtlsPort: number;

  constructor(scope: Construct, id: string, props: ServiceProps) {
    super(scope, id, props, schema as unknown as z.ZodType<WorkloadProps>);
    this.mtlsPort = (this.props as ServiceProps).mtls?.port ?? 8443;
  }

  /** GET /health over mTLS with the service's own client certificate. */
  defaultHealthcheck(dnsName: string): HealthcheckProps {
    return {
      command: [
        'curl', '-fsS', '--max-time', '4',
        '--cacert', `${MTLS_DIR}/ca.crt`, '--cert', `${MTLS_DIR}/client.crt`, '--key', `${MTLS_DIR}/client.key`,
        `https://${dnsName}:${this.mtlsPort}/health`,
      ],
    };
  }

  /** Whether a construct is a Service. */
  static isService(x: unknown): x is Service {
    return x instanceof Service;
  }
}
