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

/** The engine's construct classes: their methods are the engine's code, which its identity covers. */
const ENGINE_CLASSES: ReadonlySet<unknown> = new Set<unknown>([Construct, App, Stack, Host, Network, Volume, Workload, Service, InfraService, Postgres, Redis, Minio, MinioSetup]);

/** Why a stack's constructs do not stand for its model. */
export class NotVouched extends Error {}

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
      else if (kind === 'v' && f !== undefined) parts.push(`${kind}${name}=${typeof f}`);
    }
  }
  return parts.sort().join('\n');
}

/**
 * The class of `c` as the text says it: the engine class it is of, and the subclasses between that
 * add nothing but their constructor. Throws NotVouched for any other class.
 */
function classText(c: Construct, classes: Map<object, string>): string {
  const proto = Object.getPrototypeOf(c) as object;
  const known = classes.get(proto);
  if (known !== undefined) return known;
  const names: string[] = [];
  let p: object | null = proto;
  while (p !== null && !ENGINE_CLASSES.has((p as { constructor?: unknown }).constructor)) {
    const own = Reflect.ownKeys(p);
    if (own.length !== 1 || own[0] !== 'constructor') throw new NotVouched(`${c.node.path} is of class ${(p as { constructor: { name: string } }).constructor.name}, which defines methods of its own`);
    names.push((p as { constructor: { name: string } }).constructor.name);
    p = Object.getPrototypeOf(p) as object | null;
  }
  if (p === null) throw new NotVouched(`${c.node.path} is not of a podmesh construct class`);
  // The engine class and its own ancestors up to Construct, each with its methods.
  const chain: string[] = [];
  for (let q: object | null = p; q !== null && q !== Object.prototype; q = Object.getPrototypeOf(q) as object | null) {
    chain.push(`${(q as { constructor: { name: string } }).constructor.name}{${methodsText(q)}}`);
  }
  const text = JSON.stringify([names, chain]);
  classes.set(proto, text);
  return text;
}

/** The encoder's running state over one stack. */
interface Walk {
  readonly out: string[];
  /** Objects written so far (shared ones are written once, then referred to by their place). */
  readonly seen: Map<object, number>;
  /** Objects being written (a cycle is refused). */
  readonly open: Set<object>;
  /** Paths of the constructs a field may refer to: the stack's and its ancestors'. */
  readonly inScope: ReadonlySet<Construct>;
  /** The construct being written, for messages. */
  where: string;
}

/**
 * Appends the text of a field's value: plain data as fastpath's canonical text writes it (sorted
 * keys, undefined kept, -0/NaN/±Infinity and Dates told apart, shared objects by reference), and
 * a construct of the stack (or its ancestors) by its path. Throws NotVouched for anything else.
 */
function value(v: unknown, w: Walk, at: string): void {
  switch (typeof v) {
    case 'string':
      w.out.push(JSON.stringify(v));
      return;
    case 'number':
      w.out.push(Object.is(v, -0) ? '-0' : Number.isFinite(v) ? String(v) : `#${String(v)}`);
      return;
    case 'boolean':
      w.out.push(v ? 'true' : 'false');
      return;
    case 'undefined':
      w.out.push('#u');
      return;
    case 'object':
      break;
    default:
      throw new NotVouched(`${w.where}: ${at} is a ${typeof v}`);
  }
  if (v === null) {
    w.out.push('null');
    return;
  }
  if (Construct.isConstruct(v)) {
    if (!w.inScope.has(v)) throw new NotVouched(`${w.where}: ${at} refers to ${v.node.path}, outside the stack`);
    w.out.push(`#c${JSON.stringify(v.node.path)}`);
    return;
  }
  if (v instanceof Date) {
    w.out.push(`#d${v.getTime()}`);
    return;
  }
  const again = w.seen.get(v);
  if (again !== undefined) {
    w.out.push(`#r${again}`);
    return;
  }
  if (w.open.has(v)) throw new NotVouched(`${w.where}: ${at} refers to itself`);
  w.seen.set(v, w.seen.size);
  w.open.add(v);
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) throw new NotVouched(`${w.where}: ${at} is an array of a class of its own`);
    w.out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) throw new NotVouched(`${w.where}: ${at}[${i}] is a hole`);
      if (i > 0) w.out.push(',');
      value(v[i], w, `${at}[${i}]`);
    }
    w.out.push(']');
  } else {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) throw new NotVouched(`${w.where}: ${at} is a ${(v as object).constructor?.name ?? 'non-plain object'}`);
    // Every own property (enumerable or not, getters included) must be a plain data property.
    const keys = Reflect.ownKeys(v);
    const names: string[] = [];
    for (const k of keys) {
      if (typeof k === 'symbol') throw new NotVouched(`${w.where}: ${at} has symbol keys`);
      const d = Object.getOwnPropertyDescriptor(v, k)!;
      if (!('value' in d)) throw new NotVouched(`${w.where}: ${at}.${k} is an accessor`);
      names.push(k);
    }
    names.sort();
    w.out.push('{');
    for (const [i, k] of names.entries()) {
      if (i > 0) w.out.push(',');
      w.out.push(JSON.stringify(k), ':');
      value((v as Record<string, unknown>)[k], w, `${at}.${k}`);
    }
    w.out.push('}');
  }
  w.open.delete(v);
}

/**
 * The own fields of construct `c` (all but `node`, which the path and the tree order stand for;
 * symbol-keyed ones are recorded problems, which the caller validates), as text.
 */
function fields(c: Construct, w: Walk): void {
  const names: string[] = [];
  for (const k of Reflect.ownKeys(c)) {
    if (typeof k === 'symbol' || k === 'node') continue;
    const d = Object.getOwnPropertyDescriptor(c, k)!;
    if (!('value' in d)) throw new NotVouched(`${c.node.path}: its field ${k} is an accessor`);
    names.push(k);
  }
  names.sort();
  w.out.push('{');
  for (const [i, k] of names.entries()) {
    if (i > 0) w.out.push(',');
    w.out.push(JSON.stringify(k), ':');
    value((c as unknown as Record<string, unknown>)[k], w, k);
  }
  w.out.push('}');
}

/**
 * The text that stands for what resolving `stack` makes (with the lock and engine as they are): the
 * class and fields of the stack's ancestors (the app) and of every construct in it, in tree order.
 * Throws NotVouched when the constructs do not decide the model on their own (see the top of this file).
 */
export function constructsText(stack: Stack): string {
  const all = stack.node.findAll();
  const ancestors = stack.node.scopes.slice(0, -1);
  const inScope = new Set<Construct>([...ancestors, ...all]);
  const classes = new Map<object, string>();
  const w: Walk = { out: [], seen: new Map(), open: new Set(), inScope, where: stack.node.path };
  for (const c of [...ancestors, ...all]) {
    w.where = c.node.path || '(app)';
    w.out.push('\n', JSON.stringify(c.node.path), ' ', classText(c, classes), ' ');
    fields(c, w);
  }
  return w.out.join('');
}
