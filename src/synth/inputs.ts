// What resolution reads, as one text: the fast path's check that a stack resolves as it did,
// without resolving it. Resolution is a function of the engine, the stack's constructs and the lock
// in out/<stack> (which the fast path's stamps vouch for), and a construct is decided by its fields
// and the methods of its class. So when every construct of the stack is of one of the engine's
// construct classes (or of a subclass that adds nothing but its constructor), the text of every
// construct's path, class and fields stands for the model that resolution would make. Anything
// else (a class with methods of its own, a field holding a function, a Map or a class instance, a
// reference to a construct of another stack) is not vouched for: the fast path resolves instead.
import { Construct } from 'constructs';
import { App } from '../../constructs/core/app.ts';
import { Stack } from '../../constructs/core/stack.ts';
import { Host } from '../../constructs/model/host.ts';
import { InfraService, Minio, MinioSetup, Postgres, Redis } from '../../constructs/model/infra.ts';
import { Network } from '../../constructs/model/network.ts';
import { Service } from '../../constructs/model/service.ts';
import { Volume } from '../../constructs/model/volume.ts';
import { Workload } from '../../constructs/model/workload.ts';
import { canonical, NotPlain, type Refer, type TextHash } from './canonical.ts';

/** The engine's construct classes: their methods are the engine's code, which its identity covers. */
const ENGINE_CLASSES: ReadonlySet<unknown> = new Set<unknown>([Construct, App, Stack, Host, Network, Volume, Workload, Service, InfraService, Postgres, Redis, Minio, MinioSetup]);

/**
 * The methods of a class as they are now, in text: the engine's classes as shipped say the same
 * on every run, so a method replaced at run time (`Service.prototype.x = …` in a stack file) is
 * told apart.
 */
function methodsText(proto: object): string {
  const parts: string[] = [];
  for (const key of Reflect.ownKeys(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, key)!;
    const name = typeof key === 'symbol' ? `@${String(key.description)}` : key;
    for (const [kind, f] of [['v', d.value], ['g', d.get], ['s', d.set]] as const) {
      if (typeof f === 'function') parts.push(`${kind}${name}=${Function.prototype.toString.call(f)}`);
      else if (kind === 'v' && f !== undefined) parts.push(`${kind}${name}=${typeof f === 'object' && f !== null ? typeof f : String(f)}`);
    }
  }
  return parts.sort().join('\n');
}

/**
 * The class of `c` as the text says it: the engine class it is of, and the subclasses between that
 * add nothing but their constructor. Throws NotPlain for any other class.
 */
function classText(c: Construct, classes: Map<object, string>): string {
  const proto = Object.getPrototypeOf(c) as object;
  const known = classes.get(proto);
  if (known !== undefined) return known;
  const names: string[] = [];
  let p: object | null = proto;
  while (p !== null && !ENGINE_CLASSES.has((p as { constructor?: unknown }).constructor)) {
    const own = Reflect.ownKeys(p);
    if (own.length !== 1 || own[0] !== 'constructor') throw new NotPlain(`${c.node.path} is of class ${(p as { constructor: { name: string } }).constructor.name}, which defines methods of its own`);
    names.push((p as { constructor: { name: string } }).constructor.name);
    p = Object.getPrototypeOf(p) as object | null;
  }
  if (p === null) throw new NotPlain(`${c.node.path} is not of a podmesh construct class`);
  // The engine class and its own ancestors up to Construct, each with its methods.
  const chain: string[] = [];
  for (let q: object | null = p; q !== null && q !== Object.prototype; q = Object.getPrototypeOf(q) as object | null) {
    chain.push(`${(q as { constructor: { name: string } }).constructor.name}{${methodsText(q)}}`);
  }
  const text = JSON.stringify([names, chain]);
  classes.set(proto, text);
  return text;
}

/**
 * Appends the own fields of construct `c` (all but `node`, which the path and the tree order stand
 * for; symbol-keyed ones are recorded problems, which the caller validates) as canonical text,
 * other constructs in them by `refer`.
 */
function fields(c: Construct, out: string[], seen: Map<object, number>, refer: Refer): void {
  const names: string[] = [];
  for (const k of Reflect.ownKeys(c)) {
    if (typeof k === 'symbol' || k === 'node') continue;
    const d = Object.getOwnPropertyDescriptor(c, k)!;
    if (!('value' in d)) throw new NotPlain(`${c.node.path}: its field ${k} is an accessor`);
    names.push(k);
  }
  names.sort();
  out.push('{');
  for (const [i, k] of names.entries()) {
    if (i > 0) out.push(',');
    out.push(JSON.stringify(k), ':');
    canonical((c as unknown as Record<string, unknown>)[k], out, new Set(), `${c.node.path}: ${k}`, seen, refer);
  }
  out.push('}');
}

/**
 * The text that stands for what resolving `stack` makes (with the lock and engine as they are): the
 * class and fields of the stack's ancestors (the app) and of every construct in it, in tree order.
 * Throws NotPlain when the constructs do not decide the model on their own (see the top of this file).
 */
export function constructsText(stack: Stack): string {
  const out: string[] = [];
  constructsPieces(stack, out, () => {});
  return out.join('');
}

/**
 * {@link constructsText} given to `hash` (after what it holds already) as it is made, a construct at
 * a time: a 1,000-service stack's text is megabytes, whole a string of that size to hash.
 */
export function hashConstructs(stack: Stack, hash: TextHash): void {
  const out: string[] = [];
  constructsPieces(stack, out, () => {
    for (const piece of out) hash.add(piece);
    out.length = 0;
  });
}

/** The pieces of {@link constructsText} appended to `out`; `done` is called after each construct's. */
function constructsPieces(stack: Stack, out: string[], done: () => void): void {
  const all = stack.node.findAll();
  const ancestors = stack.node.scopes.slice(0, -1);
  const inScope = new Set<Construct>([...ancestors, ...all]);
  // A construct of the stack (or an ancestor) by its path; any other is not the stack's to vouch for.
  const refer: Refer = (v, path) => {
    if (!Construct.isConstruct(v)) return undefined;
    if (!inScope.has(v)) throw new NotPlain(`${path} refers to ${v.node.path}, outside the stack`);
    return `#c${JSON.stringify(v.node.path)}`;
  };
  const classes = new Map<object, string>();
  // Objects shared between constructs (one props object given to two) are written once.
  const seen = new Map<object, number>();
  for (const c of [...ancestors, ...all]) {
    out.push('\n', JSON.stringify(c.node.path), ' ', classText(c, classes), ' ');
    fields(c, out, seen, refer);
    done();
  }
}
