#!/usr/bin/env node
// Entry point of the `podmesh` command: stacks are TypeScript, so tsx loads them and the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
