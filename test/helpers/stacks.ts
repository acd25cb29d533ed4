// Small stacks for tests, built in code; each test changes just what it is about.
import type { Construct } from 'constructs';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { repoRoot } from './tools.ts';
import { App, Host, Network, Postgres, Service, Stack, type ServiceProps } from 'podmesh';

/** A one-host stack with a /24 mesh, like ashchan-dev but smaller. */
export function miniStack(id = 'mini', app = new App()) {
  const stack = new Stack(app, id, { project: 'mini' });
  const host = new Host(stack, 'local');
  const network = new Network(stack, 'mesh', { subnet: '10.90.0.0/24', gateway: '10.90.0.1', domain: 'mini.local' });
  return { app, stack, host, network };
}

/** An app service with a test image. */
export function svc(stack: Construct, id: string, props: Partial<ServiceProps> = {}): Service {
  return new Service(stack, id, { image: `localhost/test/${id}:1`, ...props });
}

/** A three-service stack: db, api (depends on db), web (depends on api, publishes 8080). */
export function threeTier(id = 'three', app = new App()) {
  const base = miniStack(id, app);
  const db = new Postgres(base.stack, 'db');
  const api = svc(base.stack, 'api', { dependsOn: [db], ports: { http: 9000 } });
  const web = svc(base.stack, 'web', { dependsOn: [api], calls: [api], ports: { public: { port: 8080, publish: true } } });
  return { ...base, db, api, web };
}

/** Temporary folders of this test file not removed yet (see the afterAll below). */
const made = new Set<string>();

/** A temporary folder removed by the returned function, or when the test file ends. */
export function tempDir(prefix = 'podmesh-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  made.add(path);
  return {
    path,
    cleanup: () => {
      rmSync(path, { recursive: true, force: true });
      made.delete(path);
    },
  };
}

/** One temporary state folder per test file (certificates and keys). */
export const testState = mkdtempSync(join(tmpdir(), 'podmesh-state-'));
made.add(testState);

/** Removes what this file's tests left. */
function removeMade(): void {
  for (const path of made) rmSync(path, { recursive: true, force: true });
  made.clear();
}

// Each test file imports this module afresh (vitest isolates files), so this hook is that file's. A
// process 'exit' handler alone was not enough: vitest ends its fork workers without one, and every
// file left its folders in the temporary directory. Stack files that a spawned podmesh loads also
// import this module, outside any test: there the exit handler does it.
try {
  afterAll(removeMade);
} catch {
  process.on('exit', removeMade);
}

/**
 * Makes `dir` a podmesh project as `npm install podmesh` would: an ES-module package.json and
 * node_modules/podmesh (a link to this repository), so its stack files `import … from 'podmesh'`.
 * A spawned `podmesh` then gives them its build (dist/), an in-process run (vitest) its sources:
 * either way the very modules the command itself uses.
 */
export function podmeshProject(dir: string): void {
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(repoRoot, join(dir, 'node_modules/podmesh'));
}
