// Command-line options shared by every podmesh command.
import type { ParseArgsConfig } from 'node:util';

/** Options every command takes. */
export const COMMON = {
  stack: { type: 'string', multiple: true },
  out: { type: 'string', default: 'out' },
  state: { type: 'string' },
  stacks: { type: 'string', default: 'stacks' },
  help: { type: 'boolean', short: 'h', default: false },
  debug: { type: 'boolean', default: false },
} as const satisfies ParseArgsConfig['options'];

/** A wrong command line: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}
