// The command table: every podmesh command, in the order --help lists them.
import type { AnyCommand, Group } from '../command.ts';
import { auditCommand } from './audit.ts';
import { certsCommands, unknownCerts } from './certs.ts';
import { importComposeCommand } from './import.ts';
import { initCommand } from './init.ts';
import { applyCommand, diffCommand } from './ops.ts';
import { secretsRotateCommand } from './secrets.ts';
import { stateCommands } from './state.ts';
import { synthCommand } from './synth.ts';
import { verifyCommand } from './verify.ts';
import { versionCommand } from './version.ts';
import { wireguardRotateCommand } from './wireguard.ts';

/** Every command; a row named `<group> <sub>` belongs to a group of GROUPS. */
export const COMMANDS: readonly AnyCommand[] = [
  synthCommand,
  ...certsCommands,
  verifyCommand,
  auditCommand,
  wireguardRotateCommand,
  secretsRotateCommand,
  diffCommand,
  applyCommand(),
  ...stateCommands,
  importComposeCommand,
  initCommand,
  versionCommand,
];

/** Commands with sub-commands. */
export const GROUPS: readonly Group[] = [
  { name: 'certs', unknown: unknownCerts },
  { name: 'wireguard', unknown: (sub) => `unknown wireguard command "${sub}". Use rotate.` },
  { name: 'secrets', unknown: (sub) => `unknown secrets command "${sub}". Use rotate.` },
  { name: 'state', unknown: (sub) => `unknown state command "${sub}". Use export or import.` },
];
