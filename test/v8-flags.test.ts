// The V8 flags the commands that load stacks set (src/cli/load.ts): each unless node was given it.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { COMMAND_V8_FLAGS, v8FlagsToSet } from '../src/cli/load.ts';

describe('the commands\' V8 flags', () => {
  it('are set unless node was given them, in either spelling', () => {
    expect(v8FlagsToSet('')).toEqual([...COMMAND_V8_FLAGS]);
    expect(v8FlagsToSet('--max-old-space-size=4096 --enable-source-maps')).toEqual([...COMMAND_V8_FLAGS]);
    expect(v8FlagsToSet('--interrupt-budget=100000')).toEqual(['--heap-growing-percent=100']);
    expect(v8FlagsToSet('--import tsx --heap_growing_percent=30')).toEqual(['--interrupt-budget=540672']);
    expect(v8FlagsToSet('--interrupt_budget=1 --heap-growing-percent=0')).toEqual([]);
    // A flag is told by its whole name, not a prefix.
    expect(v8FlagsToSet('--interrupt-budget-for-maglev=1')).toEqual([...COMMAND_V8_FLAGS]);
  });

  it('are flags this node\'s V8 knows, with values it accepts', () => {
    // V8 ignores an unknown flag given at run time; given to node on its command line, it is refused.
    const r = spawnSync(process.execPath, [...COMMAND_V8_FLAGS, '-e', '0'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const known = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8', timeout: 20_000, maxBuffer: 16 << 20 }).stdout;
    for (const f of COMMAND_V8_FLAGS) expect(known).toContain(`  ${f.split('=')[0]} (`);
  });
});
