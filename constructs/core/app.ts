// The root of the construct tree: holds the stacks that one synth run renders.
import { Construct } from 'constructs';

/** Options of an App. */
export interface AppProps {
  /**
   * Free-form label of the app, used in generated headers.
   * @default 'podmesh'
   */
  readonly name?: string;
}

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
    this.label = props.name ?? 'podmesh';
  }

  /** Whether a construct is an App. */
  static isApp(x: unknown): x is App {
    return x instanceof App;
  }
}
