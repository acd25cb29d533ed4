// The constructs' text (src/synth/inputs.ts), which lets the fast path skip resolution: the same for
// the same stack, different for any change resolution could see, and refused (NotPlain) for any
// construct whose class or fields could decide the model in a way the text does not hold.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Construct } from 'constructs';
import { afterAll, describe, expect, it } from 'vitest';
import { App, Host, Network, Postgres, Service, Stack } from 'podmesh';
import { NotPlain } from '../src/synth/canonical.ts';
import { constructsText, hashConstructs } from '../src/synth/inputs.ts';
import { TextHash } from '../src/synth/canonical.ts';
import { createHash } from 'node:crypto';
import { tempDir } from './helpers/stacks.ts';

const tmp = tempDir('podmesh-inputs-');
afterAll(() => tmp.cleanup());

interface Variant {
  readonly label?: string;
  readonly webImage?: string;
  readonly extra?: boolean;
  readonly webId?: string;
  readonly allow?: boolean;
  readonly envFile?: string;
  readonly tweak?: (stack: Stack, web: Service) => void;
}

/** One stack with a database and two services; each variant field changes one thing. */
function stackOf(v: Variant = {}): Stack {
  const app = new App(v.label ? { name: v.label } : {});
  const stack = new Stack(app, 'one', { project: 'one' });
  new Host(stack, 'local');
  const net = new Network(stack, 'mesh', { subnet: '10.91.0.0/24', domain: 'one.local' });
  const db = new Postgres(stack, 'db', { network: net });
  const api = new Service(stack, 'api', { image: 'localhost/api:1', network: net, dependsOn: [db], ports: { http: 9000 }, ...(v.envFile ? { envFiles: [v.envFile] } : {}) });
  const web = new Service(stack, v.webId ?? 'web', { image: v.webImage ?? 'localhost/web:1', network: net, dependsOn: [api], ports: { public: { port: 8080, publish: true } } });
  if (v.allow) web.allowCallsTo(api);
  if (v.extra) new Service(stack, 'extra', { image: 'localhost/extra:1', network: net });
  v.tweak?.(stack, web);
  return stack;
}

const text = (v: Variant = {}) => constructsText(stackOf(v));
const refusal = (v: Variant): string => {
  try {
    constructsText(stackOf(v));
  } catch (e) {
    expect(e).toBeInstanceOf(NotPlain);
    return (e as Error).message;
  }
  throw new Error('vouched for');
};

describe('the constructs\' text', () => {
  it('is the same for the same stack built twice', () => {
    expect(text()).toBe(text());
  });

  it('hashed as it is made is the sha256 of the whole text (ASCII or not, past a chunk of the hash)', () => {
    for (const v of [{}, { webImage: `localhost/wéb-${'x'.repeat(70_000)}:1` }, { webImage: `localhost/${'y'.repeat(200_000)}:1` }]) {
      const hash = new TextHash();
      hash.add('prefix ☃ ');
      hashConstructs(stackOf(v), hash);
      expect(hash.digest()).toBe(createHash('sha256').update(`prefix ☃ ${constructsText(stackOf(v))}`).digest('hex'));
    }
  });

  it('differs for a prop, a construct added or renamed, a call allowed by a method, the app\'s label, an env file\'s content', () => {
    const envFile = join(tmp.path, 'api.env');
    writeFileSync(envFile, 'A=1\n');
    const withEnv = text({ envFile });
    writeFileSync(envFile, 'A=2\n');
    const variants = [text(), text({ webImage: 'localhost/web:2' }), text({ extra: true }), text({ webId: 'www' }), text({ allow: true }), text({ label: 'other' }), withEnv, text({ envFile })];
    expect(new Set(variants).size).toBe(variants.length);
  });

  it('stands a subclass that adds only its constructor in for its podmesh class, by name', () => {
    class Grouping extends Construct {}
    class WebService extends Service {}
    const t = text({ tweak: (stack) => new WebService(new Grouping(stack, 'group'), 'inner', { image: 'localhost/inner:1', network: stack.node.findChild('mesh') as Network }) });
    expect(t).toContain('WebService');
    expect(t).toContain('"one/group/inner"');
  });

  it('refuses a class with methods of its own, a function or Map in a field, a reference outside the stack, an accessor', () => {
    class Clever extends Service {
      override certificateKinds() {
        return ['server'] as const;
      }
    }
    const net = (stack: Stack) => stack.node.findChild('mesh') as Network;
    expect(refusal({ tweak: (stack) => new Clever(stack, 'clever', { image: 'localhost/c:1', network: net(stack) }) })).toMatch(/one\/clever is of class Clever, which defines methods of its own/);
    expect(refusal({ tweak: (_s, web) => Object.assign(web, { hook: () => 1 }) })).toMatch(/one\/web: hook is a function/);
    expect(refusal({ tweak: (_s, web) => Object.assign(web, { table: new Map() }) })).toMatch(/one\/web: table is a Map/);
    expect(refusal({ tweak: (_s, web) => Object.defineProperty(web, 'late', { get: () => 1 }) })).toMatch(/one\/web: its field late is an accessor/);
    const other = stackOf();
    expect(refusal({ tweak: (_s, web) => Object.assign(web, { friend: other.node.findChild('api') }) })).toMatch(/one\/web: friend refers to one\/api, outside the stack/);
  });

  it('holds the engine classes\' methods: a method replaced at run time changes it', () => {
    const before = text();
    const original = Service.prototype.defaultHealthcheck;
    try {
      Service.prototype.defaultHealthcheck = function (this: Service, dns: string) {
        return { ...original.call(this, dns), retries: 9 };
      };
      expect(text()).not.toBe(before);
    } finally {
      Service.prototype.defaultHealthcheck = original;
    }
    expect(text()).toBe(before);
  });
});
