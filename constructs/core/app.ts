// The root of the construct tree: holds the stacks that one synth run renders.
import { Construct } from 'constructs';
import * as z from 'zod';
import { PodmeshError } from './errors.ts';
import { checkProps, propIssues } from './props.ts';

/** Options of an App. */
export interface AppProps {
  /**
   * Free-form label of the app, used in generated headers.
   * @default 'podmesh'
   */
  readonly name?: string;
}

const schema = z.object({ name: z.string().min(1).optional() });

/**
 * The root construct. Stacks are its children; `synth()` (in `src/synth.ts`) renders them.
 *
 * @example
 * const app = new App();
 * new Stack(app, 'ashchan-dev', { project: 'ashchan' });
 */
export class App extends Construct {
  /** Label of the app. */
  public readonly label: string;

  constructor(props: AppProps = {}) {
    super(undefined as unknown as Construct, '');
    const p = checkProps(this, schema, props);
    // The validation pass walks stacks, not the app: the app's own props are refused at once.
    const issues = propIssues(this);
    if (issues.length > 0) throw new PodmeshError(issues.map((i) => ({ path: '(app)', message: i.message })));
    this.label = p.name ?? 'podmesh';
  }

  /** Whether a construct is an App. */
  static isApp(x: unknown): x is App {
    return x instanceof App;
  }
}
