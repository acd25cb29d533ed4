// A named Podman volume holding a service's data.
import { Construct } from 'constructs';
import * as z from 'zod';
import { checkProps } from '../core/props.ts';
import { uniqueId } from '../core/unique.ts';

/** Options of a Volume. */
export interface VolumeProps {
  /**
   * Name of the Podman volume.
   * @default - `<project>-<construct ids joined by "-">`, e.g. `ashchan-postgres-data`
   */
  readonly name?: string;
}

const schema = z.object({
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, { error: 'must start with a letter or digit and hold only letters, digits, "_", "." and "-"' }).optional(),
});

/** A named volume; its host is the host of the services that mount it. */
export class Volume extends Construct {
  /** Explicit volume name, if given. */
  public readonly explicitName?: string;

  constructor(scope: Construct, id: string, props: VolumeProps = {}) {
    super(scope, uniqueId(scope, id));
    const p = checkProps(this, schema, props);
    this.explicitName = p.name;
  }

  /** Whether a construct is a Volume. */
  static isVolume(x: unknown): x is Volume {
    return x instanceof Volume;
  }
}
