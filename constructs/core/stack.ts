// A stack is one environment (ashchan-dev, ashchan-prod): the unit of synth, state and output.
import { Construct } from 'constructs';
import { z } from 'zod';
import { DNS_LABEL } from './names.ts';
import { checkProps } from './props.ts';
import { uniqueId } from './unique.ts';

/** Options of a Stack. */
export interface StackProps {
  /**
   * Project name: the compose project, and the prefix of container, volume and unit names.
   * @default - the stack's id
   * @see https://github.com/compose-spec/compose-spec/blob/main/spec.md#name-top-level-element
   */
  readonly project?: string;
  /**
   * One line saying what the stack is for, shown in TOPOLOGY.md.
   * @default - none
   */
  readonly description?: string;
}

const schema = z.object({
  project: z
    .string()
    .regex(DNS_LABEL, {
      error: 'must be a lower-case DNS label (letters, digits, inner hyphens), e.g. "ashchan"',
    })
    .optional(),
  description: z.string().optional(),
});

/**
 * One environment. Holds hosts, networks, volumes and services; synthesized into
 * `out/<stack>/` with its state in `.podmesh/<stack>/`.
 */
export class Stack extends Construct {
  /** Compose project and name prefix. */
  public readonly project: string;
  /** What the stack is for. */
  public readonly description?: string;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, uniqueId(scope, id));
    const p = checkProps(this, schema, props);
    if (!DNS_LABEL.test(id)) {
      this.node.addValidation({
        validate: () => [`stack name "${id}" must be a lower-case DNS label, it names a folder and units`],
      });
    }
    this.project = p.project ?? id;
    this.description = p.description;
  }

  /** The stack a construct belongs to. */
  static of(c: Construct): Stack {
    for (let s: Construct | undefined = c; s; s = s.node.scope) {
      if (s instanceof Stack) return s;
    }
    throw new Error(`${c.node.path} is not inside a Stack`);
  }

  /** Whether a construct is a Stack. */
  static isStack(x: unknown): x is Stack {
    return x instanceof Stack;
  }
}
